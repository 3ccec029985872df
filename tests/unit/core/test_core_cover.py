"""The exact whole-node covering under placement, against brute force."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfleet.core.cover import INF, Option, brute_force_cover, cheapest_cover

options = st.lists(
    st.builds(
        Option,
        st.sampled_from([1, 2, 4, 8]),
        st.integers(1, 60).map(float),
        st.one_of(st.none(), st.integers(0, 4)),
    ),
    min_size=1,
    max_size=5,
)


@pytest.mark.parametrize(
    ("replicas", "opts", "nodes", "cost"),
    [
        (1, [Option(8, 40.0, None), Option(1, 11.0, None)], (0, 1), 11.0),
        (8, [Option(8, 40.0, None), Option(1, 11.0, None)], (1, 0), 40.0),
        (5, [Option(4, 10.0, None), Option(1, 3.0, None)], (1, 1), 13.0),
        (7, [Option(4, 10.0, None), Option(1, 3.0, None)], (1, 3), 19.0),
        (7, [Option(4, 10.0, None), Option(1, 4.0, None)], (2, 0), 20.0),
        (5, [Option(1, 1.0, 2), Option(1, 2.0, 1)], (2, 1), 4.0),  # partial: only 3 fit
        (0, [Option(1, 1.0, None)], (0,), 0.0),
    ],
)
def test_table(replicas: int, opts: list[Option], nodes: tuple[int, ...], cost: float) -> None:
    result = cheapest_cover(replicas, opts)
    assert result.nodes == nodes
    assert result.cost == pytest.approx(cost)


@settings(max_examples=400, deadline=None)
@given(replicas=st.integers(1, 12), opts=options)
def test_matches_brute_force(replicas: int, opts: list[Option]) -> None:
    result = cheapest_cover(replicas, opts)
    best = brute_force_cover(replicas, opts)
    held = sum(n * o.slots for n, o in zip(result.nodes, opts, strict=True))
    spent = sum(n * o.price for n, o in zip(result.nodes, opts, strict=True))
    assert all(
        o.max_nodes is None or n <= o.max_nodes for n, o in zip(result.nodes, opts, strict=True)
    )
    assert spent == pytest.approx(result.cost)
    if best == INF:
        assert result.covered < replicas and held >= result.covered
        assert brute_force_cover(result.covered + 1, opts) == INF
    else:
        assert result.covered == replicas and held >= replicas
        assert spent == pytest.approx(best)
