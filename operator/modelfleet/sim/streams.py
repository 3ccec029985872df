"""Common random numbers: one random stream per thing the simulated world draws for.

The world draws two kinds of durations: each node's provisioning time (per cloud) and each
pod's model start time. Drawn from one shared generator, the n-th draw goes to whoever asks
n-th, so any change in the order of requests (one deployment's decision, a pass a few
seconds later) reshuffles every later draw of every other deployment, and an A/B comparison
of two decision rules measures that reshuffling as much as the rules. Common random numbers
(synchronised streams; Law & Kelton, *Simulation Modeling and Analysis*, 5th ed., ch. 11,
"Variance-Reduction Techniques", section 11.2) remove it: each source of randomness gets its
own stream, keyed by what it belongs to, so the n-th node of a pool gets the n-th draw of
that pool's stream and the n-th pod start of a deployment in a cluster the n-th draw of
that (cluster, deployment)'s stream, whatever the rest of the fleet does.

A stream is ``np.random.default_rng(np.random.SeedSequence([seed, crc32(key)]))``: stable
across processes and platforms (``zlib.crc32`` of the key's UTF-8 bytes, never Python's
salted ``hash()``), and independent of every other key's stream (``SeedSequence`` mixes
its entropy words so distinct words give statistically independent generators).
"""

from __future__ import annotations

import math
import zlib
from collections import deque
from collections.abc import Callable

import numpy as np

from modelfleet.api.common import CapacityType
from modelfleet.sim.world import Distribution


def stream_key(*parts: str) -> str:
    """The key of a stream: its parts joined by ``/`` (e.g. ``provisioning/c1/p5/Spot``)."""
    return "/".join(parts)


def stream(seed: int, key: str) -> np.random.Generator:
    """A fresh generator for ``key`` under the scenario ``seed`` (>= 0): the same seed and
    key give the same sequence in every process."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(key.encode())]))


def lognormal_sampler(rng: np.random.Generator, dist: Distribution) -> Callable[[], float]:
    """Draws of ``dist`` (seconds; lognormal of median ``dist.median`` and log-sd
    ``dist.sigma``, the median itself when ``sigma`` is 0, which consumes no draw)."""
    mu = math.log(dist.median)
    sigma = dist.sigma

    def draw() -> float:
        return float(rng.lognormal(mu, sigma)) if sigma > 0 else dist.median

    return draw


class Stream:
    """One stream's draws, in order, with a look ahead: ``peek(n)`` gives the next ``n``
    draws without taking them, ``draw()`` takes the next one. The stream is the one owner
    of its draws: a peeked draw is drawn from the generator once, kept, and handed to the
    next ``draw()``; the generator is called with the same arguments in the same order
    whether or not anyone peeks, so the sequence ``draw()`` yields is the same (bit for
    bit) with or without peeking. The oracle policy peeks (``FleetWorld.next_provisioning``,
    ``FleetWorld.next_starts``); the world draws."""

    def __init__(self, rng: np.random.Generator, dist: Distribution) -> None:
        self._sample = lognormal_sampler(rng, dist)
        self._ahead: deque[float] = deque()

    def draw(self) -> float:
        """The next draw (seconds), taken."""
        return self._ahead.popleft() if self._ahead else self._sample()

    def peek(self, n: int) -> list[float]:
        """The next ``n`` (>= 0) draws (seconds), in the order ``draw()`` will give them,
        left in the stream."""
        while len(self._ahead) < n:
            self._ahead.append(self._sample())
        return [self._ahead[i] for i in range(n)]


class KeyedSampler:
    """Draws of one distribution, one stream per key, created on the key's first draw or
    peek."""

    def __init__(self, seed: int, kind: str, dist: Distribution) -> None:
        self._seed = seed
        self._kind = kind
        self._dist = dist
        self._streams: dict[str, Stream] = {}

    def _stream(self, parts: tuple[str, ...]) -> Stream:
        key = stream_key(self._kind, *parts)
        found = self._streams.get(key)
        if found is None:
            found = self._streams[key] = Stream(stream(self._seed, key), self._dist)
        return found

    def draw(self, *parts: str) -> float:
        """The next draw (seconds) of the stream ``kind/parts...``."""
        return self._stream(parts).draw()

    def peek(self, n: int, *parts: str) -> list[float]:
        """The next ``n`` draws (seconds) of the stream ``kind/parts...``, not taken."""
        return self._stream(parts).peek(n)


def provisioning_sampler(
    seed: int, cluster: str, dist: Distribution
) -> Callable[[str, CapacityType], float]:
    """The node provisioning draws (seconds) of ``cluster``, one stream per pool: called
    with (instance type, capacity type), the n-th call for a pool gives the n-th draw of
    the stream ``provisioning/<cluster>/<instance type>/<capacity type>``."""
    keyed = KeyedSampler(seed, "provisioning", dist)
    return provisioning_draws(keyed, cluster)


def provisioning_draws(keyed: KeyedSampler, cluster: str) -> Callable[[str, CapacityType], float]:
    """``keyed``'s draws for the pools of ``cluster`` as the simulated provider takes them
    (called with instance type and capacity type); ``keyed`` is a ``KeyedSampler`` of kind
    ``provisioning`` and may be peeked at by whoever holds it."""

    def draw(instance_type: str, capacity_type: CapacityType) -> float:
        return keyed.draw(cluster, instance_type, capacity_type)

    return draw
