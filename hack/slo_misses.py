"""Which minutes miss the SLO, per deployment, and what was happening then.

Reads the ``timeline.csv`` (and ``report.json``) that ``modelfleet simulate --out DIR``
writes and prints, per policy and deployment, each run of consecutive missed minutes with
the time, requests and failures, TTFT p95, ready/desired replicas and the scenario event
active at that moment (burst, outage, reclaim, stockout), so the causes of the missed
minutes can be counted before any rule is changed.

Usage: ``python hack/slo_misses.py DIR [DIR ...] [--policy modelfleet]``
"""

from __future__ import annotations

import argparse
import csv
import json
import tomllib
from pathlib import Path

from modelfleet.sim.output import default_scenario_path


def _minutes(at: str) -> float:
    """A scenario time ("HH:MM", "90m", "1.5h", seconds) in minutes."""
    if ":" in at:
        h, m = at.split(":")[:2]
        return int(h) * 60 + int(m)
    if at.endswith("m"):
        return float(at[:-1])
    if at.endswith("h"):
        return float(at[:-1]) * 60
    return float(at) / 60


def _events(scenario_file: Path) -> list[tuple[float, float, str]]:
    """(start minute, end minute, label) of the scenario's events, ten minutes added."""
    raw = tomllib.loads(scenario_file.read_text())
    spans = []
    for event in raw.get("events", []):
        start = _minutes(str(event["at"]))
        minutes = float(event.get("durationMinutes", event.get("stockoutMinutes", 5)))
        where = event.get("region") or event.get("cloud") or event.get("deployment") or ""
        spans.append((start, start + minutes + 10.0, f"{event['type']}({where})"))
    for dep in raw.get("deployments", []):
        for burst in dep.get("traffic", {}).get("bursts", []):
            start = _minutes(str(burst["at"]))
            spans.append((start, start + burst["durationMinutes"] + 10.0, "burst"))
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--policy", default="modelfleet")
    parser.add_argument("--scenario", type=Path, default=None)
    args = parser.parse_args()
    try:
        spans = _events(args.scenario or default_scenario_path())
    except Exception as exc:  # the labels are a convenience; the misses print anyway
        print(f"(events not labelled: {exc})")
        spans = []
    for folder in args.dirs:
        report = json.loads((folder / "report.json").read_text())
        pol = report["policies"][args.policy]
        slos = {
            key.split("/", 1)[1]: (d.get("sloAttainment"), d)
            for key, d in pol["deployments"].items()
        }
        print(
            f"== {folder} seed {report['seed']} {args.policy}: SLO {pol['sloAttainment']:.4f}"
            f" GPU-h {pol['gpuHours']:.1f} failed {pol['requestsFailed']} cost {pol['costUsd']:.0f}"
        )
        for name, (att, _) in slos.items():
            print(f"   {name}: {att:.4%}")
        rows = [
            r
            for r in csv.DictReader((folder / "timeline.csv").open())
            if r["policy"] == args.policy
        ]
        names = [c.split(":", 1)[1] for c in rows[0] if c.startswith("ttft_p95_ms:")]
        slo_ms = _slo_ms(report, args.policy)
        for name in names:
            limit = slo_ms.get(name)
            missed = []
            for r in rows:
                v = r[f"ttft_p95_ms:{name}"]
                if v in ("", None):
                    continue
                if v == "inf" or (limit is not None and float(v) > limit):
                    missed.append(r)
            print(f" {name} (SLO {limit} ms): {len(missed)} missed minutes")
            for r in missed:
                m = int(r["minute"])
                label = ",".join(sorted({lab for a, b, lab in spans if a <= m < b})) or "-"
                print(
                    f"   {r['time'][11:16]} m{m:4d} req {r[f'requests:{name}']:>5} "
                    f"failed {float(r[f'failed:{name}']):7.1f} p95 {r[f'ttft_p95_ms:{name}']:>8} "
                    f"ready {r[f'ready:{name}']:>3}/{r[f'desired:{name}']:<3} {label}"
                )


def _slo_ms(report: dict, policy: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, d in report["policies"][policy]["deployments"].items():
        out[key.split("/", 1)[1]] = d.get("sloTtftP95Ms")
    return out


if __name__ == "__main__":
    main()
