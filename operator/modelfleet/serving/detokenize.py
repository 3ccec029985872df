"""Turn a stream of token ids into a stream of text, stopping at stop strings.

Tokens do not map one-to-one onto characters (a multi-byte character may span tokens, a
tokenizer may merge spaces), so each new token is decoded together with the few tokens
before it, and only the text that this window adds beyond the text of the window without
the new token is appended (the incremental detokenization of TGI and vLLM: constant work
per token, where re-decoding everything would grow with the answer). A window ending in an
incomplete character (U+FFFD) adds nothing until the character completes. Text that could
be the start of a stop string is held back; when a stop string appears, the text before
it is the final output and generation ends.
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
    text: str = ""
    """The text decoded so far (complete characters only)."""
    sent: int = 0
    """Characters of ``text`` released so far."""
    stopped: bool = False
    """A stop string was found; the text is final."""
    _prefix_offset: int = 0
    _read_offset: int = 0

    def _decode(self, ids: list[int]) -> str:
        text: str = self.tokenizer.decode(ids, skip_special_tokens=True)
        return text

    def push(self, token_id: int) -> str:
        """Add one generated token; return the newly released text (maybe empty)."""
        if self.stopped:
            return ""
        self.ids.append(token_id)
        before = self._decode(self.ids[self._prefix_offset : self._read_offset])
        window = self._decode(self.ids[self._prefix_offset :])
        if len(window) > len(before) and not window.endswith("\ufffd"):
            self.text += window[len(before) :]
            self._prefix_offset, self._read_offset = self._read_offset, len(self.ids)
        text = self.text
        cut = min((i for i in (text.find(s, max(0, self.sent - len(s))) for s in self.stops)
                   if i >= 0), default=-1)  # fmt: skip
        if cut >= 0:
            self.stopped = True
            return self._release(cut)
        end = len(text)
        hold = 0  # the longest tail that may begin a stop string
        for stop in self.stops:
            for k in range(min(len(stop) - 1, end - self.sent), hold, -1):
                if text[end - k : end] == stop[:k]:
                    hold = k
                    break
        return self._release(end - hold)

    def flush(self) -> str:
        """At the end of generation: the text still held back (an incomplete character at
        the very end is released as decoded)."""
        if self.stopped:
            return ""
        before = self._decode(self.ids[self._prefix_offset : self._read_offset])
        window = self._decode(self.ids[self._prefix_offset :])
        if len(window) > len(before):
            self.text += window[len(before) :]
            self._prefix_offset = self._read_offset = len(self.ids)
        return self._release(len(self.text))

    def _release(self, end: int) -> str:
        if end <= self.sent:
            return ""
        out = self.text[self.sent : end]
        self.sent = end
        return out
