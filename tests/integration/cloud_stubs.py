"""Local HTTP stubs of the GKE, Compute Engine, Azure Resource Manager and Azure Retail Prices
REST APIs, for driving the real google-cloud-* and azure-mgmt-* SDK clients in tests.

The stubs speak just enough of each wire format for the SDKs to parse them unchanged: GKE
container v1 node pools (get/list/create/setSize/delete, operations), Compute v1
acceleratorTypes/machineTypes/regions/instanceGroupManagers, ARM agentPools with
Azure-AsyncOperation long-running operations, resourceSkus and usages, and the public Retail
Prices API. They keep state (pools, instance group sizes), validate what the real API would
refuse (GKE names, GCP label rules, Azure tag names), record every request, and let a test
inject an error response for the next N requests to a route.

One ``CloudStub`` serves plain HTTP (Google SDKs accept ``http://`` endpoints, the Retail
Prices client too) and HTTPS with a throwaway self-signed certificate, because the Azure SDK
refuses to send a bearer token over plain HTTP: the test trusts the certificate through
``REQUESTS_CA_BUNDLE``, so the Azure SDK runs exactly as in production.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import json
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

Json = dict[str, Any]
Reply = tuple[int, Json | None, dict[str, str]]

GKE_POOL_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
GCP_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
GCP_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
K8S_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
AKS_POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
AZURE_TAG_FORBIDDEN = re.compile(r"[<>%&\\?/]")


@dataclass(frozen=True)
class Recorded:
    """One request as the stub received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Json | None
    headers: dict[str, str]  # names lowercased


@dataclass
class Fault:
    """An error response returned for the next ``times`` requests matching the route."""

    method: str
    path: re.Pattern[str]
    status: int
    body: Json
    times: int
    headers: dict[str, str] = field(default_factory=dict)


def gcp_error(
    status: int,
    grpc_status: str,
    message: str,
    *,
    reason: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Json:
    """A Google JSON error body, with an ErrorInfo detail when ``reason`` is given."""
    error: Json = {"code": status, "status": grpc_status, "message": message}
    if reason is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": metadata or {},
            }
        ]
        error["errors"] = [{"message": message, "domain": "global", "reason": reason}]
    return {"error": error}


def azure_error(code: str, message: str) -> Json:
    """An ARM JSON error body."""
    return {"error": {"code": code, "message": message}}


