"""Model loading from URIs, and the server's command line as a real process.

A tiny random-weight Llama is uploaded to S3 (moto server, real boto3 over HTTP) and served
by ``python -m modelfleet.serving --model s3://...``: its greedy answer must equal what
transformers' own ``generate`` makes of the same model. An http(s) base URL is fetched once
into the cache; missing models are ``ModelLoadError``s and a server whose model cannot be
loaded exits with status 1 (so Kubernetes restarts it).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from modelfleet.serving.loading import COMPLETE_MARKER, ModelLoadError, load_model, resolve_model
from modelfleet.serving.tiny import write_tiny_model

try:  # tests/integration on sys.path (pytest's default rootdir-less import)
    from cloud_fixtures import moto_server
except ImportError:  # tests as a package
    from tests.integration.cloud_fixtures import moto_server

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 120.0  # a fresh process imports torch and transformers: slow on a busy CI box


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("serving-loading") / "tiny")


def aws_env(moto_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws-credentials"),
        HF_HUB_OFFLINE="1",
    )
    return env


def upload(moto_url: str, model_dir: Path, *, bucket: str, prefix: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket=bucket)
    for path in model_dir.iterdir():
        s3.upload_file(str(path), bucket, f"{prefix}/{path.name}")


@contextlib.contextmanager
def server_process(
    args: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelfleet.serving", *args],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


LISTENING = re.compile(rb"listening on http://\S+:(\d+)")


def bound_url(process: subprocess.Popen[bytes], log: Path) -> str:
    """The server's URL on loopback, read from the log line it writes once it has bound
    ``--port 0`` (a port picked here and bound seconds later, after the torch import, could
    be taken meanwhile by another process on a busy machine)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_bytes())
        if found:
            return f"http://127.0.0.1:{int(found.group(1))}"
        if process.poll() is not None:
            raise AssertionError(f"server exited {process.returncode}:\n{log.read_text()}")
        time.sleep(0.2)
    raise AssertionError(f"server bound no port after {START_TIMEOUT_S}s:\n{log.read_text()}")


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited {process.returncode}:\n{log.read_text()}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(f"{url}/ready", timeout=2) as reply,
        ):
            if reply.status == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"server not ready after {START_TIMEOUT_S}s:\n{log.read_text()}")


def test_an_s3_model_is_fetched_and_served_like_transformers_generate(
    model_dir: Path, tmp_path: Path
) -> None:
    tokenizer: Any = AutoTokenizer.from_pretrained(model_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    prompt = "w10 w11 w12 w13"
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=10, min_new_tokens=10, do_sample=False)
    expected = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)

    with moto_server() as moto_url:
        upload(moto_url, model_dir, bucket="weights", prefix="models/tiny")
        cache = tmp_path / "cache"
        args = ["--model", "s3://weights/models/tiny", "--served-model-name", "tiny",
                "--port", "0", "--cache-dir", str(cache), "--cpu-threads", "1"]  # fmt: skip
        log = tmp_path / "server.log"
        with server_process(args, aws_env(moto_url, tmp_path), log) as process:
            url = bound_url(process, log)
            wait_ready(url, process, log)
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
            reply = client.completions.create(
                model="tiny", prompt=prompt, max_tokens=10, temperature=0,
                extra_body={"ignore_eos": True},
            )  # fmt: skip
            process.terminate()
            # uvicorn shuts down gracefully, then re-raises SIGTERM (exit status -15).
            assert process.wait(30) in (0, -signal.SIGTERM), log.read_text()
            assert "Traceback" not in log.read_text()
    assert reply.choices[0].text == expected
    fetched = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert len(fetched) == 1 and (fetched[0] / COMPLETE_MARKER).exists()
    assert (fetched[0] / "model.safetensors").read_bytes() == (
        model_dir / "model.safetensors"
    ).read_bytes()


def test_a_server_whose_model_cannot_load_exits_1(tmp_path: Path) -> None:
    args = ["--model", str(tmp_path / "missing"), "--port", "0", "--cache-dir", str(tmp_path)]
    log = tmp_path / "server.log"
    with server_process(args, dict(os.environ, HF_HUB_OFFLINE="1"), log) as process:
        assert process.wait(START_TIMEOUT_S) == 1
    assert "no model directory" in log.read_text()


