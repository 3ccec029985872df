"""Who may call the gateway: API keys, held only as keyed hashes and compared in constant
time, and a request-rate limit per key.

Keys come from a Kubernetes Secret (each data entry is one key; the entry's name is the
key's id) or a file (a YAML mapping of id to key, or a folder with one file per key, as a
Secret mounted as a volume). The gateway keeps HMAC-SHA256 digests under a random
per-process secret, never the keys themselves, and checks a presented key against every
digest with ``hmac.compare_digest`` without stopping at a match, so the time taken says
nothing about which key (or how much of one) matched. Ids appear in logs; keys and digests
never do, nor in metrics.
"""

from __future__ import annotations

import base64
import hmac
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import yaml


class KeySourceError(ValueError):
    """A key file or Secret could not be read (the message never holds a key)."""


class ApiKeys:
    """The accepted API keys, as digests.

    Authentication is on when ``required`` (a key source is configured: even with no key
    loaded yet, every request is refused rather than let through) or any key is set.
    """

    def __init__(self, keys: Mapping[str, str] | None = None, *, required: bool = False) -> None:
        self._pepper = secrets.token_bytes(32)
        self._digests: tuple[tuple[bytes, str], ...] = ()
        self.required = required
        self.replace(keys or {})

    def _digest(self, key: str) -> bytes:
        return hmac.new(self._pepper, key.encode("utf-8", "surrogateescape"), sha256).digest()

    def replace(self, keys: Mapping[str, str]) -> None:
        """Accept exactly ``keys`` (id -> key) from now on; empty keys are ignored."""
        self._digests = tuple(
            (self._digest(key), key_id) for key_id, key in sorted(keys.items()) if key
        )

    @property
    def enabled(self) -> bool:
        """Whether requests need a key."""
        return self.required or bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def identify(self, presented: str) -> str | None:
        """The id of the key ``presented`` matches, or None. Constant time in the key."""
        digest = self._digest(presented)
        found: str | None = None
        for candidate, key_id in self._digests:
            if hmac.compare_digest(candidate, digest) and found is None:
                found = key_id
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def keys_from_file(path: Path) -> dict[str, str]:
    """Keys from a YAML mapping ``id: key`` or a folder of files (file name = id).

    Dot-files are skipped (a mounted Secret's ``..data`` links). Raises KeySourceError.
    """
    try:
        if path.is_dir():
            return {
                p.name: p.read_text(encoding="utf-8").strip()
                for p in sorted(path.iterdir())
                if p.is_file() and not p.name.startswith(".")
            }
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise KeySourceError(f"{path}: cannot read ({type(exc).__name__})") from None
    except yaml.YAMLError:
        raise KeySourceError(f"{path}: not valid YAML") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise KeySourceError(f"{path}: expected a mapping of key id to key (strings)")
    return {k: v.strip() for k, v in data.items()}


def keys_from_secret(secret: Mapping[str, Any]) -> dict[str, str]:
    """Keys from a Secret object (``data`` base64, ``stringData`` plain). Raises
    KeySourceError naming the entry, never its value."""
    out: dict[str, str] = {}
    for key_id, value in (secret.get("data") or {}).items():
        try:
            out[str(key_id)] = base64.b64decode(str(value), validate=True).decode().strip()
        except (ValueError, UnicodeDecodeError):
            raise KeySourceError(f"Secret entry {key_id!r} is not base64 UTF-8") from None
    for key_id, value in (secret.get("stringData") or {}).items():
        out[str(key_id)] = str(value).strip()
    return out


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key id: ``rate`` requests per second, ``burst`` at once.

    ``rate`` <= 0 disables limiting. ``clock`` is monotonic seconds.
    """

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = max(1, burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key_id: str) -> float:
        """Spend one request of ``key_id``: 0 when allowed, else the seconds until it would
        be (for Retry-After)."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(float(self._burst), now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate


def retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
