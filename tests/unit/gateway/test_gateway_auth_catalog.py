"""API keys (hashed, constant-time, from files and Secrets), the per-key rate limit, the
static endpoints file, the hub objects' translation and the engines' load signals."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from modelfleet.gateway.auth import (
    ApiKeys,
    KeySourceError,
    RateLimiter,
    bearer_token,
    keys_from_file,
    keys_from_secret,
)
from modelfleet.gateway.catalog import (
    DeploymentKey,
    StaticFileError,
    catalog_from_static,
    deployment_from_object,
)
from modelfleet.gateway.endpoints import parse_engine_load


def test_keys_are_held_as_digests_and_identified() -> None:
    keys = ApiKeys({"team-a": "sk-aaa", "team-b": "sk-bbb", "empty": ""})
    assert len(keys) == 2 and keys.enabled
    assert keys.identify("sk-aaa") == "team-a"
    assert keys.identify("sk-bbb") == "team-b"
    assert keys.identify("sk-aa") is None and keys.identify("") is None
    held = repr(vars(keys))
    assert "sk-aaa" not in held and "sk-bbb" not in held
    keys.replace({"team-c": "sk-ccc"})
    assert keys.identify("sk-aaa") is None and keys.identify("sk-ccc") == "team-c"


def test_a_configured_key_source_with_no_keys_refuses_everyone() -> None:
    assert not ApiKeys().enabled
    required = ApiKeys(required=True)
    assert required.enabled and required.identify("anything") is None


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer sk-1", "sk-1"),
        ("bearer   sk-1 ", "sk-1"),
        ("Basic dXNlcg==", None),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_keys_from_files_folders_and_secrets(tmp_path: Path) -> None:
    mapping = tmp_path / "keys.yaml"
    mapping.write_text("a: sk-1\nb: ' sk-2 '\n", encoding="utf-8")
    assert keys_from_file(mapping) == {"a": "sk-1", "b": "sk-2"}
    folder = tmp_path / "mounted"
    folder.mkdir()
    (folder / "team-a").write_text("sk-1\n", encoding="utf-8")
    (folder / "..data").mkdir()  # what a Secret volume also holds
    assert keys_from_file(folder) == {"team-a": "sk-1"}
    secret = {"data": {"a": base64.b64encode(b"sk-9\n").decode()}, "stringData": {"b": "sk-8"}}
    assert keys_from_secret(secret) == {"a": "sk-9", "b": "sk-8"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "expected a mapping"),
        ("a: [x]", "expected a mapping"),
        ("a: {", "not valid YAML"),
    ],
)
def test_bad_key_files_are_reported_without_their_content(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(KeySourceError, match=message):
        keys_from_file(path)


def test_bad_secret_entry_names_the_entry_not_the_value() -> None:
    with pytest.raises(KeySourceError) as info:
        keys_from_secret({"data": {"team-a": "not base64 !!sk-secret"}})
    assert "team-a" in str(info.value) and "sk-secret" not in str(info.value)


def test_rate_limiter_is_a_token_bucket_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # another key has its own bucket
    now[0] = 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert RateLimiter(0, 1).take("a") == 0.0  # 0 means unlimited


STATIC = """
deployments:
- name: llama
  namespace: team
  model: llama-8b
  endpoints:
  - {url: "http://10.0.0.1:8000/", name: use1, region: us-east-1}
  - {url: "http://10.0.0.2:8000", ready: false}
routes:
- apiVersion: modelfleet.io/v1alpha1
  kind: ModelRoute
  metadata: {name: chat, namespace: team}
  spec:
    model: chat
    rules: [{backends: [{deployment: llama}]}]
