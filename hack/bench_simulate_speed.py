"""Time ``modelfleet simulate --compare`` here against a baseline commit, in the same run.

For each seed, runs the command once on a baseline (``--base``, a git ref exported to a
temporary folder and imported through PYTHONPATH with this venv's Python) and once on the
working tree, alternating so both see the same machine load, and prints wall and CPU
seconds (user + system of the process and its workers) side by side, plus whether the two
report.json files are identical apart from ``wallSeconds`` (the speed work must change no
figure). Timing is reported, never asserted.

    .venv/bin/python hack/bench_simulate_speed.py --base main --seeds 1 2 3
    .venv/bin/python hack/bench_simulate_speed.py --base main --seeds 1 --args --hours 6
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def export(ref: str, into: Path) -> Path:
    """``ref``'s operator/ and examples/ under ``into`` (a plain tree, no checkout)."""
    archive = into / "base.tar"
    subprocess.run(
        ["git", "archive", "-o", str(archive), ref, "operator", "examples"], cwd=ROOT, check=True
    )
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def run(tree: Path, seed: int, out: Path, extra: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``simulate --compare`` in ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree / "operator")}
    code = "import sys; from modelfleet.cli import app; sys.argv[0] = 'modelfleet'; app()"
    args = [sys.executable, "-c", code, "simulate", "--compare", "--seed", str(seed)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [*args, "--out", str(out), *extra], cwd=tree, env=env, check=True, capture_output=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def figures(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "report.json").read_text())
    data.pop("wallSeconds", None)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="baseline git ref (default: main)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--args", nargs=argparse.REMAINDER, default=[], help="extra flags")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        base = export(options.base, Path(tmp))
        print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
        print(f"{'seed':>4} {'base wall':>10} {'base cpu':>9} {'new wall':>9} {'new cpu':>8}  same")
        for seed in options.seeds:
            base_out, new_out = Path(tmp) / f"base-{seed}", Path(tmp) / f"new-{seed}"
            bw, bc = run(base, seed, base_out, options.args)
            nw, nc = run(ROOT, seed, new_out, options.args)
            same = figures(base_out) == figures(new_out)
            print(f"{seed:>4} {bw:>9.1f}s {bc:>8.1f}s {nw:>8.1f}s {nc:>7.1f}s  {same}", flush=True)
        print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
