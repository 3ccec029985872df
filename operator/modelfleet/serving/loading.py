"""Find the model's files and load them with transformers.

``spec.model.uri`` may name a local directory or a ``file://`` URI (used in place), an
``s3://bucket/prefix`` (boto3: every object under the prefix), a ``gs://bucket/prefix``
(the Cloud Storage JSON API with google-auth's default credentials), an ``http(s)://`` base URL (the standard
Hugging Face file set is fetched from it: config, tokenizer files, safetensors weights and
the shards an index lists), or a Hub id ``org/name`` (left to transformers' own Hub cache).

Remote models land in ``<cache_dir>/<sha256 of the URI>/`` and are fetched once: a folder
is complete when its ``.complete`` marker exists; a fetch goes to a temporary folder
first and is renamed into place, so a crash never leaves a half model behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

COMPLETE_MARKER: Final = ".complete"
HTTP_REQUIRED: Final = ("config.json",)
HTTP_OPTIONAL: Final = (
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)


class ModelLoadError(Exception):
    """The model could not be fetched or loaded (the message says which file or why)."""


def _fetch_s3(uri: urllib.parse.SplitResult, dest: Path) -> None:
    import boto3  # the serving extra ships boto3; endpoint/credentials from the environment

    bucket, prefix = uri.netloc, uri.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    client = boto3.client("s3")
    found = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key: str = item["Key"]
            relative = key[len(prefix) :]
            if not relative or relative.endswith("/"):
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(target))
            found += 1
    if not found:
        raise ModelLoadError(f"no objects under s3://{bucket}/{prefix}")


GCS_READ_SCOPE: Final = "https://www.googleapis.com/auth/devstorage.read_only"


def _gcs_token() -> str | None:
    """A bearer token from Application Default Credentials (workload identity, a key file,
    the metadata server), or None against an emulator (``STORAGE_EMULATOR_HOST``)."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return None
    try:
        import google.auth
        import google.auth.transport.urllib3
        import urllib3
    except ImportError as exc:  # pragma: no cover - the serving extra ships google-auth
        raise ModelLoadError("gs:// models need google-auth: pip install google-auth") from exc
    credentials: Any
    credentials, _project = google.auth.default(scopes=[GCS_READ_SCOPE])
    transport: Any = google.auth.transport.urllib3  # untyped in google-auth
    credentials.refresh(transport.Request(urllib3.PoolManager()))
    return str(credentials.token)


def _fetch_gs(uri: urllib.parse.SplitResult, dest: Path) -> None:
    """Every object under ``gs://bucket/prefix/``, through the Cloud Storage JSON API
    (``STORAGE_EMULATOR_HOST`` points it at an emulator, as Google's own clients do)."""
    bucket, prefix = uri.netloc, uri.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    base = os.environ.get("STORAGE_EMULATOR_HOST", "https://storage.googleapis.com").rstrip("/")
    token = _gcs_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    quoted_bucket = urllib.parse.quote(bucket, safe="")
    names: list[str] = []
    page: str | None = None
    while True:
        query = {"prefix": prefix, "fields": "items(name),nextPageToken"}
        if page:
            query["pageToken"] = page
        url = f"{base}/storage/v1/b/{quoted_bucket}/o?{urllib.parse.urlencode(query)}"
        listing_path = dest / ".listing.json"
        _http_get(url, listing_path, required=True, headers=headers)
        listing = json.loads(listing_path.read_text())
        listing_path.unlink()
        names += [item["name"] for item in listing.get("items", [])]
        page = listing.get("nextPageToken")
        if not page:
            break
    found = 0
    for name in names:
        relative = name[len(prefix) :]
        if not relative or relative.endswith("/"):
            continue
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        object_url = (
            f"{base}/storage/v1/b/{quoted_bucket}/o/{urllib.parse.quote(name, safe='')}?alt=media"
        )
        _http_get(object_url, target, required=True, headers=headers)
        found += 1
    if not found:
        raise ModelLoadError(f"no objects under gs://{bucket}/{prefix}")


def _http_get(
    url: str, target: Path, *, required: bool, headers: dict[str, str] | None = None
) -> bool:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply, target.open("wb") as out:
            shutil.copyfileobj(reply, out, length=1 << 20)
        return True
    except urllib.error.HTTPError as exc:
        target.unlink(missing_ok=True)
        if exc.code == 404 and not required:
            return False
        raise ModelLoadError(f"GET {url.split('?')[0]}: HTTP {exc.code}") from exc
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise ModelLoadError(f"GET {url}: {exc}") from exc


def _fetch_http(base: str, dest: Path) -> None:
    base = base if base.endswith("/") else base + "/"
    for name in HTTP_REQUIRED:
        _http_get(base + name, dest / name, required=True)
    for name in HTTP_OPTIONAL:
        _http_get(base + name, dest / name, required=False)
    index = dest / "model.safetensors.index.json"
    if _http_get(base + index.name, index, required=False):
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        for shard in shards:
            _http_get(base + shard, dest / shard, required=True)
    else:
        _http_get(base + "model.safetensors", dest / "model.safetensors", required=True)


