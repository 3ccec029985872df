"""``modelfleet validate`` and ``plan`` name the field at fault, never print its value
(QA br9).

Found on main 2181396: the CRD-schema check passed jsonschema's message through, which
starts with the offending value. An ``env`` value given as a mapping printed the secret in
it (``{'token': 'hf_...'} is not of type 'string', 'null'``), and a YAML alias bomb under
``spec.runtime.args`` printed 430 KB in lines of 47,684 characters. The API-model check of
the same fields never printed the value.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from modelfleet.cli import app

ROOT = Path(__file__).parents[2]
SECRET = "hf_SECRETSECRETSECRET"
HEAD = """\
apiVersion: modelfleet.io/v1alpha1
kind: ModelDeployment
metadata: {name: x}
"""
SPEC = """\
spec:
  model: {name: m}
  resources: {gpu: {count: 1, types: [H100]}}
  replicas: {min: 1, max: 2}
"""


def test_a_secret_in_a_mistyped_env_value_is_not_printed(tmp_path: Path) -> None:
    path = tmp_path / "md.yaml"
    path.write_text(
        HEAD + SPEC + "  runtime:\n    engine: vllm\n"
        f"    env: [{{name: HF_TOKEN, value: {{token: {SECRET}}}}}]\n"
    )
    for args in (["validate", str(path)], ["plan", "--fleet", str(ROOT / "examples/fleet"), str(path)]):  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code in (1, 2), result.output
        assert "spec.runtime.env.0.value" in result.output
        assert "[crd-schema]" in result.output
        assert SECRET not in result.output, result.output


def test_an_alias_bomb_gives_short_lines(tmp_path: Path) -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcd", "bcde", strict=True):
        levels.append(f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text(
        HEAD + "\n".join(levels) + "\n" + SPEC + "  runtime: {engine: vllm, args: *e}\n"
    )
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output[:500]
    assert "spec.runtime.args.0: the list is not of type 'string' [crd-schema]" in result.output
    assert max(len(line) for line in result.output.splitlines()) < 300
    assert "lol" not in result.output
