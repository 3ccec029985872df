"""``modelfleet profile`` with bad arguments and bad endpoints (QA of issue 10): it must end
with a clear error, never a traceback, and what it writes must be a profile the CRD schema
accepts.

Found on main:
- an unreachable URL, or a server that answers without streaming, ran the search and
  ended with "no offered rate met the objectives", the same words as an SLO no rate can
  meet: the cause (connection refused, no streamed content) was never said;
- ``--out`` into a missing folder ran the whole load test, then ended in a
  ``FileNotFoundError`` traceback and lost the measurement;
- ``--gpu-count 0`` or ``--gpu "bad gpu!"`` wrote a profile the API server rejects
  (``gpuCount`` >= 1, the GPU name pattern);
- ``http://user:password@host/v1`` wrote the password into the profile's
  ``measurement.endpoint`` (documented as "no credentials").

The command runs as a child process (the real CLI, its exit status and output), against
the stub of ``profile_stub.py`` and a server that answers chat completions with plain JSON.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from modelfleet.api.validation import Document, validate_document

try:
    from profile_stub import OpenAIStub, run_profile, started_stub
except ImportError:  # tests as a package
    from tests.integration.profile_stub import OpenAIStub, run_profile, started_stub

pytestmark = pytest.mark.integration

QUICK = [
    "--model", "stub", "--gpu", "H100", "--step-seconds", "3", "--start-rate", "2",
    "--max-rate", "2", "--arrivals", "uniform", "--refine", "0", "--ttft-p95-ms", "5000",
    "--prompt-tokens", "16", "--output-tokens", "4",
]  # fmt: skip


stub = pytest.fixture(started_stub)


@pytest.fixture
async def plain_json() -> AsyncIterator[str]:
    """A chat-completions endpoint that ignores ``stream`` and answers one JSON body."""

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "m"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "hi"},
                        "finish_reason": "stop",
                    }
                ],
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_endpoint_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, out = await run_profile(url, *QUICK)
    assert code == 2, out
    assert "Traceback" not in out
    assert "cannot connect" in out and url in out, out


async def test_a_server_that_does_not_stream_is_a_clear_error(plain_json: str) -> None:
    code, out = await run_profile(plain_json, *QUICK)
    assert code == 2, out
    assert "Traceback" not in out
    assert "stream" in out, out


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--gpu-count", "0"], "--gpu-count"),
        (["--gpu-count", "17"], "--gpu-count"),
        (["--gpu", "bad gpu!"], "--gpu"),
        (["--out", "/nonexistent-b10/dir/p.yaml"], "--out"),
    ],
)
async def test_arguments_the_profile_cannot_carry_are_refused_before_the_run(
    stub: OpenAIStub, args: list[str], named: str
) -> None:
    code, out = await run_profile(stub.url, *QUICK, *args)
    assert code == 2, out
    assert "Traceback" not in out
    assert named in out, out
    assert stub.requests == 0  # refused before any load was sent


async def test_the_written_profile_passes_the_crd_schema_and_holds_no_credentials(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    url = stub.url.replace("http://", "http://alice:s3cret@")
    out_file = tmp_path / "profile.yaml"
    code, out = await run_profile(url, *QUICK, "--gpu-count", "2", "--out", str(out_file))
    assert code == 0, out
    text = out_file.read_text()
    assert "s3cret" not in text and "s3cret" not in out
    fragment = yaml.safe_load(text)
    manifest = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m", "namespace": "default"},
        "spec": {
            "model": {"name": "stub"},
            "replicas": {"min": 1, "max": 4},
            "resources": {"gpu": {"count": 2, "types": ["H100"]}},
            **fragment["spec"],
        },
    }
    doc = Document(source=str(out_file), index=0, data=manifest)
    assert validate_document(doc) == []
    assert fragment["spec"]["capacityProfiles"][0]["measurement"]["endpoint"] == stub.url
