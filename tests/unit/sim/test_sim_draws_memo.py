"""``report.DrawsMemo``: a worker process evaluating several baselines makes the requests'
draws once. A traffic equal in what the draws read (a worker's own copy of it, unpickled
per policy) is answered from memory with the very arrays ``request_draws`` makes; any
change to what they read (seed, arrivals, the prompt lengths' law, a replay's own
lengths, the seconds) is drawn afresh."""

from __future__ import annotations

import pickle
from dataclasses import fields, replace

import numpy as np

from modelfleet.sim.report import DrawsMemo, RequestDraws, request_draws
from modelfleet.sim.traffic import Traffic

SECONDS = 1200


def _traffic(seed: int = 4) -> Traffic:
    rng = np.random.default_rng(seed)
    rate = 5.0 + rng.uniform(0, 3, SECONDS)
    return Traffic(
        rate=rate,
        arrivals=rng.poisson(rate).astype(np.int64),
        prompt_median=700,
        prompt_sigma=0.8,
        output_median=200,
        output_sigma=0.6,
        seed=seed,
    )


def _equal(a: RequestDraws, b: RequestDraws) -> bool:
    return (a.begin, a.end) == (b.begin, b.end) and all(
        getattr(a, f.name).tobytes() == getattr(b, f.name).tobytes()
        for f in fields(RequestDraws)
        if f.name not in ("begin", "end")
    )


def test_a_copy_of_the_traffic_gets_the_draws_made_for_the_first() -> None:
    memo = DrawsMemo()
    traffic = _traffic()
    first = memo.get(traffic, 60, SECONDS)
    copy = pickle.loads(pickle.dumps(traffic))  # what a worker gets with each policy
    assert copy is not traffic
    assert memo.get(copy, 60, SECONDS) is first
    assert _equal(first, request_draws(copy, 60, SECONDS))


def test_what_the_draws_read_changed_is_drawn_afresh() -> None:
    memo = DrawsMemo()
    traffic = _traffic()
    first = memo.get(traffic, 60, SECONDS)
    arrivals = traffic.arrivals.copy()
    arrivals[700] += 1
    prompts = np.full(int(traffic.arrivals.sum()), 900, dtype=np.int64)
    longer = prompts.copy()
    longer[-1] = 901
    changed = [
        (replace(traffic, seed=5), 60, SECONDS),
        (replace(traffic, arrivals=arrivals), 60, SECONDS),
        (replace(traffic, prompt_median=701), 60, SECONDS),
        (replace(traffic, prompt_sigma=0.81), 60, SECONDS),
        (replace(traffic, request_prompts=prompts), 60, SECONDS),
        (traffic, 0, SECONDS),
        (traffic, 60, SECONDS - 1),
    ]
    for other, begin, end in changed:
        got = memo.get(other, begin, end)
        assert got is not first
        assert _equal(got, request_draws(other, begin, end))
    # A replay with other lengths than one remembered is not answered by it either.
    replay = replace(traffic, request_prompts=longer)
    assert _equal(memo.get(replay, 60, SECONDS), request_draws(replay, 60, SECONDS))
    assert not _equal(memo.get(replay, 60, SECONDS), memo.get(changed[4][0], 60, SECONDS))
    # The output lengths and the expected rate are not read: still the first draws.
    same = replace(traffic, output_median=300, rate=traffic.rate * 2)
    memo = DrawsMemo()
    assert memo.get(same, 60, SECONDS) is memo.get(traffic, 60, SECONDS)


def test_the_memo_is_bounded() -> None:
    memo = DrawsMemo(size=2)
    traffics = [_traffic(seed) for seed in range(3)]
    first = memo.get(traffics[0], 0, SECONDS)
    memo.get(traffics[1], 0, SECONDS)
    memo.get(traffics[2], 0, SECONDS)  # full: cleared, then kept
    again = memo.get(traffics[0], 0, SECONDS)
    assert again is not first and _equal(again, first)
