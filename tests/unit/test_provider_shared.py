"""Helpers the cloud providers share: the Throttled retry, the declared-over-discovered
offering merge and the bundled (on-demand, spot) price tables."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from modelfleet.api.fleetcluster import GpuOffering
from modelfleet.core import Offering
from modelfleet.providers.errors import NotFound, Throttled
from modelfleet.providers.offerings import PriceTable, load_price_table, merge_declared
from modelfleet.providers.retry import jittered_delay, retry_after_seconds, retry_throttled
from modelfleet.providers.sdkcall import LazyClient, classified

# -- retry_throttled --------------------------------------------------------------------------


@dataclass
class Sleeps:
    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class Script:
    """A call that raises the scripted errors in turn, then returns "ok"."""

    errors: list[Exception]
    calls: int = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def throttled(retry_after: float = 0.0, code: str | None = None) -> Throttled:
    return Throttled("slow down", retry_after=retry_after, cloud_code=code)


@pytest.mark.parametrize(
    ("errors", "max_attempts", "calls", "sleeps", "raises"),
    [
        pytest.param([], 4, 1, 0, None, id="success-first-try"),
        pytest.param([throttled(), throttled()], 4, 3, 2, None, id="two-throttles-then-ok"),
        pytest.param([throttled()] * 4, 4, 4, 3, Throttled, id="gives-up-after-max-attempts"),
        pytest.param([throttled()], 1, 1, 0, Throttled, id="one-attempt-never-retries"),
        pytest.param([throttled()], 0, 1, 0, Throttled, id="zero-attempts-means-one"),
        pytest.param([NotFound("gone")], 4, 1, 0, NotFound, id="other-errors-not-retried"),
        pytest.param([throttled(), NotFound("gone")], 4, 2, 1, NotFound, id="throttle-then-other"),
    ],
)
async def test_retry_throttled_attempts(
    errors: list[Exception],
    max_attempts: int,
    calls: int,
    sleeps: int,
    raises: type[Exception] | None,
) -> None:
    script, sleep = Script(list(errors)), Sleeps()

    async def run() -> str:
        return await retry_throttled(
            script, max_attempts=max_attempts, sleep=sleep, rng=random.Random(1)
        )

    if raises is None:
        assert await run() == "ok"
    else:
        with pytest.raises(raises):
            await run()
    assert script.calls == calls
    assert len(sleep.delays) == sleeps


@pytest.mark.parametrize(
    ("attempt", "retry_after", "max_wait", "low", "high"),
    [
        pytest.param(1, 0.0, 20.0, 1.0, 1.5, id="first-retry-1s"),
        pytest.param(3, 0.0, 20.0, 4.0, 6.0, id="exponential"),
        pytest.param(1, 3.0, 20.0, 3.0, 4.5, id="retry-after-honoured"),
        pytest.param(2, 60.0, 20.0, 20.0, 30.0, id="capped-by-max-wait"),
        pytest.param(10, 0.0, 5.0, 5.0, 7.5, id="exponential-capped"),
    ],
)
def test_jittered_delay_is_bounded(
    attempt: int, retry_after: float, max_wait: float, low: float, high: float
) -> None:
    rng = random.Random(7)
    for _ in range(50):
        delay = jittered_delay(attempt, throttled(retry_after), rng=rng, max_wait=max_wait)
        assert low <= delay <= high


async def test_retry_throttled_default_backoff_uses_retry_after_and_max_wait() -> None:
    sleep = Sleeps()
    script = Script([throttled(3.0), throttled(100.0)])
    result = await retry_throttled(
        script, max_attempts=3, sleep=sleep, rng=random.Random(3), max_wait=10.0
    )
    assert result == "ok"
    assert 3.0 <= sleep.delays[0] <= 4.5
    assert 10.0 <= sleep.delays[1] <= 15.0


async def test_retry_throttled_custom_policy() -> None:
    sleep = Sleeps()
    script = Script([throttled(code="Throttling"), throttled(code="Busy")])
    seen: list[tuple[int, str | None]] = []

    def backoff(attempt: int, error: Throttled) -> float:
        seen.append((attempt, error.cloud_code))
        return 0.25 * attempt

    with pytest.raises(Throttled) as caught:
        await retry_throttled(
            script,
            max_attempts=5,
            sleep=sleep,
            rng=random.Random(0),
            should_retry=lambda error: error.cloud_code == "Throttling",
            backoff=backoff,
        )
    assert caught.value.cloud_code == "Busy"  # not retried: should_retry said no
    assert script.calls == 2
    assert sleep.delays == [0.25]
    assert seen == [(1, "Throttling")]


# -- merge_declared ---------------------------------------------------------------------------

DISCOVERED = Offering(
    gpu="H100",
    gpu_memory_gib=80,
    gpus_per_node=8,
    instance_type="p5.48xlarge",
    on_demand_per_hour=98.32,
    spot_per_hour=40.0,
    max_nodes=3,
    zones=("us-east-1a", "us-east-1b"),
)


def declared(**fields: Any) -> GpuOffering:
    base: dict[str, Any] = {
        "gpu": "H100",
        "gpuMemoryGiB": 80,
        "gpusPerNode": 8,
        "instanceType": "p5.48xlarge",
        "onDemandPerHour": 90.0,
    }
    return GpuOffering.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("discovered", "items", "expected"),
    [
        pytest.param([DISCOVERED], None, [DISCOVERED], id="nothing-declared"),
        pytest.param([DISCOVERED], [], [DISCOVERED], id="empty-declared"),
        pytest.param(
            [DISCOVERED],
            [declared()],
            [Offering("H100", 80, 8, "p5.48xlarge", 90.0, 40.0, 3, ("us-east-1a", "us-east-1b"))],
            id="unset-optional-fields-keep-discovered",
        ),
        pytest.param(
            [DISCOVERED],
            [declared(spotPerHour=30.0, maxNodes=0, zones=["us-east-1a"], gpuMemoryGiB=81)],
            [Offering("H100", 81, 8, "p5.48xlarge", 90.0, 30.0, 0, ("us-east-1a",))],
            id="declared-wins-field-by-field",
        ),
        pytest.param(
            [DISCOVERED],
            [declared(zones=[])],
            [Offering("H100", 80, 8, "p5.48xlarge", 90.0, 40.0, 3, ())],
            id="empty-zones-list-is-set",
        ),
        pytest.param(
            [DISCOVERED],
            [declared(instanceType="g6e.xlarge", gpu="L40S", gpuMemoryGiB=44.7, gpusPerNode=1)],
            [
                Offering("L40S", 44.7, 1, "g6e.xlarge", 90.0, None, None, ()),
                DISCOVERED,
            ],
            id="undiscovered-added-as-declared-sorted",
        ),
        pytest.param(
            [],
            [declared(zones=["z1"], maxNodes=2)],
            [Offering("H100", 80, 8, "p5.48xlarge", 90.0, None, 2, ("z1",))],
            id="nothing-discovered",
        ),
    ],
)
def test_merge_declared(
    discovered: list[Offering], items: list[GpuOffering] | None, expected: list[Offering]
) -> None:
    assert merge_declared(discovered, items) == expected


def test_provider_modules_use_the_shared_merge() -> None:
    from modelfleet.providers.aws import merge_offerings

    assert merge_offerings is merge_declared


# -- bundled price tables ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gcp.yaml", "azure.yaml"])
def test_bundled_price_tables_load(name: str) -> None:
    table = load_price_table(name)
    assert table.as_of and table.source
    assert table.regions
    for machines in table.regions.values():
        for on_demand, spot in machines.values():
            assert on_demand is None or on_demand >= 0
            assert spot is None or spot >= 0


def test_provider_catalogs_load_their_own_tables() -> None:
    from modelfleet.providers.azure.catalog import load_price_table as azure_table
    from modelfleet.providers.gcp.catalog import load_price_table as gcp_table

    assert gcp_table() == load_price_table("gcp.yaml")
    assert azure_table() == load_price_table("azure.yaml")


@pytest.mark.parametrize(
    ("region", "instance_type", "expected"),
    [
        pytest.param("r1", "a", (1.0, 0.5), id="both"),
        pytest.param("r1", "b", (2.0, None), id="no-spot"),
        pytest.param("r1", "missing", (None, None), id="unknown-type"),
        pytest.param("r2", "a", (None, None), id="unknown-region"),
    ],
)
def test_price_table_price(
    region: str, instance_type: str, expected: tuple[float | None, float | None]
) -> None:
    table = PriceTable("2025-01-01", "test", {"r1": {"a": (1.0, 0.5), "b": (2.0, None)}})
    assert table.price(region, instance_type) == expected


def test_missing_price_table_raises() -> None:
    with pytest.raises(FileNotFoundError):
        load_price_table("nope.yaml")


# -- sdkcall ----------------------------------------------------------------------------------


def boom(error: Exception) -> Any:
    def fn() -> Any:
        raise error

    return fn


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(OSError("reset"), NotFound, id="sdk-error-classified"),
        pytest.param(Throttled("slow"), Throttled, id="typed-error-unchanged"),
        pytest.param(TypeError("bug"), TypeError, id="programming-error-unchanged"),
        pytest.param(AttributeError("bug"), AttributeError, id="attribute-error-unchanged"),
    ],
)
def test_classified(error: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught:
        classified(boom(error), lambda err: NotFound(f"classified: {err}"))
    if expected is NotFound:
        assert caught.value.__cause__ is error
    else:
        assert caught.value is error


def test_classified_returns_the_result() -> None:
    assert classified(lambda: 42, lambda err: NotFound(str(err))) == 42


def test_lazy_client_resolves_on_attribute_access() -> None:
    asked: list[str] = []

    class Clients:
        def get(self, name: str) -> Any:
            asked.append(name)
            return {"containers": "pools-api"}.get(name, "other")

    client = LazyClient(Clients(), "containers")
    assert asked == []
    assert client.upper() == "POOLS-API"
    assert asked == ["containers"]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),  # no header
        ("7", 7.0),
        ("2.5", 2.5),
        (3, 3.0),  # an SDK may hand over a number
        ("-4", 0.0),  # never a negative wait
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),  # an HTTP date is not read
        ("soon", None),
    ],
)
def test_a_clouds_retry_after_header_is_read_as_seconds(
    header: object, seconds: float | None
) -> None:
    # Azure's and GCP's classifiers both read the header through this one function.
    assert retry_after_seconds(header) == seconds
