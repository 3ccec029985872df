"""The autoscaler's view of the simulated traffic, as Prometheus would serve it.

``SimulatedMetricsSource`` implements the ``MetricsSource`` port the reconciler reads. It
answers from the serving state (``load.LoadModel``) the way PromQL over vLLM's metrics
would, so the decision core gets exactly the signal quality it gets in production:

- only what was scraped: samples exist every ``monitoring.scrapeIntervalSeconds``; a query
  at ``now`` sees the last scrape at or before ``now`` (up to one interval of lag);
- TTFT p95 is ``histogram_quantile(0.95, rate(time_to_first_token_seconds_bucket[1m]))``:
  the requests of the window counted into vLLM's buckets, then interpolated linearly
  inside the bucket holding the 95th percentile (so it is coarse between bucket edges);
- request rate and tokens/s are ``rate(...[1m])``; queue depth, running requests and
  KV-cache use are gauges at the scrape (KV-cache use of a replica: its running batch x the
  mean context / the tokens its KV cache holds, ``serving.ReplicaModel.kv_cache_usage``),
  summed over the cluster's ready replicas as the PromQL of docs/metrics.md sums them;
- a cluster whose replicas served nothing in the window has no TTFT series (missing, not 0).

Each cluster sees the requests routed to its replicas (its share of the fleet's capacity).
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from modelfleet.metrics.source import MetricsTarget, MetricsUnavailable, SignalValues
from modelfleet.sim.fleet import VirtualClock
from modelfleet.sim.load import LoadModel

_EMPTY: dict[str, float | None] = {
    "ttft": None,
    "tpot": None,
    "queue": None,
    "rate": None,
    "tokens": None,
    "kv": None,
    "running": None,
}
"""A cluster with no series (shared by the cached answers; never modified)."""


def histogram_quantile(q: float, edges: tuple[float, ...], cumulative: np.ndarray) -> float | None:
    """Prometheus' histogram_quantile over cumulative bucket counts (the last bucket is
    +Inf); None when the histogram is empty."""
    total = float(cumulative[-1])
    if total <= 0.0:
        return None
    rank = q * total
    index = int(cumulative.searchsorted(rank, side="left"))
    if index >= len(edges):
        return edges[-1]  # in the +Inf bucket: Prometheus returns the last finite edge
    upper = edges[index]
    lower = edges[index - 1] if index > 0 else 0.0
    below = float(cumulative[index - 1]) if index > 0 else 0.0
    inside = float(cumulative[index]) - below
    if inside <= 0.0:
        return upper
    return lower + (upper - lower) * (rank - below) / inside


class SimulatedMetricsSource:
    """``MetricsSource`` over the simulated serving state; see the module docstring."""

    def __init__(self, load: LoadModel, clock: VirtualClock) -> None:
        self._load = load
        self._clock = clock
        self._cache: dict[tuple[str, str, int], dict[str, float | None]] = {}
        self._windows: dict[str, tuple[int, int, int, np.ndarray]] = {}
        """Per deployment: the last scrape, its window's seconds ``[begin, end)`` and their
        TTFT bucket probabilities (the same for every cluster of the deployment, so
        computed once per scrape, and only for the seconds new since the last one)."""
        self._fixed: dict[str, tuple[np.ndarray, np.ndarray, tuple[float, ...]]] = {}
        self._rates: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        """Per deployment: prefill tokens/s and chunk tokens per GPU class (fixed)."""
        self._tpots: dict[str, tuple[tuple[int, int], dict[bytes, float | None]]] = {}
        """Per deployment: the last window's TPOT per set of used classes (``_tpot``)."""
        self._answers: dict[tuple[str, str, int, int], SignalValues] = {}
        """The answers given, per deployment key, cluster, scrape and ready replicas (the
        only other input of ``SignalValues.from_signals``): a pass asks again for a scrape
        an earlier pass read, and the same inputs build an equal (immutable) answer, so
        the one built then is returned. Shared: nothing downstream mutates its
        ``errors``."""
        self.fetches = 0

    async def fetch(self, target: MetricsTarget, *, now: datetime) -> SignalValues:
        """The signals of ``target`` at the last scrape before ``now``; never raises for
        missing data (there is always a Prometheus in the simulation)."""
        self.fetches += 1
        key = f"{target.namespace}/{target.deployment}"
        load = self._load.deployments.get(key)
        if load is None or target.cluster not in self._load.cluster_index:
            raise MetricsUnavailable("not simulated", cluster=target.cluster)
        seconds = (now - self._clock.start).total_seconds()
        interval = self._load.world.monitoring.scrape_interval_seconds
        scrape = int(math.floor(seconds / interval) * interval)
        if target.demand_only:
            # No replica anywhere: the gateway in front of the deployment still sees the
            # requests arriving (and fails or holds them); that is the demand signal, if
            # the deployment names it (spec.metrics.demand). Without it the operator asks
            # the engine's request rate, which has no series at zero: nothing to see.
            named = target.overrides is not None and bool(target.overrides.demand)
            return SignalValues.from_signals(
                {"request_rate": self._load.arrivals_rate(key, scrape) if named else None},
                ready_replicas=0,
                observed_at=self._clock.at(scrape),
            )
        answer_key = (key, target.cluster, scrape, target.ready_replicas)
        answer = self._answers.get(answer_key)
        if answer is not None:
            return answer
        cached = self._cache.get((key, target.cluster, scrape))
        if cached is None:
            cached = self._evaluate(key, target.cluster, scrape)
            self._cache[(key, target.cluster, scrape)] = cached
            if len(self._cache) > 4096:
                self._cache.clear()
        answer = SignalValues.from_signals(
            {
                "ttft_p95_ms": cached["ttft"],
                "tpot_p95_ms": cached["tpot"],
                "queue_depth": cached["queue"],
                "request_rate": cached["rate"],
                "tokens_per_second": cached["tokens"],
                "kv_cache_usage": cached["kv"],
                "requests_running": cached["running"],
            },
            ready_replicas=target.ready_replicas,
            observed_at=self._clock.at(scrape),
        )
        if len(self._answers) >= 4096:
            self._answers.clear()
        self._answers[answer_key] = answer
        return answer

    def _constants(self, key: str) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
        """Per deployment: mu per GPU class, and the TTFT bucket edges as an array and
        as a tuple (fixed for the run; built once)."""
        hit = self._fixed.get(key)
        if hit is None:
            edges = np.asarray(self._load.world.monitoring.ttft_buckets_seconds)
            hit = (np.array(self._load.deployments[key].mu), edges, tuple(edges))
            self._fixed[key] = hit
        return hit

    def _bucket_cdf(
        self, key: str, scrape: int, begin: int, end: int, edges: np.ndarray
    ) -> np.ndarray:
        """P(TTFT <= edge) per second of the window, GPU class and bucket edge, shape
        (seconds, classes, edges): a property of the deployment's serving state, the same
        for each of its clusters (cached for the last scrape).

        A row depends only on its own second's serving state, which is final once that
        second is served, and every operation on it is element-wise: the rows the last
        scrape's window computed are kept, only the seconds new to this window computed
        (the same floats as computing the whole window)."""
        last = self._windows.get(key)
        if last is not None and last[0] == scrape:
            return last[3]
        if last is not None and last[1] <= begin < last[2] <= end:
            kept = last[3][begin - last[1] :]
            cdf = np.concatenate([kept, self._cdf_rows(key, last[2], end, edges)])
        else:
            cdf = self._cdf_rows(key, begin, end, edges)
        self._windows[key] = (scrape, begin, end, cdf)
        return cdf

    def _cdf_rows(self, key: str, begin: int, end: int, edges: np.ndarray) -> np.ndarray:
        """``_bucket_cdf``'s rows for seconds ``[begin, end)``, computed."""
        load = self._load.deployments[key]
        rates = self._rates.get(key)
        if rates is None:
            rates = (
                np.array([m.prefill_rate for m in load.models]),
                np.array([float(m.chunk_tokens) for m in load.models]),
            )
            self._rates[key] = rates
        prefill, chunk = rates
        tau = load.tau[begin:end]
        # TTFT = wait + U*tau + ceil(P/B)*tau + P/R ~ wait + tau + P*(tau/B + 1/R) (U and
        # the chunk rounding at their means), linear in the prompt length P:
        # P(TTFT <= edge) = P(P <= (edge - shift) / slope), over the traffic's prompt
        # distribution (log-normal, or a replayed trace's own).
        shift = load.wait[begin:end, None] + tau
        slope = tau / chunk[None, :] + 1.0 / prefill[None, :]
        room = (edges[None, None, :] - shift[:, :, None]) / slope[:, :, None]
        cdf: np.ndarray = load.traffic.prompt_cdf(room)
        return cdf

    def _tpot(self, key: str, begin: int, end: int, used: np.ndarray) -> float | None:
        """TPOT p95 (ms) over the window ``[begin, end)`` of the GPU classes ``used`` (bool
        per class): the largest of their mean decode step times. A function of the
        deployment's serving state alone (final once served), so the clusters of a scrape
        that used the same classes share one computation (kept for the last window)."""
        window, answers = self._tpots.get(key, ((-1, -1), {}))
        if window != (begin, end):
            answers = {}
            self._tpots[key] = ((begin, end), answers)
        classes = used.tobytes()
        if classes in answers:
            return answers[classes]
        taus = self._load.deployments[key].tau[begin:end][:, used]
        tpot = float(taus.mean(axis=0).max()) * 1000.0 if taus.size else None
        answers[classes] = tpot
        return tpot

    def _evaluate(self, key: str, cluster: str, scrape: int) -> dict[str, float | None]:
        """The signals of ``cluster`` at ``scrape``. Every cluster of the deployment is
        evaluated at once (``_evaluate_all``) and the others' answers cached: the reconciler
        asks for each cluster of a deployment in the same pass, and the window's data is
        final once scraped (seconds before the scrape are served), so an answer computed
        early is the answer computed later."""
        answers = self._evaluate_all(key, scrape)
        for name, answer in zip(self._load.clusters, answers, strict=True):
            if name != cluster:
                self._cache[(key, name, scrape)] = answer
        return answers[self._load.cluster_index[cluster]]

    def _evaluate_all(self, key: str, scrape: int) -> list[dict[str, float | None]]:
        """The signals of every cluster (in ``LoadModel.clusters`` order) at ``scrape``.

        The element-wise parts (shares, counts, counts x bucket probabilities) are made
        for all clusters with a replica in the window as one (clusters, seconds, classes)
        array, each cluster's block contiguous: the same products and quotients as one
        cluster's (seconds, classes) array. Each reduction is the one a single cluster's
        evaluation makes, over the same contiguous block in the same order: a whole
        block's sum is a reduction along the last axis of the (clusters, seconds x
        classes) view (numpy's pairwise sum over the same elements in the same order as
        the flattened block), the bucket counts a reduction over the (seconds, classes)
        axes per cluster (the same sequential order). The same floats bit for bit:
        ``tests/unit/sim/test_sim_prometheus_batch.py`` checks it against the
        one-cluster evaluation this replaced."""
        load = self._load.deployments[key]
        monitoring = self._load.world.monitoring
        window = int(monitoring.window_seconds)
        end = max(0, min(scrape, load.seconds))
        begin = max(0, end - window)
        answers: list[dict[str, float | None]] = [_EMPTY] * len(self._load.clusters)
        if end <= begin:
            return answers
        # The clusters with a replica in some second of the window (``ndarray.any``: a
        # reduction; ``np.count_nonzero`` with an axis converts and sums in Python).
        present = np.flatnonzero(load.ready[begin:end].any(axis=(0, 2)))
        if not len(present):
            return answers  # no replica there all window: nothing served, no series
        # (clusters, seconds, classes), each cluster's block contiguous.
        ready = np.ascontiguousarray(
            load.ready[begin:end, present, :].transpose(1, 0, 2), dtype=np.float64
        )
        mu, edges, edge_tuple = self._constants(key)
        capacity = load.capacity[begin:end, None]
        # ready x mu / capacity where capacity > 0, else 0 (nothing computed there); a
        # window with capacity in every second (most) divides without the mask: the same
        # quotients, without numpy's slower masked loop.
        if capacity.min() > 0.0:
            share = np.divide(ready * mu, capacity)
        else:
            share = np.divide(ready * mu, capacity, out=np.zeros_like(ready), where=capacity > 0)
        counts = load.served[begin:end, None] * share  # requests per second per class
        n = len(present)
        totals = np.add.reduce(counts.reshape(n, -1), axis=1).tolist()
        last_ready = ready[:, -1, :]
        last_share = share[:, -1, :]
        batch = load.batch[end - 1]  # per replica, per class
        ready_now = np.add.reduce(last_ready, axis=1).tolist()
        queue_shares = np.add.reduce(last_share, axis=1).tolist()
        runnings = np.add.reduce(last_ready * batch, axis=1).tolist()
        waiting = float(load.waiting[end - 1])
        batch_list = batch.tolist()
        usage = [m.kv_cache_usage(b) for m, b in zip(load.models, batch_list, strict=True)]
        output_mean = load.traffic.output_mean
        cumulative: list[list[float]] | None = None
        used_rows: np.ndarray | None = None
        for i, c in enumerate(present.tolist()):
            total = totals[i]
            if ready_now[i] == 0 and total == 0.0:
                continue
            rate = total / (end - begin)
            # Python floats: the same products and sum, in the same order, as numpy
            # scalars.
            kv = float(sum(r * u for r, u in zip(last_ready[i].tolist(), usage, strict=True)))
            gauges: dict[str, float | None] = {
                "queue": waiting * queue_shares[i],
                "kv": kv,
                "running": runnings[i],
            }
            if total <= 0.0:
                answers[c] = {**_EMPTY, **gauges, "rate": 0.0, "tokens": 0.0}
                continue
            if cumulative is None or used_rows is None:
                cdf = self._bucket_cdf(key, scrape, begin, end, edges)
                cumulative = (counts[:, :, :, None] * cdf).sum(axis=(1, 2)).tolist()
                # The classes that served: counts are >= 0, so "any > 0" is "sum > 0".
                used_rows = (counts > 0).any(axis=1)
            ttft = histogram_quantile(0.95, edge_tuple, np.array([*cumulative[i], total]))
            answers[c] = {
                "ttft": None if ttft is None else ttft * 1000.0,
                "tpot": self._tpot(key, begin, end, used_rows[i]),
                **gauges,
                "rate": rate,
                "tokens": rate * output_mean,
            }
        return answers
