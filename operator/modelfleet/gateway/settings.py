"""Every knob of the gateway in one frozen object, with units, so the command line, the
tests and the benchmark build the same thing and nothing reads an environment variable
behind the caller's back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """Gateway behaviour. Times are seconds, sizes bytes or characters as named."""

    region: str | None = None
    """The gateway's own region: endpoints there are preferred while they have headroom."""

    connect_timeout: float = 5.0
    """Seconds to open a connection to an endpoint; a miss is a connection error (retried)."""
    first_byte_timeout: float = 120.0
    """Seconds from sending a request to the first byte of the answer (queueing and prefill
    included). A miss is answered 504 and counts as an endpoint failure; it is not retried,
    because the endpoint may still be generating."""
    read_timeout: float = 60.0
    """Seconds allowed between two chunks of a streaming answer."""
    request_timeout: float = 900.0
    """Whole-request limit, seconds (held time excluded)."""

    max_attempts: int = 3
    """Endpoints tried per request (1 means no retry)."""
    retry_budget_ratio: float = 0.2
    """Retries may add at most this fraction of the requests of the last window ..."""
    retry_budget_min_per_second: float = 5.0
    """... or this many retries per second, whichever is larger (Envoy's retry budget)."""
    retry_budget_window: float = 10.0
    """Seconds over which the retry budget is counted."""

    eject_after_failures: int = 3
    """Consecutive failures (connection errors, 5xx, first-byte timeouts) that eject an
    endpoint. A refused connection ejects at once."""
    eject_base_seconds: float = 5.0
    """First ejection lasts this long; each further one in a row doubles it."""
    eject_max_seconds: float = 120.0
    """Cap on one ejection."""
    max_ejected_fraction: float = 0.5
    """At most this fraction of a deployment's endpoints is ejected for HTTP errors (5xx);
    refused connections are not capped (the endpoint is gone)."""
    probe_path: str = "/v1/models"
    """Path probed (GET) at the end of an ejection; a 2xx brings the endpoint back."""

    max_outstanding_per_endpoint: int = 256
    """An endpoint with this many requests in flight from this gateway has no headroom."""
    queue_headroom: float = 8.0
    """An endpoint whose engine reports more waiting requests than this has no headroom."""
    kv_cache_headroom: float = 0.95
    """An endpoint whose engine reports KV-cache use above this fraction has no headroom."""
    scrape_interval: float = 5.0
    """Seconds between scrapes of each endpoint's /metrics (queue, KV cache); 0 disables."""
    ttft_smoothing: float = 0.2
    """Weight of the newest observation in the moving TTFT (exponential moving average)."""

    affinity_prefix_chars: int = 1024
    """Prompts at least this long are routed by their first this-many characters
    (bounded-load consistent hashing), so engines reuse their prefix caches. 0 disables."""
    affinity_load_factor: float = 1.25
    """Bounded load: the hashed endpoint is used while its load is at most this factor
    times the mean load of the candidates (plus one)."""

    hold_timeout: float = 60.0
    """Seconds a request waits for a ready endpoint before a 503 with Retry-After."""
    max_held_per_deployment: int = 1000
    """Held requests per deployment; more are answered 503 at once."""
    retry_after_seconds: int = 5
    """Retry-After sent with 503s for held requests that timed out or overflowed."""

    max_request_bytes: int = 4 * 1024 * 1024
    """Largest request body accepted; more is answered 413."""
    max_upstream_error_bytes: int = 64 * 1024
    """Most of an endpoint's 5xx/429 error body the gateway reads (it keeps it to pass on
    if no retry succeeds); a longer one is replaced by the gateway's own error message."""
    max_echoed_model_chars: int = 256
    """Characters of an unknown ``model`` name quoted back in the 404 (the rest is cut)."""
    rate_limit_per_second: float = 0.0
    """Requests per second each API key may make (token bucket); 0 means unlimited."""
    rate_limit_burst: int = 20
    """Requests a key may make at once above its rate."""
