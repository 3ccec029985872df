"""The Google Cloud SDK behind a small adaptor: lazy imports, credentials, endpoints.

The SDK is an optional extra (``modelfleet[gcp]``), imported only when a GCP provider is
built, so the core install stays light and a missing extra is a clear ProviderUnavailable.
Clients use the REST transport (Compute Engine has no other; one transport for both APIs
keeps proxies and the test stub simple) and are created on first use inside a worker
thread, because Application Default Credentials may probe the metadata server.
Credentials are never logged: a service-account key is parsed here and only the resulting
credentials object is kept.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelfleet.extras import missing_extra_in_operator
from modelfleet.providers.errors import InvalidConfiguration, ProviderUnavailable

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
SERVICE_ACCOUNT_KEY = "service_account.json"
CONTAINER_ENDPOINT_ENV = "MODELFLEET_GCP_CONTAINER_ENDPOINT"
COMPUTE_ENDPOINT_ENV = "MODELFLEET_GCP_COMPUTE_ENDPOINT"


@dataclass(frozen=True)
class GcpSdk:
    """The imported SDK modules (typed Any: the SDK ships no stubs mypy can use here)."""

    container: Any  # google.cloud.container_v1
    compute: Any  # google.cloud.compute_v1
    exceptions: Any  # google.api_core.exceptions
    client_options: Any  # google.api_core.client_options


def load_sdk() -> GcpSdk:
    """Import the Google Cloud SDK. Raises ProviderUnavailable when the extra is missing."""
    try:
        from google.api_core import client_options, exceptions
        from google.cloud import compute_v1, container_v1
    except ImportError as err:
        missing = err.name or "the Google Cloud SDK"
        raise ProviderUnavailable(
            missing_extra_in_operator("the gcp provider", "gcp", missing)
        ) from err
    return GcpSdk(container_v1, compute_v1, exceptions, client_options)


@dataclass(frozen=True)
class Endpoints:
    """API endpoint overrides (e.g. ``http://127.0.0.1:8080`` or a Private Service Connect
    host); None means the SDK's default public endpoint."""

    container: str | None
    compute: str | None

    @classmethod
    def resolve(cls, endpoint: str | None) -> Endpoints:
        """The ``endpoint`` argument applies to both APIs; otherwise the environment
        variables MODELFLEET_GCP_CONTAINER_ENDPOINT / MODELFLEET_GCP_COMPUTE_ENDPOINT."""
        return cls(
            endpoint or os.environ.get(CONTAINER_ENDPOINT_ENV) or None,
            endpoint or os.environ.get(COMPUTE_ENDPOINT_ENV) or None,
        )


def build_credentials(credentials: Mapping[str, str] | None, sdk_credentials: object) -> Any:
    """Credentials for both APIs: ``sdk_credentials`` when given (any google.auth
    credentials object), else a service-account key from ``credentials["service_account.json"]``,
    else Application Default Credentials (GKE workload identity, GOOGLE_APPLICATION_CREDENTIALS).

    Raises InvalidConfiguration for an unreadable key (without echoing it); ADC failures
    surface as google.auth errors for the caller's classifier.
    """
    if sdk_credentials is not None:
        return sdk_credentials
    if credentials and SERVICE_ACCOUNT_KEY in credentials:
        from google.oauth2 import service_account

        try:
            info = json.loads(credentials[SERVICE_ACCOUNT_KEY])
            from_info: Any = service_account.Credentials.from_service_account_info
            return from_info(info, scopes=[CLOUD_PLATFORM_SCOPE])
        except (ValueError, TypeError, KeyError):
            raise InvalidConfiguration(
                f"credentials secret key {SERVICE_ACCOUNT_KEY} is not a service-account key"
            ) from None
    import google.auth

    default_credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    return default_credentials


class GcpClients:
    """The SDK clients one provider uses, created once on first use (thread-safe)."""

    def __init__(
        self,
        sdk: GcpSdk,
        credentials: Mapping[str, str] | None,
        *,
        endpoints: Endpoints,
        sdk_credentials: object = None,
    ) -> None:
        self._sdk = sdk
        self._credentials = dict(credentials) if credentials else None
        self._sdk_credentials = sdk_credentials
        self._endpoints = endpoints
        self._lock = threading.Lock()
        self._clients: dict[str, Any] | None = None

    def __repr__(self) -> str:  # never show credentials
        return f"GcpClients(endpoints={self._endpoints!r})"

    def get(self, name: str) -> Any:
        """Client ``name``: cluster_manager, accelerator_types, machine_types, regions or
        instance_group_managers. Runs in a worker thread (may read ADC)."""
        with self._lock:
            if self._clients is None:
                self._clients = self._create()
            return self._clients[name]

    def _create(self) -> dict[str, Any]:
        creds = build_credentials(self._credentials, self._sdk_credentials)
        self._credentials = None  # the parsed credentials object is all we keep

        def options(endpoint: str | None) -> Any:
            if endpoint is None:
                return None
            return self._sdk.client_options.ClientOptions(api_endpoint=endpoint)

        compute = self._sdk.compute
        compute_kwargs = {
            "credentials": creds,
            "transport": "rest",
            "client_options": options(self._endpoints.compute),
        }
        return {
            "cluster_manager": self._sdk.container.ClusterManagerClient(
                credentials=creds,
                transport="rest",
                client_options=options(self._endpoints.container),
            ),
            "accelerator_types": compute.AcceleratorTypesClient(**compute_kwargs),
            "machine_types": compute.MachineTypesClient(**compute_kwargs),
            "regions": compute.RegionsClient(**compute_kwargs),
            "instance_group_managers": compute.InstanceGroupManagersClient(**compute_kwargs),
        }
