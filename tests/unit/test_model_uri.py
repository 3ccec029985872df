"""``spec.model.uri``: what the committed CRD (the API server) and the API model (the operator,
``modelfleet validate``) accept, in particular ``pvc://<claimName>/<path>``.

The CRD's ``pattern`` is read from the committed ``crds/`` file and applied as an API server
applies a JSON-schema pattern (an unanchored search; the constructs used mean the same in
Python's ``re`` and Go's RE2).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelfleet.api import ModelDeployment
from modelfleet.api.modeldeployment import parse_pvc_uri

ROOT = Path(__file__).resolve().parents[2]


def _crd_uri_schema() -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / "modeldeployments.modelfleet.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    uri: dict[str, Any] = schema["properties"]["spec"]["properties"]["model"]["properties"]["uri"]
    return uri


def api_server_accepts(uri: str) -> bool:
    schema = _crd_uri_schema()
    return len(uri) <= schema["maxLength"] and re.search(schema["pattern"], uri) is not None


def model_deployment(uri: str) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": "llama", "namespace": "team-a"},
            "spec": {
                "model": {"name": "llama-3.1-8b-instruct", "uri": uri},
                "resources": {"gpu": {"count": 1}},
                "replicas": {"min": 1, "max": 2},
            },
        }
    )


ACCEPTED = [
    ("pvc://llama-weights/meta/llama-3.1-8b", ("llama-weights", "meta/llama-3.1-8b")),
    ("pvc://llama-weights/meta/llama-3.1-8b/", ("llama-weights", "meta/llama-3.1-8b")),
    ("pvc://llama-weights", ("llama-weights", "")),
    ("pvc://llama-weights/", ("llama-weights", "")),
    ("pvc://weights.v2/Llama 3.1/.cache/..x", ("weights.v2", "Llama 3.1/.cache/..x")),
    ("pvc://0/m", ("0", "m")),
    ("s3://weights/llama-3.1-8b/", None),
    ("az://container/llama", None),
    ("hf://meta-llama/Llama-3.1-8B", None),
    ("/mnt/llama", None),
]

REFUSED = [
    "pvc://",  # no claim
    "pvc:///llama",  # empty claim
    "pvc://Llama-Weights/m",  # upper case: not a DNS-1123 subdomain
    "pvc://llama_weights/m",  # underscore
    "pvc://-weights/m",  # starts with a dash
    "pvc://weights-/m",  # ends with a dash
    "pvc://weights..v2/m",  # empty DNS label
    "pvc://weights/../etc",  # leaves the volume
    "pvc://weights/a/..",
    "pvc://weights/./m",
    "pvc://weights//m",  # empty segment
    "pvc://weights/m//",
    "pvc:/weights/m",
    "mount://weights/m",
]


@pytest.mark.parametrize(("uri", "parsed"), ACCEPTED)
def test_accepted_uris_pass_the_crd_and_the_api_model(
    uri: str, parsed: tuple[str, str] | None
) -> None:
    assert api_server_accepts(uri)
    assert model_deployment(uri).spec.model.uri == uri
    assert parse_pvc_uri(uri) == parsed


@pytest.mark.parametrize("uri", REFUSED)
def test_malformed_pvc_uris_are_refused_by_the_crd_and_the_api_model(uri: str) -> None:
    assert not api_server_accepts(uri)
    with pytest.raises(ValidationError) as caught:
        model_deployment(uri)
    if uri.startswith("pvc://"):
        # Not a regex dump: what a pvc:// URI must look like.
        assert "pvc://<claimName>/<path inside the volume>" in str(caught.value)
        assert "DNS-1123 subdomain" in str(caught.value)


def test_a_claim_name_past_253_characters_is_refused_by_the_api_model() -> None:
    # The CRD pattern cannot bound a subdomain's length; the operator refuses it by name.
    claim = ".".join(["a" * 63] * 4)  # 255 characters
    uri = f"pvc://{claim}/m"

    assert api_server_accepts(uri)
    with pytest.raises(ValidationError, match="at most 253 characters, got 255"):
        model_deployment(uri)
    assert parse_pvc_uri(f"pvc://{claim[:253].rstrip('.')}/m") is not None
