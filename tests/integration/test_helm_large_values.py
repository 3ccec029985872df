"""Large numbers the schema admits reach the command line as numbers the CLI reads.

Helm reads a values file's numbers as float64 and ``quote`` prints one of a million or more
in Go's shortest form, ``1e+06``: the schema admitted ``gateway.rateLimitBurst: 2000000`` and
``operator.maxConcurrentReconciles: 1000000`` (integers from 1 up), the chart rendered
``--rate-burst "2e+06"``, and the gateway's integer option refused it ("unable to parse
string as an integer"): a pod that never starts. ``maxRequestBytes`` already went through
``int64``. Found by br10 (QA). The rendered arguments are parsed by the real commands
(click's parser, no command run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from test_helm_chart import Helm, Manifests, helm, render_with

from modelfleet.cli import app

pytestmark = pytest.mark.integration
__all__ = ["helm"]  # re-exported fixture

LARGE = """\
gateway:
  enabled: true
  rateLimitBurst: 2000000
  holdTimeoutSeconds: 1000000
  maxRequestBytes: 104857600
operator:
  maxConcurrentReconciles: 1000000
  planner:
    solverMaxNodes: 5000000
"""


def _args(manifests: Manifests, component: str) -> list[str]:
    for m in manifests:
        if m["kind"] != "Deployment":
            continue
        labels = m["metadata"].get("labels", {})
        if labels.get("app.kubernetes.io/component") != component:
            continue
        (c,) = m["spec"]["template"]["spec"]["containers"]
        return [str(a) for a in c["args"]]
    raise AssertionError(f"no {component} Deployment")


def _parse(argv: list[str]) -> dict[str, object]:
    group: Any = typer.main.get_command(app)  # typer's click, whichever it bundles
    name, *rest = argv
    command = group.get_command(group.context_class(group), name)
    assert command is not None, name
    ctx = command.make_context(name, list(rest))
    return dict(ctx.params)


def test_large_values_render_as_numbers_the_commands_read(helm: Helm, tmp_path: Path) -> None:
    values = tmp_path / "large.yaml"
    values.write_text(LARGE, encoding="utf-8")
    manifests = render_with(helm, "--values", str(values))
    gateway = _parse(_args(manifests, "gateway"))
    assert gateway["rate_burst"] == 2_000_000
    assert gateway["max_request_bytes"] == 104_857_600
    assert gateway["hold_timeout"] == 1_000_000
    operator = _parse(_args(manifests, "operator"))
    assert operator["max_concurrent_reconciles"] == 1_000_000