"""


def test_static_file_builds_the_catalog() -> None:
    catalog = catalog_from_static(STATIC)
    info = catalog.deployment("team", "llama")
    assert info is not None
    assert [(e.id, e.url, e.region, e.ready) for e in info.endpoints] == [
        ("use1", "http://10.0.0.1:8000", "us-east-1", True),
        ("10.0.0.2:8000", "http://10.0.0.2:8000", None, False),
    ]
    assert set(catalog.models) == {"chat", "llama-8b"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "deployments: [{name: x, model: m, endpoints: [{url: ftp://x}]}]",
            "deployments.0.endpoints.0.url",
        ),
        ("deployments: [{name: x}]", "deployments.0.model"),
        ("extra: 1", "extra"),
        ("routes: [{metadata: {name: r}, spec: {model: r, rules: []}}]", "spec.rules"),
        ("deployments: [", "not valid YAML"),
    ],
)
def test_bad_static_files_name_the_field(text: str, message: str) -> None:
    with pytest.raises(StaticFileError, match=message.replace(".", r"\.")):
        catalog_from_static(text)


ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # the gateway's own routes example: ModelRoute manifests, for the hub
        ((ROOT / "examples/gateway-routes.yaml").read_text(), "(kind ModelRoute)"),
        ((ROOT / "examples/quickstart.yaml").read_text(), "(kind FleetCluster)"),
        ("apiVersion: v1\ndeployments: []\n", "(kind unknown)"),
    ],
)
def test_a_kubernetes_manifest_is_named_as_one(text: str, message: str) -> None:
    """It said ``apiVersion: Extra inputs are not permitted``, or (several documents) a YAML
    composer error about ``"<unicode string>"``."""
    with pytest.raises(StaticFileError) as caught:
        catalog_from_static(text)
    assert str(caught.value).startswith(f"a Kubernetes manifest {message}, not a static")
    assert "<unicode string>" not in str(caught.value)


def test_several_documents_and_yaml_errors_say_where() -> None:
    with pytest.raises(StaticFileError, match=r"^2 YAML documents; a static endpoints file is one"):
        catalog_from_static("deployments: []\n---\nroutes: []\n")
    with pytest.raises(StaticFileError) as caught:
        catalog_from_static("deployments: []\nroutes: [\n")
    assert str(caught.value).startswith("not valid YAML at line 3, column 1: "), caught.value
    assert "<unicode string>" not in str(caught.value)
    assert catalog_from_static("").deployments == {}  # an empty file: an empty catalog


def test_hub_objects_give_endpoints_with_readiness_and_region() -> None:
    obj = {
        "metadata": {"name": "llama", "namespace": "team"},
        "spec": {"model": {"name": "llama-8b"}, "replicas": {"min": 0, "max": 4}},
        "status": {
            "placements": [
                {
                    "cluster": "use1",
                    "cloud": "aws",
                    "region": "us-east-1",
                    "gpu": "H100",
                    "instanceType": "p5",
                    "capacityType": "Spot",
                    "replicas": 2,
                    "ready": 0,
                },
                {
                    "cluster": "use1",
                    "cloud": "aws",
                    "region": "us-east-1",
                    "gpu": "H100",
                    "instanceType": "p5",
                    "capacityType": "OnDemand",
                    "replicas": 1,
                    "ready": 1,
                },
                {
                    "cluster": "euw4",
                    "cloud": "gcp",
                    "region": "europe-west4",
                    "gpu": "H100",
                    "instanceType": "a3",
                    "capacityType": "OnDemand",
                    "replicas": 1,
                    "ready": 0,
                },
            ],
            "endpoints": [
                {"cluster": "use1", "url": "http://llama.team.svc:8000/"},
                {"cluster": "euw4", "url": "http://llama.team.svc.euw4:8000"},
            ],
        },
    }
    info = deployment_from_object(obj)
    assert info is not None and info.key == DeploymentKey("team", "llama")
    assert info.served_model == "llama-8b"
    assert [(e.id, e.region, e.ready) for e in info.endpoints] == [
        ("use1", "us-east-1", True),
        ("euw4", "europe-west4", False),
    ]
    assert deployment_from_object({"metadata": {"name": "x"}, "spec": {}}) is None


def test_engine_load_is_read_from_each_engines_metrics() -> None:
    vllm = (
        "# TYPE vllm:num_requests_waiting gauge\n"
        'vllm:num_requests_waiting{model_name="a"} 3\n'
        'vllm:num_requests_waiting{model_name="b"} 2\n'
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        'vllm:kv_cache_usage_perc{model_name="a"} 0.42\n'
    )
    assert parse_engine_load(vllm) == (5.0, 0.42)
    assert parse_engine_load("# TYPE tgi_queue_size gauge\ntgi_queue_size 7\n") == (7.0, None)
    assert parse_engine_load("# TYPE sglang:token_usage gauge\nsglang:token_usage 0.8\n") == (
        None,
        0.8,
    )
    assert parse_engine_load("") == (None, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A second entry with the same namespace/name silently replaced the first one.
        (
            "deployments: [{name: x, model: m}, {name: x, model: m2}]",
            "deployments.1: deployment default/x appears twice",
        ),
        # A route's errors must say which route, not just 'spec.rules.0'.
        (
            "routes: [{metadata: {name: r}, spec: {model: r, rules: "
            "[{backends: [{deployment: d, weight: 0}]}]}}]",
            "routes.0.spec.rules.0",
        ),
    ],
)
def test_static_file_duplicates_and_route_errors_are_located(text: str, message: str) -> None:
    with pytest.raises(StaticFileError, match=message.replace(".", r"\.")):
        catalog_from_static(text)


def test_routes_to_missing_deployments_are_reported() -> None:
    # A route whose backend or fallback names no deployment would hold every request until
    # the hold timeout and answer 503 'scaling from zero': a typo must be visible at load.
    catalog = catalog_from_static(
        "deployments: [{name: d, model: m}]\n"
        "routes: [{metadata: {name: r}, spec: {model: a, fallback: [ghost2],"
        " rules: [{backends: [{deployment: d}, {deployment: ghost}]}]}}]\n"
    )
    assert catalog.conflicts == (
        "ModelRoute default/r: backend deployment default/ghost does not exist",
        "ModelRoute default/r: fallback deployment default/ghost2 does not exist",
    )
