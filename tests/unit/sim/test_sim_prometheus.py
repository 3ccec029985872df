"""The metrics the autoscaler sees are computed the way PromQL computes them."""

from __future__ import annotations

import numpy as np
import pytest

from modelfleet.sim.prometheus import histogram_quantile, normal_cdf


def test_histogram_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    edges = (0.1, 0.25, 0.5, 1.0)
    # 100 requests: 50 <= 0.1 s, 40 in (0.1, 0.25], 10 in (0.25, 0.5]; +Inf total 100.
    cumulative = np.array([50.0, 90.0, 100.0, 100.0, 100.0])
    # rank 95 lies half-way into the (0.25, 0.5] bucket.
    assert histogram_quantile(0.95, edges, cumulative) == pytest.approx(0.375)
    assert histogram_quantile(0.5, edges, cumulative) == pytest.approx(0.1)


def test_empty_histogram_is_missing_not_zero() -> None:
    assert histogram_quantile(0.95, (0.1, 1.0), np.zeros(3)) is None


def test_tail_beyond_the_last_bucket_reads_as_the_last_edge() -> None:
    assert histogram_quantile(0.95, (0.1, 1.0), np.array([0.0, 0.0, 10.0])) == 1.0


def test_normal_cdf() -> None:
    z = np.array([-1.6448536, 0.0, 1.6448536])
    assert normal_cdf(z) == pytest.approx([0.05, 0.5, 0.95], abs=1e-5)
