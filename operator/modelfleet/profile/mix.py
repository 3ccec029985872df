"""Request-length mixes for a load test: synthetic log-normal lengths, or a trace file.

A trace is a CSV in the Azure LLM inference trace format (``TIMESTAMP,ContextTokens,
GeneratedTokens``); only the two length columns are used here (the load test sets its
own rate). Prompts are made of a repeated common word so that one word is about one
token for the usual BPE tokenizers. The endpoint's usage figures are not read (no
``stream_options.include_usage`` is sent): a profile's prompt lengths are the words sent,
its output lengths the content chunks received.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_TOKENS = 10_000_000
"""Most prompt or output tokens of one request: above any model's context window (the
largest public ones are 10M tokens; ``sim.traffic.MAX_TRACE_TOKENS`` is the same). A trace
row of 10^23 tokens ended every warm-up request in an OverflowError, blamed on the
endpoint."""


@dataclass(frozen=True)
class Mix:
    """Where request lengths come from: log-normal (median, sigma) pairs, or a trace's rows."""

    prompt_median: float = 512.0
    prompt_sigma: float = 0.0
    output_median: float = 128.0
    output_sigma: float = 0.0
    trace: tuple[tuple[int, int], ...] = ()

    def lengths(self, seed: int) -> Iterator[tuple[int, int]]:
        """An endless, seeded stream of (prompt tokens, output tokens), each from 1 to
        ``MAX_TOKENS``."""
        rng = random.Random(seed)
        while True:
            if self.trace:
                yield self.trace[rng.randrange(len(self.trace))]
                continue
            p = self.prompt_median * math.exp(rng.gauss(0.0, self.prompt_sigma))
            o = self.output_median * math.exp(rng.gauss(0.0, self.output_sigma))
            yield min(MAX_TOKENS, max(1, round(p))), min(MAX_TOKENS, max(1, round(o)))


def read_trace(path: Path, *, limit: int = 100_000) -> tuple[tuple[int, int], ...]:
    """(ContextTokens, GeneratedTokens) rows of an Azure-format trace. Raises ValueError
    naming the file when the columns are missing or a value is not an integer or is above
    ``MAX_TOKENS``; rows with a count below 1 are skipped; a UTF-8 byte-order mark is
    ignored."""
    rows: list[tuple[int, int]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:  # a BOM is no part of a name
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        if not {"ContextTokens", "GeneratedTokens"} <= fields:
            found = ",".join(reader.fieldnames or ()) or "none"
            raise ValueError(
                f"{path}: expected columns ContextTokens,GeneratedTokens (found: {found})"
            )
        for i, row in enumerate(reader, start=2):
            try:
                p, o = int(row["ContextTokens"]), int(row["GeneratedTokens"])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{i}: not an integer token count") from exc
            if max(p, o) > MAX_TOKENS:
                raise ValueError(
                    f"{path}:{i}: a token count above {MAX_TOKENS:,} (beyond any model's "
                    "context window)"
                )
            if p >= 1 and o >= 1:
                rows.append((p, o))
            if len(rows) >= limit:
                break
    if not rows:
        raise ValueError(f"{path}: no rows with positive token counts")
    return tuple(rows)


def prompt_text(tokens: int) -> str:
    """A prompt of about ``tokens`` tokens."""
    return " ".join(["hello"] * max(1, tokens))
