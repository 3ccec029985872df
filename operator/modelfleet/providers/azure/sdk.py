"""The Azure SDK behind a small adaptor: lazy imports, credentials, base URL.

The SDK is an optional extra (``modelfleet[azure]``), imported only when an Azure provider
is built. Credentials come from the standard chain (``DefaultAzureCredential``: AKS workload
identity, managed identity, environment) or from a FleetCluster's credentials Secret
(``tenant_id``, ``client_id``, ``client_secret`` -> ``ClientSecretCredential``); the secret is
handed to azure-identity and never stored, logged or shown in ``repr``.

The SDK's own retry policy is switched off (``retry_total=0``): the provider retries
throttling itself, bounded and jittered, and leaves every other failure to the reconciler's
backoff, so one policy decides how long a reconcile may wait.

The base URL may be overridden (sovereign clouds, Azure Stack, tests). The Azure SDK refuses
to send a bearer token over plain HTTP, so the override must be HTTPS; tests run a local TLS
stub whose throwaway certificate they trust through ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelfleet.extras import missing_extra_in_operator
from modelfleet.providers.errors import InvalidConfiguration, ProviderUnavailable

BASE_URL_ENV = "MODELFLEET_AZURE_BASE_URL"
SECRET_KEYS = ("tenant_id", "client_id", "client_secret")


@dataclass(frozen=True)
class AzureSdk:
    """The imported SDK pieces (typed Any: the SDK's types are not needed by callers)."""

    identity: Any  # azure.identity
    compute_client: Any  # azure.mgmt.compute.ComputeManagementClient
    container_client: Any  # azure.mgmt.containerservice.ContainerServiceClient
    container_models: Any  # azure.mgmt.containerservice.models
    core_exceptions: Any  # azure.core.exceptions
    match_conditions: Any  # azure.core.MatchConditions


def load_sdk() -> AzureSdk:
    """Import the Azure SDK. Raises ProviderUnavailable when the extra is missing."""
    try:
        import azure.identity
        from azure.core import MatchConditions, exceptions
        from azure.mgmt.compute import ComputeManagementClient
        from azure.mgmt.containerservice import ContainerServiceClient, models
    except ImportError as err:
        missing = err.name or "the Azure SDK"
        raise ProviderUnavailable(
            missing_extra_in_operator("the azure provider", "azure", missing)
        ) from err
    return AzureSdk(
        azure.identity,
        ComputeManagementClient,
        ContainerServiceClient,
        models,
        exceptions,
        MatchConditions,
    )


def build_credential(
    sdk: AzureSdk, credentials: Mapping[str, str] | None, sdk_credential: object
) -> Any:
    """A TokenCredential: ``sdk_credential`` when given, else a ClientSecretCredential from
    the Secret's tenant_id/client_id/client_secret, else DefaultAzureCredential. Raises
    InvalidConfiguration (naming only the missing keys) for an incomplete Secret."""
    if sdk_credential is not None:
        return sdk_credential
    if credentials:
        missing = [key for key in SECRET_KEYS if not credentials.get(key)]
        if missing:
            raise InvalidConfiguration(
                f"Azure credentials secret lacks {', '.join(missing)} "
                f"(needs {', '.join(SECRET_KEYS)})"
            )
        return sdk.identity.ClientSecretCredential(
            credentials["tenant_id"], credentials["client_id"], credentials["client_secret"]
        )
    return sdk.identity.DefaultAzureCredential()


class AzureClients:
    """The two ARM clients one provider uses, created once on first use (thread-safe)."""

    def __init__(
        self,
        sdk: AzureSdk,
        credentials: Mapping[str, str] | None,
        *,
        subscription_id: str,
        base_url: str | None,
        sdk_credential: object = None,
    ) -> None:
        self._sdk = sdk
        self._credentials = dict(credentials) if credentials else None
        self._sdk_credential = sdk_credential
        self._subscription_id = subscription_id
        self.base_url = base_url or os.environ.get(BASE_URL_ENV) or None
        self._lock = threading.Lock()
        self._clients: dict[str, Any] | None = None

    def __repr__(self) -> str:  # never show credentials
        return f"AzureClients(subscription={self._subscription_id}, base_url={self.base_url!r})"

    def get(self, name: str) -> Any:
        """Client ``name``: ``compute`` or ``containers``."""
        with self._lock:
            if self._clients is None:
                self._clients = self._create()
            return self._clients[name]

    def _create(self) -> dict[str, Any]:
        credential = build_credential(self._sdk, self._credentials, self._sdk_credential)
        self._credentials = None  # the credential object is all we keep
        kwargs: dict[str, Any] = {"retry_total": 0}
        if self.base_url:
            kwargs["base_url"] = self.base_url
        return {
            "compute": self._sdk.compute_client(credential, self._subscription_id, **kwargs),
            "containers": self._sdk.container_client(credential, self._subscription_id, **kwargs),
        }
