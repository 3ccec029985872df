"""Every boto3 call the AWS provider makes goes through ``AwsApi.call``.

One place that: runs the synchronous SDK in a worker thread, retries throttling with bounded
equal-jitter backoff (botocore's own retries are off, see ``sdk``), classifies every other
error exactly once (``errors.classify``), scrubs credential values from messages as a last
line of defence, and pages through ``NextToken``-style results.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from modelfleet.providers.aws.errors import THROTTLING_CODES, classify
from modelfleet.providers.aws.sdk import CREDENTIAL_KEYS, SessionLike, client_config
from modelfleet.providers.errors import ProviderError
from modelfleet.providers.retry import Sleep as Sleep
from modelfleet.providers.retry import retry_throttled

BACKOFF_BASE_S: Final = 0.5
BACKOFF_CAP_S: Final = 4.0


class Redactor:
    """Holds credential values only to scrub them from messages; never printable."""

    __slots__ = ("_values",)

    def __init__(self, credentials: Mapping[str, str] | None) -> None:
        values = [credentials.get(k, "") for k in CREDENTIAL_KEYS] if credentials else []
        self._values = tuple(v for v in values if len(v) >= 4)

    def __repr__(self) -> str:
        return "<redacted>"

    def scrub(self, error: ProviderError) -> ProviderError:
        """``error`` with every credential value in its message replaced by ``***``."""
        message = error.message
        for value in self._values:
            message = message.replace(value, "***")
        if message != error.message:
            error.message = message
            error.args = (message,)
        return error


class AwsApi:
    """boto3 clients of one session, called with retry-on-throttle and classification.

    ``max_attempts`` bounds the tries of a throttled call (3: two retries); ``sleep`` and
    ``rng`` are injectable so tests neither wait nor flake. ``label`` prefixes log lines.
    """

    def __init__(
        self,
        session: SessionLike,
        *,
        redactor: Redactor,
        label: str,
        max_attempts: int = 3,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._session = session
        self._redactor = redactor
        self._label = label
        self._max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        """The cached client for ``service`` (created once; creation is thread-safe)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(service, config=client_config())
            return self._clients[service]

    async def call(
        self,
        operation: str,
        service: str,
        method: str,
        /,
        *,
        instance_type: str | None = None,
        capacity_type: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """``client(service).method(**params)`` in a worker thread.

        ``operation`` is the IAM action (``eks:CreateNodegroup``) used in messages and to name
        a missing permission. Throttling is retried up to ``max_attempts`` tries; then, and
        for every other AWS error, the classified ``ProviderError`` is raised. Non-AWS
        exceptions (bugs) propagate unchanged.
        """
        client = await asyncio.to_thread(self.client, service)
        bound = getattr(client, method)

        async def attempt() -> dict[str, Any]:
            try:
                result: dict[str, Any] = await asyncio.to_thread(bound, **params)
            except Exception as exc:
                if not is_aws_error(exc):
                    raise
                error = classify(
                    exc,
                    operation=operation,
                    instance_type=instance_type,
                    capacity_type=capacity_type,
                )
                raise self._redactor.scrub(error) from exc
            return result

        return await retry_throttled(
            attempt,
            max_attempts=self._max_attempts,
            sleep=self._sleep,
            rng=self._rng,
            label=f"aws {self._label}: {operation}",
            should_retry=lambda error: error.cloud_code in THROTTLING_CODES,
            backoff=lambda n, _error: self.backoff(n),
        )

    async def paginate(
        self,
        operation: str,
        service: str,
        method: str,
        result_key: str,
        /,
        *,
        token_in: str = "NextToken",
        token_out: str = "NextToken",
        **params: Any,
    ) -> list[Any]:
        """Every item under ``result_key`` across pages (each page is one ``call``)."""
        items: list[Any] = []
        token: str | None = None
        while True:
            page_params = dict(params)
            if token:
                page_params[token_in] = token
            page = await self.call(operation, service, method, **page_params)
            items += page.get(result_key) or []
            token = page.get(token_out)
            if not token:
                return items

    def backoff(self, attempt: int) -> float:
        """Seconds before retry ``attempt`` (1-based): equal jitter, 0.25-0.5 s, 0.5-1 s, ..."""
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** (attempt - 1))
        jitter: float = self._rng.uniform(0, ceiling / 2)
        return ceiling / 2 + jitter


def is_aws_error(error: BaseException) -> bool:
    """True for botocore's ClientError/BotoCoreError families (by class name: no import)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"ClientError", "BotoCoreError"})


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    """``items`` in lists of at most ``size`` (API filters cap their value counts)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
