"""``modelfleet validate`` says who would serve a model name claimed from two namespaces,
by the gateway's rule (``gateway.catalog``: first come across namespaces, then a route
before a deployment within the namespace).

Before (br11): a ModelRoute in team-b naming team-a's served model took the name, and
validate said nothing (a deployment's shadowed name was not reported); in a static
endpoints file the same model in two namespaces was a note that the first namespace in
name order served it.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from modelfleet.cli import app

runner = CliRunner()

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"

# /tmp/br11/x/hijack.yaml, as br11 wrote it.
HIJACK = f"""\
apiVersion: modelfleet.io/v1alpha1
kind: ModelRoute
metadata: {{name: grab, namespace: team-b, creationTimestamp: "2026-12-02T04:00:00Z"}}
spec:
  model: {LLAMA}
  rules:
  - backends: [{{deployment: mine}}]
"""


def deployment(namespace: str, name: str, created: str, model: str = LLAMA) -> str:
    return f"""\
apiVersion: modelfleet.io/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}, namespace: {namespace}, creationTimestamp: "{created}"}}
spec:
  model: {{name: {model}, uri: "hf://meta-llama/Llama-3.1-8B-Instruct"}}
  runtime: {{engine: vllm}}
  resources: {{gpu: {{count: 1, memoryGiB: 24}}}}
  replicas: {{min: 1, max: 2}}
"""


def validate(*paths: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["validate", *map(str, paths)])
    return result.exit_code, " ".join(result.output.split())


def test_the_hijacking_route_is_named_with_the_deployment_that_keeps_the_name(
    tmp_path: Path,
) -> None:
    hijack = tmp_path / "hijack.yaml"
    hijack.write_text(HIJACK)
    team_a = tmp_path / "team-a.yaml"
    team_a.write_text(deployment("team-a", "llama", "2026-11-01T00:00:00Z"))
    team_b = tmp_path / "team-b.yaml"
    team_b.write_text(deployment("team-b", "mine", "2026-11-01T00:00:00Z", model="mine"))
    code, output = validate(hijack, team_a, team_b)
    # Manifests given together need not share one gateway: a note, not a failure.
    assert code == 0, output
    assert (
        f"! model {LLAMA!r}: ModelRoute team-b/grab ignored, ModelDeployment team-a/llama "
        "serves it (the name belongs to namespace 'team-a', the first to claim it: "
        "ModelDeployment team-a/llama is older (created 2026-11-01T00:00:00Z, ModelRoute "
        "team-b/grab 2026-12-02T04:00:00Z))" in output
    )
    assert f"ModelDeployment team-a/llama in {team_a} (document 1, ModelDeployment/llama)" in output
    assert "[set, if they share one gateway]" in output


def test_a_later_deployment_in_a_namespace_sorting_first_is_told_it_loses(
    tmp_path: Path,
) -> None:
    files = tmp_path / "both.yaml"
    files.write_text(
        deployment("team-a", "llama", "2026-11-01T00:00:00Z")
        + "---\n"
        + deployment("aaa", "llama", "2026-12-02T04:00:00Z")
    )
    code, output = validate(files)
    assert code == 0, output
    assert (
        f"! model {LLAMA!r}: ModelDeployment aaa/llama ignored, ModelDeployment team-a/llama "
        "serves it" in output
    )


STATIC = f"""\
deployments:
- {{name: llama, namespace: team-a, model: {LLAMA}, endpoints: [{{url: "http://a:8000"}}]}}
- {{name: mine, namespace: team-b, model: mine, endpoints: [{{url: "http://b:8000"}}]}}
routes:
- apiVersion: modelfleet.io/v1alpha1
  kind: ModelRoute
  metadata: {{name: grab, namespace: team-b}}
  spec:
    model: {LLAMA}
    rules: [{{backends: [{{deployment: mine}}]}}]
"""


def test_a_static_file_where_one_namespace_claims_anothers_name_fails(tmp_path: Path) -> None:
    # One gateway's whole world: the route gets no requests for the name, a mistake.
    static = tmp_path / "endpoints.yaml"
    static.write_text(STATIC)
    code, output = validate(static)
    assert code == 1, output
    assert (
        f"✗ model {LLAMA!r}: ModelRoute team-b/grab ignored, ModelDeployment team-a/llama "
        "serves it (the name belongs to namespace 'team-a', the first to claim it: same age "
        "or no creation time, the first in namespace/name order keeps it)" in output
    )
    assert f"ModelRoute team-b/grab in {static} routes.0" in output
    # The same model served in two namespaces: the second cannot be reached by that name.
    two = tmp_path / "two.yaml"
    two.write_text(STATIC.replace("model: mine", f"model: {LLAMA}").split("routes:")[0])
    code, output = validate(two)
    assert code == 1, output
    assert "ModelDeployment team-b/mine ignored, ModelDeployment team-a/llama" in output
