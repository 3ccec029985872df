"""Each demand predictor's error one lead time ahead on a scenario's traffic.

The simulator's report gives the error of the predictor a deployment uses
(``forecastError``); choosing a predictor for a traffic shape needs all of them on the
same arrivals. This draws the scenario's traffic as ``modelfleet simulate`` does (same
seed, same warm-up) and scores every predictor of ``core.forecast.PREDICTORS`` with
``sim.report.predictor_error`` (MAPE over minutes with traffic, bias, share of forecasts
below the actual rate). No simulation runs: a few seconds.

Usage: ``python hack/predictor_error.py [SCENARIO] [--seed N] [--lead SECONDS]``
"""

from __future__ import annotations

import argparse

from modelfleet.core.forecast import PREDICTORS
from modelfleet.sim.engine import traffic_for
from modelfleet.sim.output import default_scenario_path
from modelfleet.sim.report import predictor_error
from modelfleet.sim.scenario import load_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default=None, help="scenario TOML (default: bundled)")
    ap.add_argument("--seed", type=int, default=None, help="the scenario's seed unless given")
    ap.add_argument("--lead", type=float, default=480.0, help="lead time, seconds (480)")
    args = ap.parse_args()
    overrides = {"seed": args.seed} if args.seed is not None else None
    scenario = load_scenario(args.scenario or default_scenario_path(), overrides=overrides)
    begin = int(scenario.spec.world.control.warmup_minutes * 60)
    seconds = begin + int(scenario.spec.duration_hours * 3600)
    traffic = traffic_for(scenario, seconds=seconds, offset=begin)
    print(f"{'deployment':<32} {'predictor':<10} {'MAPE':>7} {'bias':>7} {'under':>6}")
    for key, t in traffic.items():
        for name in PREDICTORS:
            e = predictor_error(t.arrivals, predictor=name, lead_seconds=args.lead, begin=begin)
            print(f"{key:<32} {name:<10} {e['mape']:>7.1%} {e['bias']:>+7.1%} {e['under']:>6.1%}")


if __name__ == "__main__":
    main()
