"""Turn a stream of token ids into a stream of text, stopping at stop strings.

Tokens do not map one-to-one onto characters (a multi-byte character may span tokens,
a tokenizer may merge spaces), so the text is re-decoded from all the generated ids and
only the part that can no longer change is released: text ending in an incomplete
character (U+FFFD) is held, and so is a tail that could be the start of a stop string.
When a stop string appears, the text before it is the final output and generation ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TextStream:
    """Incremental detokenizer for one request (``tokenizer``: a transformers tokenizer)."""

    tokenizer: Any
    stops: Sequence[str] = ()
    ids: list[int] = field(default_factory=list)
    sent: int = 0
    """Characters of the decoded text released so far."""
    stopped: bool = False
    """A stop string was found; the text is final."""

    def push(self, token_id: int) -> str:
        """Add one generated token; return the newly released text (maybe empty)."""
        if self.stopped:
            return ""
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        cut = min(
            (i for i in (text.find(s, max(0, self.sent - len(s))) for s in self.stops) if i >= 0),
            default=-1,
        )
        if cut >= 0:
            self.stopped = True
            return self._release(text, cut)
        end = len(text)
        while end > self.sent and text[end - 1] == "\ufffd":
            end -= 1
        hold = 0  # the longest tail that may begin a stop string
        for stop in self.stops:
            for k in range(min(len(stop) - 1, end - self.sent), hold, -1):
                if text[end - k : end] == stop[:k]:
                    hold = k
                    break
        return self._release(text, end - hold)

    def flush(self) -> str:
        """At the end of generation: the text still held back."""
        if self.stopped:
            return ""
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        return self._release(text, len(text))

    def _release(self, text: str, end: int) -> str:
        if end <= self.sent:
            return ""
        out = text[self.sent : end]
        self.sent = end
        return out
