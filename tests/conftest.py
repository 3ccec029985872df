"""Session-wide test settings that keep the suite independent of the machine's speed.

Hypothesis: no per-example deadline and no "too slow" health check by default. Both
measure wall time, which a busy CI machine (2 cores shared with other jobs) stretches
several-fold; a property test fails on a counterexample, never on slowness
(docs/testing.md "Tests on a busy machine"). Tests that set their own ``@settings`` keep
what they set and inherit the rest from this profile.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "busy-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("busy-machine")