@pytest.fixture
def http_model(model_dir: Path) -> Iterator[tuple[str, list[str]]]:
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Handler, directory=str(model_dir.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{model_dir.name}/", requests
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_model_is_fetched_once_into_the_cache(
    http_model: tuple[str, list[str]], model_dir: Path, tmp_path: Path
) -> None:
    url, requests = http_model
    path = Path(resolve_model(url, tmp_path / "cache"))
    assert (path / "config.json").read_text() == (model_dir / "config.json").read_text()
    assert (path / "model.safetensors").stat().st_size == (
        model_dir / "model.safetensors"
    ).stat().st_size
    assert any(r.endswith("/tokenizer.json") for r in requests)
    fetched = len(requests)

    assert resolve_model(url, tmp_path / "cache") == str(path)
    assert len(requests) == fetched  # cached: nothing fetched again
    loaded = load_model(url, cache_dir=tmp_path / "cache")
    assert loaded.max_context == 2048
    assert loaded.tokenizer.chat_template


def test_missing_models_are_load_errors(http_model: tuple[str, list[str]], tmp_path: Path) -> None:
    url, _ = http_model
    with pytest.raises(ModelLoadError, match="HTTP 404"):
        resolve_model(url.replace("/tiny/", "/nothing/"), tmp_path)
    with pytest.raises(ModelLoadError, match="unsupported model URI scheme"):
        resolve_model("ftp://example/model", tmp_path)
    with pytest.raises(ModelLoadError, match="no model directory"):
        resolve_model(f"file://{tmp_path}/absent", tmp_path)
    with moto_server() as moto_url, pytest.MonkeyPatch.context() as patch:
        for key, value in aws_env(moto_url, tmp_path).items():
            if key.startswith("AWS_"):
                patch.setenv(key, value)
        import boto3

        boto3.client("s3").create_bucket(Bucket="empty")
        with pytest.raises(ModelLoadError, match="no objects under"):
            resolve_model("s3://empty/models/x", tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fetch-")]  # cleaned up


def test_a_gs_model_is_fetched_through_the_storage_json_api(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local stub speaks the two Cloud Storage JSON API calls (list with pages, download
    with ``alt=media``) at ``STORAGE_EMULATOR_HOST``, as Google's clients use emulators."""
    import json
    import urllib.parse

    objects = {f"models/tiny/{p.name}": p.read_bytes() for p in model_dir.iterdir()}
    objects["models/other/config.json"] = b"{}"  # another prefix: must not be fetched
    calls: list[str] = []

    class Storage(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            calls.append(url.path)
            if url.path == "/storage/v1/b/weights/o":  # list, two names per page
                names = sorted(n for n in objects if n.startswith(query["prefix"]))
                start = int(query.get("pageToken", "0"))
                page: dict[str, Any] = {"items": [{"name": n} for n in names[start : start + 2]]}
                if start + 2 < len(names):
                    page["nextPageToken"] = str(start + 2)
                self._send(json.dumps(page).encode())
            elif url.path.startswith("/storage/v1/b/weights/o/") and query.get("alt") == "media":
                name = urllib.parse.unquote(url.path.removeprefix("/storage/v1/b/weights/o/"))
                if name in objects:
                    self._send(objects[name])
                else:
                    self.send_error(404)
            else:
                self.send_error(404)

        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    stub = ThreadingHTTPServer(("127.0.0.1", 0), Storage)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{stub.server_address[1]}")
        path = Path(resolve_model("gs://weights/models/tiny", tmp_path / "cache"))
        with pytest.raises(ModelLoadError, match="no objects under"):
            resolve_model("gs://weights/models/none", tmp_path / "cache")
    finally:
        stub.shutdown()
        stub.server_close()
    assert sorted(p.name for p in path.iterdir() if p.name != COMPLETE_MARKER) == sorted(
        p.name for p in model_dir.iterdir()
    )
    assert (path / "model.safetensors").read_bytes() == (
        model_dir / "model.safetensors"
    ).read_bytes()
    assert calls.count("/storage/v1/b/weights/o") >= 4  # paged listing followed to the end


def test_a_directory_without_tokenizer_files_is_one_clear_load_error(
    model_dir: Path, tmp_path: Path
) -> None:
    # transformers' own message for this case is five lines about sentencepiece/tiktoken
    # and never says that the tokenizer files are missing.
    bare = tmp_path / "no-tokenizer"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((model_dir / name).read_bytes())
    with pytest.raises(ModelLoadError, match="no tokenizer files") as caught:
        load_model(str(bare), cache_dir=tmp_path / "cache", device="cpu")
    assert "\n" not in str(caught.value)
