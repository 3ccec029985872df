"""``modelfleet gateway``: one OpenAI-compatible endpoint in front of every ModelDeployment.

Clients call one URL with a ``model`` name; the gateway resolves it (ModelRoute rules,
aliases, weighted splits, fallbacks) to a deployment, picks one of its endpoints by health,
load, observed latency, locality and prompt-prefix affinity, forwards the request and
streams the answer back as it arrives. Failures before the first byte are retried on
another endpoint within a retry budget; failing endpoints are ejected and probed back;
requests for a deployment with no ready endpoint are held (scale from zero) while the
pending demand is exported as a metric. Callers authenticate with API keys.

Layout (vLLM's split of router, protocol and serving logic):

- ``settings``: every knob, with units.
- ``catalog``: the immutable view of deployments, endpoints and routes the sources build.
- ``routing``: pure decisions: which deployment (rules), which endpoint (scores, hashing).
- ``endpoints``: live per-endpoint state: outstanding requests, moving TTFT, ejection,
  probes and scraped engine load.
- ``holding``: the bounded wait for a ready endpoint.
- ``auth``: API keys (hashed, constant-time) and per-key rate limits.
- ``proxy``: one request's attempts against upstream endpoints, streaming pass-through.
- ``app``: the aiohttp front (OpenAI paths, errors, metrics endpoint).
- ``discovery``: catalog sources: the hub (watch ModelDeployments and ModelRoutes) or a
  static file.
- ``route_status``: ModelRoute status conditions and Events (a model name two routes
  claim, a missing backend), the gateway's only writes to the hub.
- ``tasks``: stopping background tasks.
- ``run``: wiring for the ``modelfleet gateway`` command.
"""
