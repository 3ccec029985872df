"""Write examples/traces/synthetic-chat.csv: a small synthetic trace in the Azure LLM
inference trace format (TIMESTAMP,ContextTokens,GeneratedTokens), the one the repository
ships (the real Azure trace stays in ../shared/traces). 20 minutes of a chat-like service:
a rate that rises from 1 to 3 requests/s with a 2-minute burst at 5/s, Poisson arrivals,
log-normal lengths (prompt median 600, sigma 0.9; output median 200, sigma 0.7). Seeded:
re-running it gives the same file.

    python hack/make_synthetic_trace.py
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

OUT = Path(__file__).parents[1] / "examples" / "traces" / "synthetic-chat.csv"


def main() -> None:
    rng = np.random.default_rng(20231116)
    start = datetime(2023, 11, 16, 18, 0, 0)
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for second in range(20 * 60):
        rate = 1.0 + 2.0 * second / 1200.0
        if 600 <= second < 720:
            rate = 5.0
        for _ in range(rng.poisson(rate)):
            at = start + timedelta(seconds=second + float(rng.random()))
            prompt = max(1, round(rng.lognormal(math.log(600), 0.9)))
            output = max(1, round(rng.lognormal(math.log(200), 0.7)))
            lines.append(f"{at:%Y-%m-%d %H:%M:%S}.{at.microsecond:06d}0,{prompt},{output}")
    head, rows = lines[0], sorted(lines[1:])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join([head, *rows]) + "\n")
    print(f"wrote {OUT} ({len(rows)} requests)")


if __name__ == "__main__":
    main()
