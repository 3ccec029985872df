"""``core.placement.place`` answers repeated calls from memory (``_PLACED``): a pure cache.

Every answer, first or repeated, must equal the unmemoised placement (``_place``) of the
same inputs, over the same random fleets and specs the exact-placement tests use (every
coupling constraint, the fast path and the MILP); an input changed in any argument, or a
candidate replaced by another object, is placed afresh; the counts handed out are never
the memo's own dict."""

from __future__ import annotations

from dataclasses import replace

from core_builders import NOW
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_core_exact import fleets, specs

from modelfleet.core.candidates import Candidate, PoolKey, eligibility
from modelfleet.core.placement import (
    _PLACED,
    PlacementResult,
    PlaceOptions,
    _place,
    clear_place_memo,
    place,
)
from modelfleet.core.types import DeploymentSpec, FleetSnapshot

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _inputs(s: DeploymentSpec, fleet: FleetSnapshot, data: st.DataObject) -> dict[str, object]:
    """Arguments of one ``place`` call as the planner builds them."""
    elig = eligibility(fleet, s, NOW)
    known = elig.known
    sticky: dict[PoolKey, int] = {
        k: data.draw(st.integers(0, 3)) for k in known if data.draw(st.booleans())
    }
    own = {k: n for k, n in sticky.items() if n and data.draw(st.booleans())}
    main = data.draw(st.integers(0, 4))
    return {
        "main": main,
        "standby": data.draw(st.integers(0, 1)),
        "growth": elig.candidates,
        "known": known,
        "sticky": sticky,
        "free": elig.quota,
        "own_nodes": own,
        "on_demand_base": data.draw(st.integers(0, 2)),
        "options": PlaceOptions(
            tolerate_region_loss=data.draw(st.booleans()) and main > 0,
            spread_demand=data.draw(st.sampled_from([0.0, 1.5])),
            spread_price_factor=data.draw(st.sampled_from([0.0, 0.5])),
        ),
    }


def _fresh(s: DeploymentSpec, args: dict[str, object]) -> PlacementResult:
    return _place(s, **args)  # type: ignore[arg-type]


def _memo(s: DeploymentSpec, args: dict[str, object]) -> PlacementResult:
    return place(s, **args)  # type: ignore[arg-type]


@SETTINGS
@given(s=specs(), fleet=fleets(), data=st.data())
def test_a_repeated_placement_is_the_placement_computed_afresh(
    s: DeploymentSpec, fleet: FleetSnapshot, data: st.DataObject
) -> None:
    clear_place_memo()
    args = _inputs(s, fleet, data)
    fresh = _fresh(s, args)
    first = _memo(s, args)
    assert len(_PLACED) == 1
    # Equal counts and quotas in new dicts, the same candidate objects: answered from memory.
    again = {
        **args,
        "sticky": dict(args["sticky"]),  # type: ignore[call-overload]
        "free": dict(args["free"]),  # type: ignore[call-overload]
        "own_nodes": dict(args["own_nodes"]),  # type: ignore[call-overload]
        "growth": list(args["growth"]),  # type: ignore[call-overload]
    }
    second = _memo(s, again)
    assert len(_PLACED) == 1
    assert first == fresh and second == fresh
    # The caller's counts are its own: editing them changes no later answer.
    assert second.counts is not first.counts
    second.counts[("x", "y", "OnDemand")] = 99
    assert _memo(s, args) == fresh


@SETTINGS
@given(s=specs(), fleet=fleets(), data=st.data())
def test_a_changed_input_is_placed_afresh(
    s: DeploymentSpec, fleet: FleetSnapshot, data: st.DataObject
) -> None:
    clear_place_memo()
    args = _inputs(s, fleet, data)
    _memo(s, args)  # warm
    known: dict[PoolKey, Candidate] = args["known"]  # type: ignore[assignment]
    growth: tuple[Candidate, ...] = args["growth"]  # type: ignore[assignment]
    sticky: dict[PoolKey, int] = args["sticky"]  # type: ignore[assignment]
    options: PlaceOptions = args["options"]  # type: ignore[assignment]
    changes: list[dict[str, object]] = [
        {"main": args["main"] + 1},  # type: ignore[operator]
        {"standby": 1 - args["standby"]},  # type: ignore[operator]
        {"on_demand_base": args["on_demand_base"] + 1},  # type: ignore[operator]
        {"options": replace(options, spread_demand=options.spread_demand + 1.0)},
        {"options": replace(options, tolerate_region_loss=not options.tolerate_region_loss)},
    ]
    if known:
        pool = next(iter(known))
        changes.append({"sticky": {**sticky, pool: sticky.get(pool, 0) + 2}})
        changes.append({"free": {**args["free"], pool: 0}})  # type: ignore[dict-item]
        changes.append({"own_nodes": {pool: 1}})
        # The same pool at another price: a new candidate object, never the old answer.
        dear = {
            k: replace(c, price=c.price * 3, effective=c.effective * 3) for k, c in known.items()
        }
        changes.append(
            {"known": dear, "growth": tuple(dear[c.key] for c in growth if c.key in dear)}
        )
    seen = [args]
    for change in changes:
        changed = {**args, **change}
        before = len(_PLACED)
        assert _memo(s, changed) == _fresh(s, changed), change
        if any(changed == earlier for earlier in seen):
            continue  # the "change" kept the value (e.g. a quota already 0): a repeat
        seen.append(changed)
        assert len(_PLACED) == before + 1, f"{change} was answered from memory"
    assert _memo(s, args) == _fresh(s, args)


def test_the_memo_holds_the_objects_its_key_names() -> None:
    """The key names the spec and the candidates by id; the entry keeps them alive, so no
    other object can take one of those ids while the entry is remembered."""
    from core_builders import cluster, offering, spec

    clear_place_memo()
    s = spec(2, 2)
    elig = eligibility(FleetSnapshot((cluster("a", offering("g1", od=1.0)),)), s, NOW)
    result = place(
        s,
        main=2,
        standby=0,
        growth=elig.candidates,
        known=elig.known,
        sticky={},
        free=elig.quota,
        own_nodes={},
        on_demand_base=0,
    )
    assert result.counts == {("a", "g1", "OnDemand"): 2}
    ((held, _),) = _PLACED.values()
    assert held[0] is s
    assert all(any(c is h for h in held[1]) for c in elig.candidates)
    assert all(any(c is h for h in held[2]) for c in elig.known.values())
