"""`make demo` installs only the core dependencies and the `sim` extra (Makefile: "Light
install"). The simulator now drives the operator's own loop, so anything that loop imports
reaches the demo too. The demo's three commands are run here with every other installed
package made unimportable (as on a fresh clone after `make demo`'s install): optional
imports fall back as they would there, a hard dependency outside the extra fails."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib.abc, json, sys
BLOCKED = set(json.loads(sys.argv[2]))

class Light(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (not in the sim extra)")
        return None

sys.meta_path.insert(0, Light())
from typer.testing import CliRunner
from modelfleet.cli import app
result = CliRunner().invoke(
    app, ["validate", "examples/"]
)
assert result.exit_code == 0, result.output
result = CliRunner().invoke(
    app, ["plan", "--fleet", "examples/fleet", "examples/multicloud-failover.yaml"]
)
assert result.exit_code == 0, result.output
result = CliRunner().invoke(
    app, ["simulate", "--policy", "modelfleet", "--hours", "0.05", "--out", sys.argv[1]]
)
assert result.exit_code == 0, (result.output, result.exception)
"""


def _installed_by(requirements: list[str]) -> set[str]:
    """Distributions ``requirements`` install, transitively (extras not followed)."""
    seen: set[str] = set()
    stack = [Requirement(r) for r in requirements]
    while stack:
        req = stack.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for raw in requires:
            dep = Requirement(raw)
            if dep.marker is None or dep.marker.evaluate({"extra": ""}):
                stack.append(dep)
    return seen


def test_the_demo_imports_only_what_the_sim_extra_installs(tmp_path: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    allowed = _installed_by([*project["dependencies"], *project["optional-dependencies"]["sim"]])
    owners = metadata.packages_distributions()
    blocked = sorted(
        module
        for module, dists in owners.items()
        if module not in ("modelfleet", "_distutils_hack")
        and not any(canonicalize_name(d) in allowed for d in dists)
    )
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "sim"), json.dumps(blocked)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
