"""The only place that imports boto3: a lazy adaptor, after SkyPilot's ``sky/adaptors/aws.py``.

boto3 is an optional extra (``modelfleet[aws]``), so it is imported on first use and a missing
install becomes ``ProviderUnavailable`` with the pip command to run. This module also owns
how a boto3 session is built from a FleetCluster's credentials and how clients are
configured:

- Credentials: with none given, boto3's default chain is used (IRSA through
  ``AWS_ROLE_ARN``/``AWS_WEB_IDENTITY_TOKEN_FILE``, environment, instance profile). A Secret's
  ``aws_access_key_id``/``aws_secret_access_key``/``aws_session_token`` may be passed instead;
  the values go into the session and nowhere else (never logged, never in a message).
- Endpoint: boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_EKS`` ...) natively,
  which is how the tests point the real SDK at a moto server.
- Retries: botocore's own retries are switched off (``total_max_attempts=1``). Throttling is
  retried once, visibly, by the provider's bounded jittered backoff; everything else is
  returned to the reconciler, whose requeue delay is the real backoff. Two retry layers
  stacked would multiply the worst-case latency of a reconcile.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Protocol

from modelfleet.extras import missing_extra_in_operator
from modelfleet.providers.errors import InvalidConfiguration, ProviderUnavailable

# Keys of a credentials Secret (same names as ~/.aws/credentials).
ACCESS_KEY_ID = "aws_access_key_id"
SECRET_ACCESS_KEY = "aws_secret_access_key"
SESSION_TOKEN = "aws_session_token"
CREDENTIAL_KEYS = (ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN)

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0


class SessionLike(Protocol):
    """What the provider needs of a boto3 ``Session``: clients."""

    def client(self, service_name: str, *, config: Any = None) -> Any:
        """A low-level client for ``service_name`` (ec2, eks, autoscaling, service-quotas)."""
        ...


SessionFactory = Callable[[str, Mapping[str, str] | None], SessionLike]
"""Builds a session for (region, credentials or None for the default chain)."""


def import_module(name: str) -> ModuleType:
    """Import ``boto3``/``botocore...`` or raise ``ProviderUnavailable`` naming the extra."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ProviderUnavailable(
            missing_extra_in_operator("the aws provider", "aws", name)
        ) from exc


def client_config() -> Any:
    """botocore ``Config``: no SDK-level retries, bounded timeouts, a modelfleet user agent."""
    config_module = import_module("botocore.config")
    return config_module.Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        user_agent_extra="modelfleet",
    )


def validate_credentials(credentials: Mapping[str, str]) -> None:
    """Raise ``InvalidConfiguration`` naming (only) the missing or unknown keys."""
    missing = [k for k in (ACCESS_KEY_ID, SECRET_ACCESS_KEY) if not credentials.get(k)]
    if missing:
        raise InvalidConfiguration(
            f"credentials Secret lacks {', '.join(missing)} "
            f"(expected keys: {', '.join(CREDENTIAL_KEYS)})"
        )
    unknown = sorted(set(credentials) - set(CREDENTIAL_KEYS))
    if unknown:
        raise InvalidConfiguration(
            f"credentials Secret has unknown keys {', '.join(unknown)} "
            f"(expected: {', '.join(CREDENTIAL_KEYS)})"
        )


def default_session_factory(region: str, credentials: Mapping[str, str] | None) -> SessionLike:
    """A boto3 ``Session`` for ``region``: explicit credentials, else the default chain.

    Raises ``ProviderUnavailable`` without boto3 and ``InvalidConfiguration`` for a
    credentials mapping that lacks a key. Does no I/O: credentials are resolved on the
    first call.
    """
    boto3 = import_module("boto3")
    if credentials is None:
        session: SessionLike = boto3.session.Session(region_name=region)
        return session
    validate_credentials(credentials)
    session = boto3.session.Session(
        region_name=region,
        aws_access_key_id=credentials[ACCESS_KEY_ID],
        aws_secret_access_key=credentials[SECRET_ACCESS_KEY],
        aws_session_token=credentials.get(SESSION_TOKEN) or None,
    )
    return session
