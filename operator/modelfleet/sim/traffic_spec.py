"""The traffic section of a scenario file: what a deployment receives, as validated models.

``TrafficSpec`` (a diurnal curve with bursts and token lengths, or a replayed ``TraceSpec``)
and ``parse_at``, the scenario's one way of writing a time from its start. Models only, no
numpy: ``sim/traffic.py`` draws the requests from them and ``sim/scenario.py`` holds them in
a scenario (``DeploymentRef.traffic``) and checks, with ``sim/traffic.py``'s arithmetic, that
a run's traffic fits the simulator; both import this module, which imports neither.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from modelfleet.sim.world import SimModel

_CLOCK = re.compile(r"^(\d+):([0-5]\d)(?::([0-5]\d))?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([hms])$")


def parse_at(value: Any) -> float:
    """Seconds from the scenario start: ``"HH:MM"``/``"HH:MM:SS"`` (hours may pass 24),
    ``"90m"``, ``"1.5h"``, ``"45s"``, or a number of seconds. Raises ValueError."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if match := _CLOCK.match(text):
            h, m, s = match.groups()
            return int(h) * 3600 + int(m) * 60 + int(s or 0)
        if match := _DURATION.match(text):
            number, unit = match.groups()
            return float(number) * {"h": 3600, "m": 60, "s": 1}[unit]
    raise ValueError(
        f"expected a time from the start like '13:30', '13:30:15', '90m', '1.5h' or seconds, "
        f"got {value!r}"
    )


class TokenLengths(SimModel):
    """A log-normal token-length distribution."""

    median: float = Field(gt=0, description="Median tokens.")
    sigma: float = Field(default=0.8, ge=0, le=3, description="Log-space standard deviation.")


class Burst(SimModel):
    """A traffic burst: the rate is multiplied over a window (ramping over a minute)."""

    at: str | float = Field(description="Start, from the scenario start ('13:30', '90m').")
    duration_minutes: float = Field(gt=0, description="Length of the burst.")
    multiplier: float = Field(gt=0, description="Rate multiplier at the burst's height.")
    at_seconds: float = Field(default=0.0, description="(derived from ``at``)", exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _at(cls, data: Any) -> Any:
        if isinstance(data, dict) and "at" in data:
            data = {**data, "atSeconds": parse_at(data["at"])}
        return data


class TraceSpec(SimModel):
    """Replay of a request trace in the Azure LLM inference trace format
    (``TIMESTAMP,ContextTokens,GeneratedTokens``, one row per request, in time order).

    Trace time ``t`` (seconds since its first request) lands at ``shift + t x stretch``
    from the scenario start; ``rateScale`` thins (< 1) or multiplies (> 1) the requests,
    each copy of a request keeping its lengths; ``repeat`` plays it that many times back to
    back (0: until the scenario ends).
    """

    file: str = Field(description="CSV trace, relative to the scenario file.")
    shift: str | float = Field(
        default=0.0, description="Where the trace's first request lands ('90m', '1h', seconds)."
    )
    stretch: float = Field(default=1.0, gt=0, le=1000, description="Time dilation factor.")
    rate_scale: float = Field(default=1.0, gt=0, le=1000, description="Request multiplier.")
    repeat: int = Field(default=1, ge=0, description="Plays (0: loop to the end).")
    path: str | None = Field(default=None, description="(resolved file)", exclude=True)

    @field_validator("shift")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        parse_at(value)
        return value

    @property
    def shift_seconds(self) -> float:
        return parse_at(self.shift)


class TrafficSpec(SimModel):
    """A deployment's traffic: diurnal curve, bursts, token lengths; or a replayed trace."""

    peak_rps: float | None = Field(
        default=None, gt=0, description="Requests/s at the daily peak (required without trace)."
    )
    trough_rps: float = Field(default=0.0, ge=0, description="Requests/s at the daily trough.")
    trace: TraceSpec | None = Field(
        default=None, description="Replay this trace instead of the diurnal curve."
    )
    peak_hour: float = Field(default=15.0, ge=0, lt=24, description="UTC hour of the peak.")
    shape: float = Field(default=1.5, gt=0, description="Peakiness of the diurnal curve.")
    noise_sigma: float = Field(
        default=0.05, ge=0, le=1, description="Per-minute multiplicative noise (log sigma)."
    )
    prompt_tokens: TokenLengths = Field(default_factory=lambda: TokenLengths(median=400))
    output_tokens: TokenLengths = Field(default_factory=lambda: TokenLengths(median=180))
    bursts: list[Burst] = Field(default_factory=list)

    @model_validator(mode="after")
    def _trough_below_peak(self) -> TrafficSpec:
        if self.trace is None and self.peak_rps is None:
            raise ValueError("peakRps is required (or replay a trace)")
        if self.peak_rps is not None and self.trough_rps > self.peak_rps:
            raise ValueError("troughRps must not exceed peakRps")
        return self
