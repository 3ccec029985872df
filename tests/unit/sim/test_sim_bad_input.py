"""Scenario input a user can get wrong in the i10a simulator changes (a replayed trace's own
lengths, the world model override): each is an error naming the field, never a traceback
and never a run that quietly serves nonsense.

Found on i10a: a trace whose token count does not fit 64 bits ended ``modelfleet simulate``
in an ``OverflowError`` traceback; negative token counts were taken as 1 and a prompt of
10^12 tokens ran to a report (0 GPU-hours); ``world.model.kvBytesPerToken = inf`` ran to a
report and ``1e-300`` ended in an ``OverflowError`` traceback; ``paramsBillion = 1e9``
(weights that fit on no GPU) ran, each replica serving one request at a time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app
from modelfleet.sim.scenario import ScenarioError, load_scenario
from modelfleet.sim.traffic import read_trace

ROOT = Path(__file__).parents[3]
FLEET = ROOT / "examples" / "scenarios" / "fleet"
CHAT = ROOT / "examples" / "scenarios" / "deployments" / "chat.yaml"
HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
ROW = "2023-11-16 18:00:0{i},{p},{o}\n"


def _trace(tmp_path: Path, name: str, prompt: str, output: str) -> str:
    rows = "".join(ROW.format(i=i, p=prompt, o=output) for i in range(3))
    (tmp_path / name).write_text(HEADER + rows)
    return name


def _scenario(tmp_path: Path, trace: str, world: str = "") -> Path:
    path = tmp_path / "s.toml"
    path.write_text(
        f'name = "t"\ndurationHours = 0.25\nfleet = ["{FLEET}"]\n[[deployments]]\n'
        f'manifest = "{CHAT}"\n[deployments.traffic.trace]\nfile = "{trace}"\n{world}'
    )
    return path


@pytest.mark.parametrize(
    ("prompt", "output", "column"),
    [
        ("99999999999999999999", "5", "ContextTokens"),  # beyond 64 bits
        ("999999999999", "5", "ContextTokens"),  # beyond any context window
        ("100", "20000000", "GeneratedTokens"),
        ("-5", "5", "ContextTokens"),
        ("100", "-3", "GeneratedTokens"),
    ],
)
def test_token_counts_out_of_range_are_an_error_naming_file_line_and_column(
    tmp_path: Path, prompt: str, output: str, column: str
) -> None:
    name = _trace(tmp_path, "t.csv", prompt, output)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_scenario(tmp_path, name))
    text = str(caught.value)
    assert "deployments.0.traffic.trace.file" in text, text
    assert f"{name}:2" in text and column in text, text


def test_zero_token_rows_count_as_one_token(tmp_path: Path) -> None:
    name = _trace(tmp_path, "zero.csv", "0", "0")
    _, prompts, outputs = read_trace(str(tmp_path / name))
    assert list(prompts) == [1, 1, 1] and list(outputs) == [1, 1, 1]


def test_simulate_with_a_huge_token_count_ends_with_an_error_not_a_traceback(
    tmp_path: Path,
) -> None:
    name = _trace(tmp_path, "huge.csv", "99999999999999999999", "5")
    result = CliRunner().invoke(app, ["simulate", str(_scenario(tmp_path, name))])
    assert result.exit_code == 2, result.output
    assert "huge.csv:2" in result.output and "ContextTokens" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("world", "field"),
    [
        ("kvBytesPerToken = inf", "world.model.kvBytesPerToken"),
        ("kvBytesPerToken = nan", "world.model.kvBytesPerToken"),
        ("kvBytesPerToken = 1e-300", "world.model.kvBytesPerToken"),
        ("paramsBillion = inf", "world.model.paramsBillion"),
        ("paramsBillion = 1e9", "world.model.paramsBillion"),
        ("paramsBillion = 200", "world.model.paramsBillion"),  # 400 GB on 1-GPU replicas
    ],
)
def test_a_nonsense_world_model_is_an_error_naming_the_field(
    tmp_path: Path, world: str, field: str
) -> None:
    name = _trace(tmp_path, "ok.csv", "100", "20")
    path = _scenario(tmp_path, name, f"[world.model]\n{world}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert field in str(caught.value), str(caught.value)
    result = CliRunner().invoke(app, ["simulate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_model_that_fits_is_accepted(tmp_path: Path) -> None:
    name = _trace(tmp_path, "ok.csv", "100", "20")
    world = "[world.model]\nparamsBillion = 7.62\nkvBytesPerToken = 57344\n"
    scenario = load_scenario(_scenario(tmp_path, name, world))
    assert scenario.spec.world.model.params_billion == 7.62


@pytest.mark.parametrize(
    ("control", "field"),
    [
        ("tickSeconds = 1e-6", "world.control.tickSeconds"),  # a 59 GiB array: MemoryError
        ("tickSeconds = 3600", "world.control.tickSeconds"),
        ("reconcileIntervalSeconds = 1e-6", "world.control.reconcileIntervalSeconds"),
        ("probeIntervalSeconds = 1e300", "world.control.probeIntervalSeconds"),
    ],
)
def test_control_timings_out_of_range_are_an_error_naming_the_field(
    tmp_path: Path, control: str, field: str
) -> None:
    """The loop's timings take ``modelfleet run``'s bounds (2 to 86400 s), the tick 1 to
    60 s: ``tickSeconds = 1e-6`` ended a run in a numpy MemoryError traceback."""
    name = _trace(tmp_path, "ok.csv", "100", "20")
    path = _scenario(tmp_path, name, f"[world.control]\n{control}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert field in str(caught.value), str(caught.value)
    result = CliRunner().invoke(app, ["simulate", str(path), "--hours", "0.05"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_manifest_folder_with_many_deployments_names_the_field_to_set(tmp_path: Path) -> None:
    # QA br9: the hint read "(set deployments.{i}.name)", the placeholder never filled in.
    path = tmp_path / "s.toml"
    deployments = ROOT / "examples" / "scenarios" / "deployments"
    path.write_text(
        f'name = "t"\ndurationHours = 1\nfleet = ["{FLEET}"]\n'
        f'[[deployments]]\nmanifest = "{deployments / "chat.yaml"}"\n'
        "[deployments.traffic]\npeakRps = 10\ntroughRps = 1\n"
        f'[[deployments]]\nmanifest = "{deployments}"\n'
        "[deployments.traffic]\npeakRps = 10\ntroughRps = 1\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    text = str(caught.value)
    assert "deployments.1.manifest: expected one ModelDeployment" in text, text
    assert "(set deployments.1.name)" in text, text
