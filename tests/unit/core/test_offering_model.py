"""One Offering model: the converters both ways, the "no on-demand price" case, and the
``maxNodes`` limit shared by an offering's on-demand and spot pools.

``core.types.Offering`` is the only offering type (core, providers, reconciler, simulator);
``core.from_api.offering_from_api``/``offering_to_api`` are the only converters.
"""

from __future__ import annotations

from typing import Any

import pytest
from core_builders import NOW, cluster, offering, placed, run, spec

from modelfleet.api.fleetcluster import FleetCluster, GpuOffering
from modelfleet.core import ExistingPlacement, FleetSnapshot, Offering
from modelfleet.core.candidates import eligibility
from modelfleet.core.from_api import (
    cluster_from_api,
    cluster_offerings,
    offering_from_api,
    offering_of,
    offering_to_api,
)

API_OFFERINGS: list[dict[str, Any]] = [
    # Every field set.
    {
        "gpu": "H100",
        "gpuMemoryGiB": 80,
        "gpusPerNode": 8,
        "instanceType": "p5.48xlarge",
        "onDemandPerHour": 98.32,
        "spotPerHour": 39.5,
        "maxNodes": 4,
        "zones": ["us-east-1a", "us-east-1b"],
    },
    # Only the required fields: no spot market, no limit, all the cluster's zones.
    {"gpu": "L4", "gpuMemoryGiB": 24, "gpusPerNode": 1, "instanceType": "g2-standard-8"},
    # No on-demand price: a GPU sold only as spot.
    {
        "gpu": "A100-80GB",
        "gpuMemoryGiB": 80,
        "gpusPerNode": 8,
        "instanceType": "p4de.24xlarge",
        "spotPerHour": 12.1,
        "maxNodes": 0,
    },
    # Static capacity declared at no extra cost.
    {
        "gpu": "H100",
        "gpuMemoryGiB": 80,
        "gpusPerNode": 8,
        "instanceType": "dgx-h100",
        "onDemandPerHour": 0,
    },
]


@pytest.mark.parametrize("body", API_OFFERINGS, ids=lambda b: b["instanceType"])
def test_api_to_core_to_api_is_the_identity(body: dict[str, Any]) -> None:
    api = GpuOffering.model_validate(body)
    core = offering_from_api(api)
    assert offering_to_api(core) == api
    assert offering_to_api(core).model_dump(by_alias=True, exclude_none=True) == body


CORE_OFFERINGS = [
    Offering("H100", 80, 8, "p5.48xlarge", 98.32, 39.5, 4, ("us-east-1a",)),
    Offering("L40S", 44.7, 1, "g6e.xlarge", 1.86),
    Offering("A100-80GB", 80, 8, "p4de.24xlarge", None, 12.1, 2),
    Offering("NVIDIA-L40S", 45.0, 4, "l40s-box", None, None, 1),
]


@pytest.mark.parametrize("core", CORE_OFFERINGS, ids=lambda o: o.instance_type)
def test_core_to_api_to_core_is_the_identity(core: Offering) -> None:
    assert offering_from_api(offering_to_api(core)) == core


def test_unset_zones_are_the_clusters_for_the_planner_only() -> None:
    api = GpuOffering.model_validate(API_OFFERINGS[1])
    assert offering_from_api(api).zones == ()
    assert offering_from_api(api, cluster_zones=("a", "b")).zones == ("a", "b")


def _fleet_cluster(*offerings: dict[str, Any], discovered: list[dict[str, Any]]) -> FleetCluster:
    return FleetCluster.model_validate(
        {
            "metadata": {"name": "east"},
            "spec": {
                "provider": "aws",
                "region": "us-east-1",
                "zones": ["us-east-1a", "us-east-1b"],
                "aws": {"clusterName": "east"},
                "gpuOfferings": list(offerings),
            },
            "status": {"offerings": discovered},
        }
    )


