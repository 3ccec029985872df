"""Where a simulated run's GPU-hours go, beside the oracle's: what to cut first.

Usage: ``python hack/gpu_hours_breakdown.py DIR [ORACLE_DIR] [--hours]``

Reads ``timeline.csv`` of a ``modelfleet simulate --out DIR`` run (the per-minute GPU
columns ``sim/gpu_account.py`` records) and splits every deployment's GPU-hours into:

- ``needed``: replicas the minute's rate needed at the world's true capacity of the best
  GPU class the deployment may use (fractional; the oracle's rate: the minute's mean
  arrivals or its highest expected rate if higher);
- ``gpu mix``: the extra the same rate needed on the GPUs that were ready (slower GPUs
  chosen for price: the policy minimises dollars, the oracle GPU-hours);
- ``round``: up to whole replicas (``ceil(need) - need``);
- ``headroom``: desired replicas above ``ceil(need)`` (the policy's headroom, a profile
  error, the forecast's overshoot; for the oracle its look-ahead over the lead time);
- ``standby``: ready replicas above the desired count, up to the warm standby;
- ``surplus``: ready replicas above desired + standby (a scale-down not done yet);
- ``loading``: pods bound and not Ready (model start) or draining;
- ``provisioning``: nodes coming up for a waiting pod;
- ``idle``: billed nodes with no pod (the scale-in delay, warm nodes, a down region).

``short`` (not billed) is the need above the ready replicas: minutes the fleet was short.
Every policy found in DIR's timeline (and the ``oracle`` of ORACLE_DIR) is printed side by
side, per deployment and, with ``--hours``, per hour of the day (all deployments).
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

PARTS = (
    "needed",
    "gpu mix",
    "round",
    "headroom",
    "standby",
    "surplus",
    "loading",
    "provisioning",
    "idle",
)


def split(row: dict[str, str], name: str) -> dict[str, float]:
    """One minute of deployment ``name``: GPUs (= GPU-hours per hour) per part, and
    ``short``."""
    g = float(row[f"gpus_per_replica:{name}"])
    serving = float(row[f"serving:{name}"])
    need = float(row[f"need:{name}"])
    best = min(need, float(row.get(f"need_best:{name}") or need))
    desired = float(row[f"desired:{name}"])
    standby = float(row[f"standby:{name}"])
    whole = math.ceil(need - 1e-9)
    planned = max(desired, whole)
    out = {
        "needed": min(serving, best) * g,
        "gpu mix": (min(serving, need) - min(serving, best)) * g,
        "round": (min(serving, whole) - min(serving, need)) * g,
        "headroom": max(0.0, min(serving, desired) - whole) * g,
        "standby": min(standby, max(0.0, serving - planned)) * g,
        "surplus": max(0.0, serving - planned - standby) * g,
        "loading": float(row[f"gpu_loading:{name}"]),
        "provisioning": float(row[f"gpu_provisioning:{name}"]),
        "idle": float(row[f"gpu_idle:{name}"]),
        "short": max(0.0, need - serving) * g,
    }
    return out


def breakdown(
    rows: list[dict[str, str]],
) -> tuple[dict[str, dict[str, float]], dict[int, dict[str, float]], float]:
    """Per deployment and per hour of the day: GPU-hours per part; and the billed total."""
    names = sorted(c.split(":", 1)[1] for c in rows[0] if c.startswith("need:"))
    per_md: dict[str, dict[str, float]] = {n: defaultdict(float) for n in names}
    per_hour: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    billed = 0.0
    for row in rows:
        hour = int(row["time"][11:13])
        billed += float(row["gpus"]) / 60.0
        unheld = float(row.get("gpu_idle_unheld") or 0.0) / 60.0
        per_hour[hour]["idle"] += unheld
        per_md.setdefault("(no holder)", defaultdict(float))["idle"] += unheld
        for name in names:
            for part, gpus in split(row, name).items():
                per_md[name][part] += gpus / 60.0
                per_hour[hour][part] += gpus / 60.0
    return per_md, dict(sorted(per_hour.items())), billed


def _read(folder: Path) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    with (folder / "timeline.csv").open() as handle:
        for row in csv.DictReader(handle):
            out[row["policy"]].append(row)
    for policy, rows in out.items():
        if not rows or "need:" not in ",".join(rows[0]):
            sys.exit(f"{folder}: {policy}'s timeline has no GPU columns (simulate again)")
    return out


def _table(title: str, by: dict[str, dict[str, float]], first: str) -> list[str]:
    head = f"| {first} | " + " | ".join(PARTS) + " | total | short |"
    lines = [f"**{title}** (GPU-hours)", "", head, "|" + " --- |" * (len(PARTS) + 3)]
    totals: dict[str, float] = defaultdict(float)
    for label, parts in by.items():
        total = sum(parts.get(p, 0.0) for p in PARTS)
        cells = " | ".join(f"{parts.get(p, 0.0):.1f}" for p in PARTS)
        lines.append(f"| {label} | {cells} | {total:.1f} | {parts.get('short', 0.0):.1f} |")
        for p in (*PARTS, "short"):
            totals[p] += parts.get(p, 0.0)
    total = sum(totals[p] for p in PARTS)
    cells = " | ".join(f"{totals[p]:.1f}" for p in PARTS)
    lines.append(f"| all | {cells} | {total:.1f} | {totals['short']:.1f} |")
    return lines


def main(argv: list[str]) -> int:
    hours = "--hours" in argv
    args = [a for a in argv if a != "--hours"]
    if not args:
        print(__doc__)
        return 2
    policies = _read(Path(args[0]))
    if len(args) > 1:
        policies.update({k: v for k, v in _read(Path(args[1])).items() if k == "oracle"})
    lines: list[str] = []
    for policy, rows in policies.items():
        per_md, per_hour, billed = breakdown(rows)
        lines += _table(f"{policy}, billed {billed:.1f} GPU-hours", per_md, "deployment")
        lines.append("")
        if hours:
            lines += _table(
                f"{policy} per hour of the day (UTC)",
                {f"{h:02d}": v for h, v in per_hour.items()},
                "hour",
            )
            lines.append("")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
