"""``modelfleet profile`` refuses a rate, step, growth or objective that is not a finite
number, naming the option, before it sends any load.

Click reads ``nan`` and ``inf`` as floats, and the command's checks (``--start-rate <= 0``,
``--growth <= 1``, ...) are all false for NaN, so they passed: ``--start-rate nan`` went on
to load the endpoint and failed inside the sweep, ``--step-seconds inf`` held one rate for
ever, ``--ttft-p95-ms nan`` failed every rate after a whole sweep of load. The endpoint
here is the discard port (nothing listens): a refused option must not reach it.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app

runner = CliRunner()

BASE = ["profile", "http://127.0.0.1:9/v1", "--model", "m", "--gpu", "H100"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--start-rate", "nan"),
        ("--start-rate", "inf"),
        ("--growth", "nan"),
        ("--max-rate", "nan"),
        ("--step-seconds", "inf"),
        ("--step-seconds", "nan"),
        ("--ttft-p95-ms", "nan"),
        ("--tpot-p95-ms", "inf"),
        ("--prompt-tokens", "nan"),
        ("--output-tokens", "inf"),
        ("--sigma", "nan"),
    ],
)
def test_a_non_finite_option_is_refused_before_any_load(option: str, value: str) -> None:
    result = runner.invoke(app, [*BASE, option, value])
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert f"error: {option} must be" in output, output
    assert output.endswith(f"got {value}"), output