def test_declared_offerings_win_over_discovered_ones_of_the_same_type() -> None:
    declared = {**API_OFFERINGS[0], "onDemandPerHour": 90.0}
    fc = _fleet_cluster(declared, discovered=[API_OFFERINGS[0], API_OFFERINGS[2]])
    view = cluster_from_api(fc)
    assert [(o.instance_type, o.on_demand_per_hour) for o in view.offerings] == [
        ("p5.48xlarge", 90.0),
        ("p4de.24xlarge", None),
    ]
    found = offering_of(fc, "p4de.24xlarge")
    assert found is not None and found.on_demand_per_hour is None and found.zones == ()
    assert offering_of(fc, "p5.48xlarge") == offering_from_api(GpuOffering(**declared))
    assert offering_of(fc, "nothing") is None and offering_of(None, "p5.48xlarge") is None


@pytest.mark.parametrize(
    ("declared", "discovered"),
    [
        ([], []),
        ([0], []),
        ([], [0, 2]),
        ([0, 1], [0, 2, 3]),
        ([3], [2, 2, 0]),  # the same type discovered twice: the first one
    ],
)
def test_offering_of_is_the_first_of_the_clusters_offerings_with_that_type(
    declared: list[int], discovered: list[int]
) -> None:
    """``offering_of`` converts only the offering it finds: the same answer as converting
    every offering of the cluster (``cluster_offerings``) and taking the first match."""
    repriced = [{**API_OFFERINGS[i], "onDemandPerHour": 1.0 + n} for n, i in enumerate(discovered)]
    fc = _fleet_cluster(*(API_OFFERINGS[i] for i in declared), discovered=repriced)
    for body in API_OFFERINGS:
        kind = body["instanceType"]
        every = next((o for o in cluster_offerings(fc) if o.instance_type == kind), None)
        assert offering_of(fc, kind) == every, kind


# -- no on-demand price ----------------------------------------------------------------------


def test_an_offering_without_an_on_demand_price_takes_only_spot_replicas() -> None:
    """A spot-only GPU (no on-demand price) is a spot candidate and never an on-demand one;
    without spot allowed the replicas go to the priced cluster."""
    spot_only = cluster("a", offering("a1", od=None, spot=1.0))
    priced = cluster("b", offering("b1", od=3.0))
    p = run(spec(2, 2, spot="Allowed"), [spot_only, priced])
    assert placed(p) == {("a", "a1", "Spot"): 2}
    p = run(spec(2, 2), [spot_only, priced])
    assert placed(p) == {("b", "b1", "OnDemand"): 2}


def test_unpriced_capacity_is_not_placed_on_until_a_price_is_declared() -> None:
    """Static nodes found without a declared price (both prices None) take no replicas."""
    unpriced = cluster("onprem", offering("dgx", od=None))
    p = run(spec(1, 1), [unpriced])
    assert placed(p) == {} and p.unplaced == 1
    declared = cluster("onprem", offering("dgx", od=0.0))
    assert placed(run(spec(1, 1), [declared])) == {("onprem", "dgx", "OnDemand"): 1}


# -- maxNodes is shared by both capacity types -----------------------------------------------


def test_quota_left_counts_the_nodes_of_both_capacity_types() -> None:
    """The old core counted ``maxNodes`` per capacity type: with 3 of 4 nodes held on
    demand it still offered all 4 as spot, which the simulated provider (and the ledger)
    then refused. Both pools of the offering now see the 1 node that is left."""
    fleet = FleetSnapshot(
        (cluster("a", offering("a1", od=3.0, spot=1.0, max_nodes=4)),),
        placements=(ExistingPlacement("default/other", "a", "a1", "OnDemand", 3, nodes=3),),
    )
    elig = eligibility(fleet, spec(1, 4, spot="Allowed"), NOW)
    assert elig.quota[("a", "a1", "OnDemand")] == 1
    assert elig.quota[("a", "a1", "Spot")] == 1


def test_an_offering_full_on_demand_has_no_spot_room_either() -> None:
    fleet = FleetSnapshot(
        (cluster("a", offering("a1", od=3.0, spot=1.0, max_nodes=4)),),
        placements=(ExistingPlacement("default/other", "a", "a1", "OnDemand", 4, nodes=4),),
    )
    elig = eligibility(fleet, spec(1, 4, spot="Preferred"), NOW)
    assert not elig.candidates
    assert {c.capacity_type for c in elig.exhausted} == {"OnDemand", "Spot"}