class CloudStub:
    """A stateful fake of the clouds' REST APIs on 127.0.0.1 (HTTP and HTTPS ports)."""

    def __init__(self, workdir: Path) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        # GKE: (project, location, cluster) -> pool name -> NodePool JSON.
        self.gke_pools: dict[tuple[str, str, str], dict[str, Json]] = {}
        # Compute: (project, zone, igm name) -> InstanceGroupManager JSON.
        self.igms: dict[tuple[str, str, str], Json] = {}
        # Compute: (project, zone, igm name) -> names of the group's VMs (made by settle_gke).
        self.igm_instances: dict[tuple[str, str, str], list[str]] = {}
        self.accelerator_types: dict[str, list[Json]] = {}  # zone -> items
        self.machine_types: dict[str, list[Json]] = {}  # zone -> items
        self.regions: dict[str, Json] = {}  # region -> Region JSON
        # ARM: (subscription, resource group, cluster) -> pool name -> AgentPool JSON.
        self.aks_pools: dict[tuple[str, str, str], dict[str, Json]] = {}
        # ARM: (subscription, resource group, cluster, pool) -> machine (node) names, made
        # when an operation on the pool succeeds.
        self.aks_machines: dict[tuple[str, str, str, str], list[str]] = {}
        self.azure_operations: dict[str, Json] = {}
        self.azure_async_failure: Json | None = None  # next PUT's operation fails with this
        self.resource_skus: list[Json] = []
        self.usages: dict[str, list[Json]] = {}  # location -> usages
        self.retail_prices: list[Json] = []
        self.issued_token = "ya29.stub-access-token-not-for-logs"
        self._workdir = workdir
        self._servers: list[ThreadingHTTPServer] = []
        self.http_url = ""
        self.https_url = ""
        self.ca_file = workdir / "stub-ca.pem"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Serve HTTP and HTTPS on ephemeral loopback ports (daemon threads)."""
        http = self._serve(None)
        self.http_url = f"http://127.0.0.1:{http.server_address[1]}"
        cert, key = self_signed_cert(self._workdir)
        self.ca_file = cert
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        https = self._serve(context)
        self.https_url = f"https://127.0.0.1:{https.server_address[1]}"

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> CloudStub:
        """Started for the ``with`` block, stopped after it."""
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _serve(self, context: ssl.SSLContext | None) -> ThreadingHTTPServer:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, headers = stub.dispatch(
                    self.command, self.path, raw, {k.lower(): v for k, v in self.headers.items()}
                )
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value.replace("{base}", stub.base_for(context)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers.append(server)
        return server

    def base_for(self, context: ssl.SSLContext | None) -> str:
        return self.https_url if context is not None else self.http_url

    # -- test controls ---------------------------------------------------------------------

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: Json,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` ``method`` requests whose path matches with this error."""
        with self._lock:
            self.faults.append(
                Fault(method, re.compile(path_regex), status, body, times, dict(headers or {}))
            )

    def calls(self, method: str | None = None, path_regex: str = "") -> list[Recorded]:
        """Recorded requests, optionally filtered by method and a path regex (search)."""
        pattern = re.compile(path_regex)
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and pattern.search(r.path)
            ]

    def clear_calls(self) -> None:
        with self._lock:
            self.requests.clear()

    def settle_gke(self) -> None:
        """Finish every GKE operation: pools RUNNING, instance groups at their target size."""
        with self._lock:
            for pools in self.gke_pools.values():
                for pool in pools.values():
                    if pool["status"] in ("PROVISIONING", "RECONCILING"):
                        pool["status"] = "RUNNING"
            for key, igm in self.igms.items():
                igm["currentActions"] = {"none": igm["targetSize"], "creating": 0}
                vms = self.igm_instances.setdefault(key, [])
                while len(vms) < igm["targetSize"]:
                    vms.append(f"{igm['name']}-{next(self._ids):04x}")
                del vms[igm["targetSize"] :]  # a count resize: the group picks (the newest)

    # -- dispatch --------------------------------------------------------------------------

    def dispatch(
        self, method: str, raw_path: str, raw_body: bytes, headers: dict[str, str]
    ) -> Reply:
        parts = urlsplit(raw_path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        with self._lock:
            self.requests.append(Recorded(method, path, query, body, headers))
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path.search(path):
                    fault.times -= 1
                    return fault.status, fault.body, fault.headers
            for route_method, pattern, handler in self._routes():
                match = pattern.fullmatch(path)
                if match and route_method == method:
                    return handler(match, query, body, headers)
        return (
            404,
            {"error": {"code": 404, "status": "NOT_FOUND", "message": f"no route {path}"}},
            {},
        )

    def _routes(self) -> Iterator[tuple[str, re.Pattern[str], Callable[..., Reply]]]:
        gke = r"/v1/projects/(?P<p>[^/]+)/locations/(?P<l>[^/]+)/clusters/(?P<c>[^/]+)"
        compute = r"/compute/v1/projects/(?P<p>[^/]+)"
        arm_cluster = (
            r"/subscriptions/(?P<s>[^/]+)/resourceGroups/(?P<g>[^/]+)/providers/"
            r"Microsoft\.ContainerService/managedClusters/(?P<c>[^/]+)"
        )
        table: list[tuple[str, str, Callable[..., Reply]]] = [
            ("GET", gke + r"/nodePools", self._gke_list),
            ("POST", gke + r"/nodePools", self._gke_create),
            ("GET", gke + r"/nodePools/(?P<n>[^/:]+)", self._gke_get),
            ("POST", gke + r"/nodePools/(?P<n>[^/:]+):setSize", self._gke_set_size),
            ("DELETE", gke + r"/nodePools/(?P<n>[^/:]+)", self._gke_delete),
            (
                "GET",
                r"/v1/projects/(?P<p>[^/]+)/locations/(?P<l>[^/]+)/operations/(?P<o>[^/]+)",
                self._gke_operation,
            ),
            ("GET", compute + r"/zones/(?P<z>[^/]+)/acceleratorTypes", self._compute_accels),
            ("GET", compute + r"/zones/(?P<z>[^/]+)/machineTypes", self._compute_machines),
            ("GET", compute + r"/regions/(?P<r>[^/]+)", self._compute_region),
            (
                "GET",
                compute + r"/zones/(?P<z>[^/]+)/instanceGroupManagers/(?P<n>[^/]+)",
                self._compute_igm,
            ),
            (
                "POST",
                compute + r"/zones/(?P<z>[^/]+)/instanceGroupManagers/(?P<n>[^/]+)/deleteInstances",
                self._compute_igm_delete_instances,
            ),
            (
                "POST",
                compute
                + r"/zones/(?P<z>[^/]+)/instanceGroupManagers/(?P<n>[^/]+)/listManagedInstances",
                self._compute_igm_list_managed,
            ),
            ("GET", arm_cluster + r"/agentPools/(?P<n>[^/]+)/machines", self._aks_machines),
            ("GET", arm_cluster + r"/agentPools", self._aks_list),
            ("GET", arm_cluster + r"/agentPools/(?P<n>[^/]+)", self._aks_get),
            ("PUT", arm_cluster + r"/agentPools/(?P<n>[^/]+)", self._aks_put),
            ("DELETE", arm_cluster + r"/agentPools/(?P<n>[^/]+)", self._aks_delete),
            (
                "POST",
                arm_cluster + r"/agentPools/(?P<n>[^/]+)/deleteMachines",
                self._aks_delete_machines,
            ),
            ("GET", r"/stub/azure-operations/(?P<o>[^/]+)", self._azure_operation),
            (
                "GET",
                r"/subscriptions/(?P<s>[^/]+)/providers/Microsoft\.Compute/skus",
                self._azure_skus,
            ),
            (
                "GET",
                r"/subscriptions/(?P<s>[^/]+)/providers/Microsoft\.Compute/locations/"
                r"(?P<loc>[^/]+)/usages",
                self._azure_usages,
            ),
            ("GET", r"/api/retail/prices", self._retail_prices),
            ("POST", r"/oauth2/token", self._oauth_token),
        ]
        for method, pattern, handler in table:
            yield method, re.compile(pattern), handler

    # -- GKE -------------------------------------------------------------------------------

    def _gke_key(self, m: re.Match[str]) -> tuple[str, str, str]:
        return m["p"], m["l"], m["c"]

    def _gke_operation_json(self, m: re.Match[str], kind: str, target: str) -> Json:
        op = f"operation-{next(self._ids)}"
        return {
            "name": op,
            "operationType": kind,
            "status": "RUNNING",
            "selfLink": f"https://container.googleapis.com/v1/projects/{m['p']}/locations/"
            f"{m['l']}/operations/{op}",
            "targetLink": target,
        }

    def _gke_not_found(self, name: str) -> Reply:
        return 404, gcp_error(404, "NOT_FOUND", f"Not found: {name}."), {}

    def _gke_list(self, m: re.Match[str], *_: Any) -> Reply:
        pools = list(self.gke_pools.get(self._gke_key(m), {}).values())
        return 200, {"nodePools": pools}, {}

    def _gke_get(self, m: re.Match[str], *_: Any) -> Reply:
        pool = self.gke_pools.get(self._gke_key(m), {}).get(m["n"])
        return (200, pool, {}) if pool else self._gke_not_found(m["n"])

    def _gke_create(self, m: re.Match[str], _q: Any, body: Json | None, *_: Any) -> Reply:
        spec = dict((body or {}).get("nodePool") or {})
        name = str(spec.get("name", ""))
        problems = _gke_pool_problems(spec)
        if problems:
            return 400, gcp_error(400, "INVALID_ARGUMENT", "; ".join(problems)), {}
        pools = self.gke_pools.setdefault(self._gke_key(m), {})
        if name in pools:
            return 409, gcp_error(409, "ALREADY_EXISTS", f"Already exists: {name}."), {}
        per_zone = int(spec.get("initialNodeCount", 0))
        urls = []
        for zone in spec.get("locations") or []:
            igm = f"gke-{m['c']}-{name}-{next(self._ids):04x}-grp"
            self.igms[(m["p"], zone, igm)] = {
                "name": igm,
                "zone": zone,
                "targetSize": per_zone,
                "currentActions": {"none": 0, "creating": per_zone},
            }
            urls.append(
                f"https://www.googleapis.com/compute/v1/projects/{m['p']}/zones/{zone}/"
                f"instanceGroupManagers/{igm}"
            )
        pools[name] = spec | {
            "status": "PROVISIONING",
            "instanceGroupUrls": urls,
            "selfLink": f"https://container.googleapis.com/v1/projects/{m['p']}/locations/"
            f"{m['l']}/clusters/{m['c']}/nodePools/{name}",
        }
        return 200, self._gke_operation_json(m, "CREATE_NODE_POOL", pools[name]["selfLink"]), {}

    def _gke_set_size(self, m: re.Match[str], _q: Any, body: Json | None, *_: Any) -> Reply:
        pool = self.gke_pools.get(self._gke_key(m), {}).get(m["n"])
        if pool is None:
            return self._gke_not_found(m["n"])
        count = int((body or {}).get("nodeCount", 0))
        for url in pool["instanceGroupUrls"]:
            parts = url.split("/")
            igm = self.igms[(parts[-5], parts[-3], parts[-1])]
            igm["targetSize"] = count
            igm["currentActions"] = {
                "none": min(count, igm["currentActions"]["none"]),
                "creating": max(0, count - igm["currentActions"]["none"]),
            }
        pool["status"] = "RECONCILING"
        return 200, self._gke_operation_json(m, "SET_NODE_POOL_SIZE", pool["selfLink"]), {}

    def _gke_delete(self, m: re.Match[str], *_: Any) -> Reply:
        pools = self.gke_pools.get(self._gke_key(m), {})
        pool = pools.pop(m["n"], None)
        if pool is None:
            return self._gke_not_found(m["n"])
        return 200, self._gke_operation_json(m, "DELETE_NODE_POOL", pool["selfLink"]), {}

    def _gke_operation(self, m: re.Match[str], *_: Any) -> Reply:
        return 200, {"name": m["o"], "status": "DONE"}, {}

    # -- Compute ---------------------------------------------------------------------------

    def _compute_accels(self, m: re.Match[str], *_: Any) -> Reply:
        return (
            200,
            {
                "kind": "compute#acceleratorTypeList",
                "items": self.accelerator_types.get(m["z"], []),
            },
            {},
        )

    def _compute_machines(self, m: re.Match[str], *_: Any) -> Reply:
        return (
            200,
            {"kind": "compute#machineTypeList", "items": self.machine_types.get(m["z"], [])},
            {},
        )

    def _compute_region(self, m: re.Match[str], *_: Any) -> Reply:
        region = self.regions.get(m["r"])
        if region is None:
            return (
                404,
                gcp_error(404, "NOT_FOUND", f"The resource 'regions/{m['r']}' was not found"),
                {},
            )
        return 200, region, {}

    def _compute_igm(self, m: re.Match[str], *_: Any) -> Reply:
        igm = self.igms.get((m["p"], m["z"], m["n"]))
        if igm is None:
            return 404, gcp_error(404, "NOT_FOUND", f"instanceGroupManagers/{m['n']} not found"), {}
        return 200, igm, {}

    def _compute_igm_list_managed(self, m: re.Match[str], *_: Any) -> Reply:
        """instanceGroupManagers.listManagedInstances: the group's VMs (one page)."""
        key = (m["p"], m["z"], m["n"])
        if key not in self.igms:
            return 404, gcp_error(404, "NOT_FOUND", f"instanceGroupManagers/{m['n']} not found"), {}
        base = f"https://www.googleapis.com/compute/v1/projects/{m['p']}/zones/{m['z']}/instances"
        items = [
            {"instance": f"{base}/{vm}", "instanceStatus": "RUNNING", "currentAction": "NONE"}
            for vm in self.igm_instances.get(key, [])
        ]
        return 200, {"managedInstances": items}, {}

    def _compute_igm_delete_instances(
        self, m: re.Match[str], _q: Any, body: Json | None, *_: Any
    ) -> Reply:
        """instanceGroupManagers.deleteInstances: deletes the named member VMs and lowers
        targetSize by as many; non-members fail the call unless
        skipInstancesOnValidationError is set (then they are skipped)."""
        key = (m["p"], m["z"], m["n"])
        igm = self.igms.get(key)
        if igm is None:
            return 404, gcp_error(404, "NOT_FOUND", f"instanceGroupManagers/{m['n']} not found"), {}
        vms = self.igm_instances.setdefault(key, [])
        names = [str(url).rsplit("/", 1)[-1] for url in (body or {}).get("instances") or []]
        strangers = [n for n in names if n not in vms]
        if strangers and not (body or {}).get("skipInstancesOnValidationError"):
            message = f"instances {strangers} are not members of {m['n']}"
            return 400, gcp_error(400, "INVALID_ARGUMENT", message), {}
        gone = [n for n in names if n in vms]
        for name in gone:
            vms.remove(name)
        igm["targetSize"] -= len(gone)
        igm["currentActions"]["none"] = min(igm["currentActions"]["none"], igm["targetSize"])
        op = f"operation-{next(self._ids)}"
        return (
            200,
            {"kind": "compute#operation", "name": op, "status": "DONE", "zone": m["z"]},
            {},
        )

    # -- Azure Resource Manager ------------------------------------------------------------

    def _aks_key(self, m: re.Match[str]) -> tuple[str, str, str]:
        return m["s"], m["g"], m["c"]

    def _aks_id(self, m: re.Match[str], name: str) -> str:
        return (
            f"/subscriptions/{m['s']}/resourceGroups/{m['g']}/providers/"
            f"Microsoft.ContainerService/managedClusters/{m['c']}/agentPools/{name}"
        )

    def _azure_operation_headers(self, op: Json, *, location: bool = False) -> dict[str, str]:
        op_id = f"op{next(self._ids)}"
        self.azure_operations[op_id] = op
        url = "{base}/stub/azure-operations/" + op_id + "?api-version=2026-08-01"
        headers = {"Azure-AsyncOperation": url, "Retry-After": "0"}
        if location:
            headers["Location"] = url
        return headers

    def _aks_list(self, m: re.Match[str], *_: Any) -> Reply:
        return 200, {"value": list(self.aks_pools.get(self._aks_key(m), {}).values())}, {}

    def _aks_get(self, m: re.Match[str], *_: Any) -> Reply:
        pool = self.aks_pools.get(self._aks_key(m), {}).get(m["n"])
        if pool is None:
            return (
                404,
                azure_error(
                    "NotFound", f"Agent pool '{m['n']}' not found in managed cluster '{m['c']}'."
                ),
                {},
            )
        return 200, pool, {}

    def _aks_put(
        self, m: re.Match[str], _q: Any, body: Json | None, headers: dict[str, str]
    ) -> Reply:
        name = m["n"]
        props = dict((body or {}).get("properties") or {})
        problems = _aks_pool_problems(name, props)
        if problems:
            return 400, azure_error("InvalidParameter", "; ".join(problems)), {}
        pools = self.aks_pools.setdefault(self._aks_key(m), {})
        existing = pools.get(name)
        if existing is not None and headers.get("if-none-match") == "*":
            return (
                412,
                azure_error(
                    "PreconditionFailed", f"Agent pool '{name}' already exists (If-None-Match)."
                ),
                {},
            )
        failure, self.azure_async_failure = self.azure_async_failure, None
        props["provisioningState"] = "Creating" if existing is None else "Scaling"
        props.setdefault("powerState", {"code": "Running"})
        pool = {
            "id": self._aks_id(m, name),
            "name": name,
            "type": "Microsoft.ContainerService/managedClusters/agentPools",
            "properties": props,
        }
        pools[name] = pool
        op = {"kind": "put", "key": self._aks_key(m), "name": name, "error": failure}
        return (201 if existing is None else 200), pool, self._azure_operation_headers(op)

    def _aks_delete(self, m: re.Match[str], *_: Any) -> Reply:
        pools = self.aks_pools.get(self._aks_key(m), {})
        if m["n"] not in pools:
            return 204, None, {}
        pools[m["n"]]["properties"]["provisioningState"] = "Deleting"
        op = {"kind": "delete", "key": self._aks_key(m), "name": m["n"], "error": None}
        return 202, None, self._azure_operation_headers(op, location=True)

    def _aks_delete_machines(self, m: re.Match[str], _q: Any, body: Json | None, *_: Any) -> Reply:
        """agentPools/deleteMachines: the named machines go and ``count`` drops by as many;
        a name that is not a machine of the pool refuses the whole request."""
        pool = self.aks_pools.get(self._aks_key(m), {}).get(m["n"])
        if pool is None:
            return 404, azure_error("NotFound", f"Agent pool '{m['n']}' not found."), {}
        machines = self.aks_machines.setdefault((*self._aks_key(m), m["n"]), [])
        names = [str(n) for n in (body or {}).get("machineNames") or []]
        strangers = [n for n in names if n not in machines]
        if strangers:
            return 400, azure_error("InvalidParameter", f"machines not found: {strangers}"), {}
        for name in names:
            machines.remove(name)
        pool["properties"]["count"] = len(machines)
        pool["properties"]["provisioningState"] = "Scaling"
        op = {"kind": "machines", "key": self._aks_key(m), "name": m["n"], "error": None}
        return 202, None, self._azure_operation_headers(op, location=True)

    def _aks_machines(self, m: re.Match[str], *_: Any) -> Reply:
        """agentPools/{pool}/machines: the pool's machines (one page)."""
        if m["n"] not in self.aks_pools.get(self._aks_key(m), {}):
            return 404, azure_error("NotFound", f"Agent pool '{m['n']}' not found."), {}
        machines = self.aks_machines.get((*self._aks_key(m), m["n"]), [])
        pool_id = self._aks_id(m, m["n"])
        items = [
            {"id": f"{pool_id}/machines/{name}", "name": name, "properties": {}}
            for name in machines
        ]
        return 200, {"value": items}, {}

    def _azure_operation(self, m: re.Match[str], *_: Any) -> Reply:
        op = self.azure_operations.get(m["o"])
        if op is None:
            return 404, azure_error("NotFound", "operation not found"), {}
        pools = self.aks_pools.get(op["key"], {})
        pool = pools.get(op["name"])
        if op["kind"] == "delete":
            pools.pop(op["name"], None)
        elif pool is not None and op["error"] is not None:
            pool["properties"]["provisioningState"] = "Failed"
            pool["properties"]["status"] = {"provisioningError": op["error"]["error"]}
        elif pool is not None:
            pool["properties"]["provisioningState"] = "Succeeded"
            machines = self.aks_machines.setdefault((*op["key"], op["name"]), [])
            count = int(pool["properties"].get("count") or 0)
            while len(machines) < count:
                machines.append(f"aks-{op['name']}-12345678-vmss{next(self._ids):06x}")
            del machines[count:]  # a count scale-down: AKS picks (here the newest)
        if op["error"] is not None:
            return 200, {"status": "Failed", "error": op["error"]["error"]}, {}
        return 200, {"status": "Succeeded"}, {}

    def _azure_skus(self, _m: re.Match[str], query: dict[str, str], *_: Any) -> Reply:
        wanted = re.search(r"location eq '([^']+)'", query.get("$filter", ""))
        skus = [
            sku
            for sku in self.resource_skus
            if wanted is None or wanted.group(1) in [loc.lower() for loc in sku["locations"]]
        ]
        return 200, {"value": skus}, {}

    def _azure_usages(self, m: re.Match[str], *_: Any) -> Reply:
        return 200, {"value": self.usages.get(m["loc"], [])}, {}

    def _oauth_token(self, *_: Any) -> Reply:
        # Google's token endpoint for the JWT-bearer grant of a service-account key.
        return (
            200,
            {"access_token": self.issued_token, "expires_in": 3600, "token_type": "Bearer"},
            {},
        )

    def _retail_prices(self, _m: re.Match[str], query: dict[str, str], *_: Any) -> Reply:
        text = query.get("$filter", "")
        region = re.search(r"armRegionName eq '([^']+)'", text)
        skus = set(re.findall(r"armSkuName eq '([^']+)'", text))
        items = [
            item
            for item in self.retail_prices
            if (region is None or item["armRegionName"] == region.group(1))
            and (not skus or item["armSkuName"] in skus)
        ]
        # Two pages, so that the client's NextPageLink handling is exercised.
        skip = int(query.get("$skip", "0"))
        page = items[skip : skip + 3]
        next_link = None
        if skip + 3 < len(items):
            next_link = (
                "{base}/api/retail/prices?$filter=" + quote(text, safe="") + f"&$skip={skip + 3}"
            )
        body: Json = {
            "BillingCurrency": "USD",
            "CustomerEntityId": "Default",
            "CustomerEntityType": "Retail",
            "Items": page,
            "NextPageLink": next_link,
            "Count": len(page),
        }
        if next_link:
            body["NextPageLink"] = next_link.replace("{base}", self.http_url)
        return 200, body, {}


def _gke_pool_problems(spec: Json) -> list[str]:
    problems = []
    name = str(spec.get("name", ""))
    if not GKE_POOL_NAME.match(name):
        problems.append(f"Invalid node pool name {name!r}")
    config = spec.get("config") or {}
    for key, value in (config.get("resourceLabels") or {}).items():
        if not GCP_LABEL_KEY.match(key) or not GCP_LABEL_VALUE.match(str(value)):
            problems.append(f"Invalid resource label {key}={value}")
    for key, value in (config.get("labels") or {}).items():
        if not K8S_LABEL_VALUE.match(str(value)) or len(str(value)) > 63:
            problems.append(f"Invalid node label {key}={value}")
    if not config.get("machineType"):
        problems.append("machineType is required")
    return problems


def _aks_pool_problems(name: str, props: Json) -> list[str]:
    problems = []
    if not AKS_POOL_NAME.match(name):
        problems.append(f"Agent pool name {name!r} must be 1-12 lowercase alphanumerics")
    for key in props.get("tags") or {}:
        if AZURE_TAG_FORBIDDEN.search(key):
            problems.append(f"Tag name {key!r} contains a forbidden character")
    for field_name in ("vmSize", "count", "mode"):
        if field_name not in props:
            problems.append(f"{field_name} is required")
    if props.get("scaleSetPriority") == "Spot" and props.get("scaleSetEvictionPolicy") not in (
        "Delete",
        "Deallocate",
    ):
        problems.append("Spot pools need scaleSetEvictionPolicy")
    return problems


def self_signed_cert(workdir: Path) -> tuple[Path, Path]:
    """A throwaway certificate (its own CA) for 127.0.0.1 and its key, as PEM files in
    ``workdir`` (cryptography comes with azure-identity)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = workdir / "stub-cert.pem"
    key_path = workdir / "stub-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
