"""``make demo`` on a fresh clone installs only ``.[sim]`` (the base dependencies plus the
simulator's extra): the simulator must run with just those.

Found by QA of issue 10 on main: ``make demo`` on a fresh clone ended in
``ModuleNotFoundError: No module named 'prometheus_client'`` at ``modelfleet simulate``
(the operator loop the simulator ticks imports the operator's own metrics), because the
development install every test runs in has every extra. This test runs the demo's
simulation in a child process where the packages of the other extras cannot be imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[3]

CHILD = textwrap.dedent(
    """
    import importlib.abc, importlib.metadata as md, re, sys, tomllib

    def norm(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    def dist(req):
        return norm(re.split(r"[\\s\\[<>=!~;]", req.strip(), maxsplit=1)[0])

    project = tomllib.load(open(sys.argv[1], "rb"))["project"]
    extras = project["optional-dependencies"]
    allowed = {dist(r) for r in [*project["dependencies"], *extras["sim"]]}
    todo = list(allowed)
    while todo:  # what the light install pulls in transitively
        try:
            reqs = md.requires(todo.pop()) or []
        except md.PackageNotFoundError:
            continue
        for r in reqs:
            if "extra ==" not in r and dist(r) not in allowed:
                allowed.add(dist(r))
                todo.append(dist(r))
    others = {dist(r) for name, reqs in extras.items() if name != "sim" for r in reqs}
    blocked_dists = others - allowed - {"modelfleet"}
    blocked = {
        module
        for module, dists in md.packages_distributions().items()
        if dists and all(norm(d) in blocked_dists for d in dists)
    }

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r} (not in .[sim])", name=name)
            return None

    sys.meta_path.insert(0, Block())
    assert "kopf" in blocked, blocked  # the blocker works: the operator extra is out
    import modelfleet.sim.oracle, modelfleet.sim.policies  # every baseline of --compare
    from modelfleet.cli import main
    sys.argv = ["modelfleet", *sys.argv[2:]]
    main()
    """
)


def test_the_demo_simulation_runs_with_only_the_sim_extra(tmp_path: Path) -> None:
    # The modelfleet policy (the one that ticks the operator loop) end to end on a short
    # scenario, with the report and plot --out writes; the baselines' modules are imported
    # above.
    scenario = tmp_path / "short.toml"
    examples = ROOT / "examples" / "scenarios"
    scenario.write_text(
        f'name = "short"\ndurationHours = 0.1\nfleet = ["{examples / "fleet"}"]\n'
        f'[[deployments]]\nmanifest = "{examples / "deployments" / "chat.yaml"}"\n'
        "[deployments.traffic]\npeakRps = 5\n[world.control]\nwarmupMinutes = 0\n"
    )
    args = ["simulate", str(scenario), "--policy", "modelfleet", "--out", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT / "pyproject.toml"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "report.json").is_file()
