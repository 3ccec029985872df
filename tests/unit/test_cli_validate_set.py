"""``modelfleet validate`` checks the files given together, and a gateway static endpoints
file, with the gateway's own rules (``gateway.catalog``).

Before: documents were checked one at a time. Two ModelRoutes claiming one model name,
and a route naming a deployment that none of the files defines, all passed; a static
endpoints file was "not a modelfleet resource".
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from modelfleet.cli import app

runner = CliRunner()


def route(name: str, model: str, *, aliases: str = "[]", backend: str = "small",
          fallback: str = "[]") -> str:  # fmt: skip
    return f"""\
apiVersion: modelfleet.io/v1alpha1
kind: ModelRoute
metadata: {{name: {name}, namespace: team}}
spec:
  model: {model}
  aliases: {aliases}
  rules: [{{backends: [{{deployment: {backend}}}]}}]
  fallback: {fallback}
"""


def deployment(name: str, model: str) -> str:
    return f"""\
apiVersion: modelfleet.io/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}, namespace: team}}
spec:
  model: {{name: {model}, uri: "hf://Qwen/Qwen2.5-0.5B-Instruct"}}
  runtime: {{engine: vllm}}
  resources: {{gpu: {{count: 1, memoryGiB: 24}}}}
  replicas: {{min: 1, max: 2}}
"""


def validate(*paths: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["validate", *map(str, paths)])
    return result.exit_code, result.output


def test_two_routes_claiming_one_model_name_across_files_fail(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text(route("r1", "assistant") + "---\n" + route("r2", "coder"))
    b = tmp_path / "b.yaml"
    b.write_text(route("r3", "coder") + "---\n" + route("r4", "other", aliases="[assistant]"))
    code, output = validate(a, b)
    assert code == 1, output
    flat = " ".join(output.split())
    # Each clash names both objects and the documents they are in.
    assert "model 'coder': ModelRoute team/r3 ignored, ModelRoute team/r2 serves it" in flat
    assert f"ModelRoute team/r3 in {b} (document 1, ModelRoute/r3)" in flat
    assert f"ModelRoute team/r2 in {a} (document 2, ModelRoute/r2)" in flat
    assert "model 'assistant': ModelRoute team/r4 ignored, ModelRoute team/r1 serves it" in flat
    assert "2 problem(s) across documents" in flat


def test_routes_to_deployments_absent_from_the_files_fail_when_deployments_are_given(
    tmp_path: Path,
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(route("r1", "assistant", backend="small", fallback="[ghost]"))
    deployments = tmp_path / "deployments.yaml"
    deployments.write_text(deployment("small", "qwen-small"))
    code, output = validate(routes, deployments)
    assert code == 1, output
    flat = " ".join(output.split())
    assert "ModelRoute team/r1: fallback deployment team/ghost does not exist" in flat
    assert f"ModelRoute team/r1 in {routes} (document 1, ModelRoute/r1)" in flat
    assert "no ModelDeployment team/ghost in the files given" in flat
    # Routes alone: their deployments may be applied from elsewhere; not an error.
    code, output = validate(routes)
    assert code == 0, output


def test_a_route_in_front_of_its_deployment_and_one_model_in_two_namespaces_are_valid(
    tmp_path: Path,
) -> None:
    both = tmp_path / "both.yaml"
    both.write_text(route("r1", "qwen-small") + "---\n" + deployment("small", "qwen-small"))
    other = tmp_path / "other.yaml"
    other.write_text(deployment("small", "qwen-small").replace("team", "other-team"))
    code, output = validate(both, other)
    assert code == 0, output
    assert "3 document(s) valid" in output


STATIC = """\
deployments:
- name: base
  namespace: team
  model: qwen
  endpoints: [{url: "http://10.0.0.1:8000", name: a}]
- name: lora
  namespace: team
  model: qwen-sql
  endpoints: [{url: "http://10.0.0.1:8000", name: a}]
routes:
- apiVersion: modelfleet.io/v1alpha1
  kind: ModelRoute
  metadata: {name: assistant, namespace: team}
  spec:
    model: assistant
    rules: [{backends: [{deployment: base}]}]
    fallback: [FALLBACK]
"""


def test_a_static_endpoints_file_gets_the_gateways_start_up_check(tmp_path: Path) -> None:
    good = tmp_path / "endpoints.yaml"
    good.write_text(STATIC.replace("FALLBACK", "lora"))
    code, output = validate(good)
    assert code == 0, output
    assert "static endpoints file: 2 deployment(s), 3 model name(s)" in " ".join(output.split())

    missing = tmp_path / "missing.yaml"
    missing.write_text(STATIC.replace("FALLBACK", "ghost"))
    code, output = validate(missing)
    assert code == 1, output
    flat = " ".join(output.split())
    assert "ModelRoute team/assistant: fallback deployment team/ghost does not exist" in flat
    assert f"ModelRoute team/assistant in {missing} routes.0" in flat

    twice = tmp_path / "twice.yaml"
    twice.write_text(STATIC.replace("FALLBACK", "lora").replace("name: lora", "name: base"))
    code, output = validate(twice)
    assert code == 1, output
    assert "deployments.1: deployment team/base appears twice" in " ".join(output.split())

    repeated = tmp_path / "repeated.yaml"
    repeated.write_text(STATIC.replace("FALLBACK", "lora, lora"))
    code, output = validate(repeated)
    assert code == 1, output
    assert "fallback: lora listed more than once" in " ".join(output.split())
