"""Check the requests the operator sent against RBAC rules, the way the API server does.

The integration tests run the real operator against KMock emulators (``kube_emulator``);
every request it sends is recorded there. This module turns each recorded HTTP request into
the attributes the API server's authorizer sees (``RequestInfo``: verb, API group, resource,
subresource, namespace, name, or a non-resource URL) and asks whether a set of RBAC rules
allows it. The rules come from the Helm chart as ``helm template`` renders it (the hub) and
from the ClusterRole documented in docs/member-clusters.md (member clusters), so a new code
path that needs a permission the chart or the docs do not grant fails a test instead of a
production install (issue 14: ``namespaces "X" is forbidden``).

The mapping follows k8s.io/apiserver ``RequestInfoFactory``: ``GET`` of an object is
``get``, of a collection ``list``, with ``?watch=true`` ``watch``; ``POST`` is ``create``,
``PUT`` ``update``, ``PATCH`` ``patch``, ``DELETE`` of an object ``delete`` and of a
collection ``deletecollection``. ``/api/v1/namespaces/<ns>/<resource>...`` is namespaced;
``/api/v1/namespaces/<name>`` (and its ``status``/``finalize``) is the namespace itself.
Everything else (``/version``, ``/api``, ``/apis/<group>/<version>``) is a non-resource URL.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelfleet"
MEMBER_DOC = REPO / "docs" / "member-clusters.md"
CHART_RELEASE = "mf"
CHART_NAMESPACE = "modelfleet-system"
"""The release namespace the harness's kubeconfig Secrets live in (``SYSTEM_NS``)."""

Rule = Mapping[str, Any]

DISCOVERY_RULES: tuple[Rule, ...] = (
    {
        "nonResourceURLs": [
            "/api",
            "/api/*",
            "/apis",
            "/apis/*",
            "/healthz",
            "/livez",
            "/readyz",
            "/openapi",
            "/openapi/*",
            "/version",
            "/version/",
        ],
        "verbs": ["get"],
    },
)
"""What every authenticated identity may read on any Kubernetes cluster: the built-in
``system:discovery`` and ``system:public-info-viewer`` ClusterRoles, bound by default to
``system:authenticated``."""

_NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_NON_RESOURCE_PREFIXES = ("/api/", "/apis/")


@dataclass(frozen=True)
class RequestAttributes:
    """What the authorizer sees of one request (``resource`` empty for non-resource URLs)."""

    verb: str
    path: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)

    def __str__(self) -> str:
        if not self.is_resource:
            return f"{self.verb} {self.path} (non-resource URL)"
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        group = self.group or "core"
        scope = f"namespace {self.namespace}" if self.namespace else "cluster scope"
        return f"{self.verb} {what} ({group}, {scope}) <- {self.path}"


def attributes(method: str, url: str) -> RequestAttributes:
    """The authorizer's view of ``method url`` (``url``: path with optional query)."""
    split = urlsplit(url)
    path = split.path.rstrip("/") or "/"
    query = parse_qs(split.query)
    http_verb = method.upper()
    parts = [p for p in path.split("/") if p]
    if path.startswith("/api/") and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif path.startswith("/apis/") and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return RequestAttributes(verb=http_verb.lower(), path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    watching = query.get("watch", [""])[0].lower() in ("true", "1")
    if http_verb == "GET":
        verb = "watch" if watching else ("get" if name else "list")
    elif http_verb == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "HEAD": "get"}.get(
            http_verb, http_verb.lower()
        )
    return RequestAttributes(
        verb=verb,
        path=path,
        group=group,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
    )


