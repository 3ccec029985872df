"""The simulator's host settings (numpy's huge-page advice, the collector's threshold) hold
only while it runs: the rest of the process gets its own back, also after an error."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from modelfleet.sim import load_scenario
from modelfleet.sim.engine import run_policy
from modelfleet.sim.host import _hugepage_setter, without_hugepage_advice
from modelfleet.sim.output import default_scenario_path


def _advice() -> bool:
    """numpy's current huge-page advice (read by setting it back to what it was)."""
    setter = _hugepage_setter()
    assert setter is not None, "this numpy has no huge-page switch"
    current = setter(True)
    setter(current)
    return current


@pytest.mark.parametrize("before", [True, False])
def test_advice_is_off_inside_and_restored_after_also_on_error(before: bool) -> None:
    setter = _hugepage_setter()
    assert setter is not None
    saved = setter(before)
    try:
        with without_hugepage_advice():
            assert _advice() is False
            big = np.ones(1 << 20)  # 8 MiB: numpy would advise huge pages for it
            assert float(big.sum()) == float(1 << 20)
        assert _advice() is before
        with pytest.raises(RuntimeError), without_hugepage_advice():
            raise RuntimeError("boom")
        assert _advice() is before
    finally:
        setter(saved)


def test_a_run_restores_the_collector_threshold_and_unfreezes() -> None:
    scenario = load_scenario(default_scenario_path(), overrides={"durationHours": 0.05})
    before = gc.get_threshold()
    run = run_policy("static-peak", scenario)
    assert run.ready  # it ran
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