def cache_path(uri: str, cache_dir: Path) -> Path:
    """Where ``uri`` is kept in ``cache_dir``."""
    return cache_dir / hashlib.sha256(uri.encode()).hexdigest()[:32]


def resolve_model(ref: str, cache_dir: Path) -> str:
    """A path (or Hub id) transformers can load for ``ref``, fetching remote URIs into
    ``cache_dir`` first (once). Raises ``ModelLoadError``."""
    uri = urllib.parse.urlsplit(ref)
    if uri.scheme == "file":
        path = urllib.parse.unquote(uri.path)
        if not Path(path).is_dir():
            raise ModelLoadError(f"no model directory at {path}")
        return path
    if uri.scheme in ("", "hf") or len(uri.scheme) == 1:  # a path (or C:\ on Windows), a Hub id
        if ref.startswith(("/", ".", "~")) and not Path(ref).expanduser().is_dir():
            raise ModelLoadError(f"no model directory at {ref}")
        return str(Path(ref).expanduser()) if ref.startswith("~") else ref.removeprefix("hf://")
    fetchers = {"s3": _fetch_s3, "gs": _fetch_gs}
    if uri.scheme not in (*fetchers, "http", "https"):
        raise ModelLoadError(f"unsupported model URI scheme {uri.scheme!r} in {ref!r}")
    dest = cache_path(ref, cache_dir)
    if (dest / COMPLETE_MARKER).exists():
        log.info("model %s already in cache at %s", ref, dest)
        return str(dest)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache_dir))
    try:
        log.info("fetching model %s into %s", ref, dest)
        if uri.scheme in fetchers:
            fetchers[uri.scheme](uri, staging)
        else:
            _fetch_http(ref, staging)
        (staging / COMPLETE_MARKER).write_text(ref)
        if dest.exists():  # an incomplete earlier attempt
            shutil.rmtree(dest)
        os.replace(staging, dest)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"fetching {ref}: {type(exc).__name__}: {exc}") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return str(dest)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve."""

    model: Any
    """transformers ``PreTrainedModel`` (causal LM), eval mode, on ``device``."""
    tokenizer: Any
    """transformers tokenizer (fast), with its chat template when the model has one."""
    device: Any
    """``torch.device``."""
    max_context: int
    """Longest prompt + generation, in tokens (``max_position_embeddings``)."""
    eos_token_ids: frozenset[int]
    """Tokens that end generation (generation config, model config, tokenizer)."""


def pick_device_dtype(device: str, dtype: str) -> tuple[Any, Any]:
    """(torch.device, torch.dtype) for the settings' ``device`` and ``dtype`` strings."""
    import torch

    dev = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else ("cpu" if device == "auto" else device)
    )
    if dtype != "auto":
        return dev, getattr(torch, dtype)
    if dev.type == "cuda":
        return dev, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return dev, torch.float32


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)


# The files a tokenizer loads from (fast, sentencepiece, BPE, WordPiece); one must exist.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


def load_model(
    ref: str, *, cache_dir: Path, device: str = "auto", dtype: str = "auto"
) -> LoadedModel:
    """Fetch (if remote) and load the model and tokenizer of ``ref``. Raises
    ``ModelLoadError`` with the reason (missing files, unknown architecture, ...)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(ref, cache_dir)
    if (
        Path(path).is_dir()
        and not any((Path(path) / name).is_file() for name in TOKENIZER_FILES)
        and not any(Path(path).glob("*.tiktoken"))
    ):
        raise ModelLoadError(
            f"no tokenizer files in {path} (expected one of {', '.join(TOKENIZER_FILES)})"
        )
    dev, torch_dtype = pick_device_dtype(device, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    except (OSError, ValueError, KeyError) as exc:
        # transformers' messages span lines; the log line (and the exit reason) is one line.
        reason = " ".join(str(exc).split())
        raise ModelLoadError(f"loading {ref} ({path}): {reason}") from exc
    model = model.to(dev).eval()
    torch.set_grad_enabled(False)
    max_context = int(getattr(model.config, "max_position_embeddings", 0) or 4096)
    log.info(
        "loaded %s on %s (%s, %.1fM parameters, context %d)",
        ref,
        dev,
        torch_dtype,
        sum(p.numel() for p in model.parameters()) / 1e6,
        max_context,
    )
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        device=dev,
        max_context=max_context,
        eos_token_ids=_eos_ids(model, tokenizer),
    )


def default_kv_cache_tokens(loaded: LoadedModel, *, memory_fraction: float) -> int:
    """KV-cache budget in token positions: on CUDA, ``memory_fraction`` of the free memory
    divided by the bytes one position takes in every layer; on CPU, 65,536."""
    import torch

    if loaded.device.type != "cuda":
        return 65536
    config = loaded.model.config
    text = getattr(config, "text_config", None) or config
    heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    element = torch.finfo(next(loaded.model.parameters()).dtype).bits // 8
    per_token = 2 * text.num_hidden_layers * heads * head_dim * element
    free, _total = torch.cuda.mem_get_info(loaded.device)
    return max(1024, int(free * memory_fraction) // int(per_token))