def _rule_allows(rule: Rule, request: RequestAttributes) -> bool:
    verbs = rule.get("verbs") or []
    if request.verb not in verbs and "*" not in verbs:
        return False
    if not request.is_resource:
        return any(
            url == request.path or (url.endswith("*") and request.path.startswith(url[:-1]))
            for url in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if request.group not in groups and "*" not in groups:
        return False
    wanted = request.resource + (f"/{request.subresource}" if request.subresource else "")
    resources = rule.get("resources") or []
    if not any(fnmatch.fnmatchcase(wanted, r) if "*" in r else wanted == r for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or request.name in names


@dataclass(frozen=True)
class Grants:
    """RBAC rules an identity holds: cluster-wide (ClusterRoles) and per namespace (Roles)."""

    cluster: tuple[Rule, ...]
    namespaced: Mapping[str, tuple[Rule, ...]]

    def allows(self, request: RequestAttributes) -> bool:
        """Whether any rule allows ``request`` (RBAC only adds; there are no denies)."""
        if any(_rule_allows(rule, request) for rule in self.cluster):
            return True
        if request.is_resource and request.namespace:
            # A Role covers requests in its namespace (RequestInfo scopes the Namespace
            # object ``namespaces/<n>`` to namespace n too, as the server does).
            rules = self.namespaced.get(request.namespace, ())
            return any(_rule_allows(rule, request) for rule in rules)
        return False

    def denied(self, requests: Iterable[tuple[str, str]]) -> list[str]:
        """Each distinct kind of request (method, url) these grants do not allow, described
        (one line per verb, group, resource, subresource and namespace)."""
        found: dict[tuple[str, ...], str] = {}
        for method, url in requests:
            request = attributes(method, url)
            if self.allows(request):
                continue
            key = (
                request.verb,
                request.group,
                request.resource,
                request.subresource,
                request.namespace,
                "" if request.is_resource else request.path,
            )
            found.setdefault(key, str(request))
        return list(found.values())


def grants_from_manifests(
    manifests: Sequence[Mapping[str, Any]], *, subject: tuple[str, str]
) -> Grants:
    """The rules bound to ServiceAccount ``subject`` (namespace, name) in ``manifests``
    (ClusterRoles via ClusterRoleBindings, Roles via RoleBindings), plus discovery."""

    def bound(binding: Mapping[str, Any]) -> bool:
        return any(
            s.get("kind") == "ServiceAccount" and (s.get("namespace"), s.get("name")) == subject
            for s in binding.get("subjects") or []
        )

    cluster_roles = {m["metadata"]["name"]: m for m in manifests if m.get("kind") == "ClusterRole"}
    roles = {
        (m["metadata"].get("namespace"), m["metadata"]["name"]): m
        for m in manifests
        if m.get("kind") == "Role"
    }
    cluster: list[Rule] = list(DISCOVERY_RULES)
    namespaced: dict[str, list[Rule]] = {}
    for m in manifests:
        if not bound(m):
            continue
        ref = m.get("roleRef") or {}
        if m.get("kind") == "ClusterRoleBinding" and ref.get("kind") == "ClusterRole":
            cluster.extend(cluster_roles[ref["name"]].get("rules") or [])
        elif m.get("kind") == "RoleBinding":
            namespace = m["metadata"]["namespace"]
            if ref.get("kind") == "Role":
                rules = roles[namespace, ref["name"]].get("rules") or []
            else:
                rules = cluster_roles[ref["name"]].get("rules") or []
            namespaced.setdefault(namespace, []).extend(rules)
    return Grants(tuple(cluster), {ns: tuple(rules) for ns, rules in namespaced.items()})


def _helm_binary() -> Path:
    import importlib.util
    import sys

    name = "modelfleet_hack_get_tools"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, REPO / "hack" / "get_tools.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    binary: Path = module.ensure_tools(module.DEFAULT_DEST)["helm"]
    return binary


@cache
def chart_manifests(*helm_args: str) -> tuple[dict[str, Any], ...]:
    """The chart rendered by the real helm into ``CHART_NAMESPACE``, with default values
    and ``helm_args`` (``--set`` pairs)."""
    with tempfile.TemporaryDirectory(prefix="modelfleet-rbac-helm-") as tmp:
        return _render(Path(tmp), helm_args)


def _render(home: Path, helm_args: Sequence[str]) -> tuple[dict[str, Any], ...]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
    }
    result = subprocess.run(
        [
            *(str(_helm_binary()), "template", CHART_RELEASE, str(CHART)),
            *("-n", CHART_NAMESPACE, *helm_args),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@cache
def hub_grants() -> Grants:
    """What the chart's ServiceAccount may do on the hub."""
    manifests = chart_manifests()
    [account] = [m for m in manifests if m["kind"] == "ServiceAccount"]
    meta = account["metadata"]
    return grants_from_manifests(manifests, subject=(meta["namespace"], meta["name"]))


def gateway_grants(namespaces: tuple[str, ...]) -> Grants:
    """What the chart's gateway ServiceAccount may do, rendered with the gateway on, the keys
    Secret ``gateway-keys`` and ``namespaces`` (empty: cluster-wide)."""
    args = ["--set", "gateway.enabled=true", "--set", "gateway.apiKeys.existingSecret=gateway-keys"]
    for index, namespace in enumerate(namespaces):
        args += ["--set", f"gateway.namespaces[{index}]={namespace}"]
    manifests = chart_manifests(*args)
    subject = (CHART_NAMESPACE, f"{CHART_RELEASE}-modelfleet-gateway")
    return grants_from_manifests(manifests, subject=subject)


_YAML_BLOCK = re.compile(r"```yaml\n(?P<body>.*?)```", re.DOTALL)


@cache
def member_grants() -> Grants:
    """What docs/member-clusters.md tells users to grant in a member cluster: the first
    YAML block of its "RBAC in a member cluster" section."""
    text = MEMBER_DOC.read_text(encoding="utf-8")
    section = text.split("## RBAC in a member cluster", 1)[1]
    block = _YAML_BLOCK.search(section)
    assert block is not None, "no YAML block under 'RBAC in a member cluster'"
    manifests = [doc for doc in yaml.safe_load_all(block["body"]) if doc]
    [binding] = [m for m in manifests if m["kind"] == "ClusterRoleBinding"]
    [subject] = binding["subjects"]
    return grants_from_manifests(manifests, subject=(subject["namespace"], subject["name"]))
