"""Continuous batching: one thread runs the model; requests join and leave between steps.

Each iteration of the engine thread:

1. drops cancelled sequences (a client that went away frees its slot here, within one step),
2. admits waiting requests in arrival order while the batch has a free slot
   (``max_running_sequences``) and the KV-cache budget holds the new sequence's worst case,
3. prefills admitted sequences, at most ``prefill_chunk_tokens`` prompt tokens per
   iteration: new prompts that fit whole in one forward pass together, a long prompt one
   chunk per iteration (so decoding never stalls behind it),
4. decodes one token for every sequence in the running batch with one forward pass over
   the shared left-padded cache (``kv_batch.PaddedKVBatch``).

Prefill never lets a position see another sequence's tokens or padding, and decode masks
padding out, so a greedy sequence gets the tokens it would get alone (up to float rounding
of differently shaped products): outputs do not depend on what else is running.

Admission is bounded: ``submit`` raises ``QueueFull`` when ``max_queue`` requests already
wait. A sequence reserves ``prompt + max_tokens`` cache positions; because the cache is
padded to its longest row, the batch admits a sequence only while
``rows x longest reservation`` fits ``kv_cache_tokens``, so memory never runs out mid-way
and nothing is ever preempted.

transformers (5.x) ships its own continuous-batching manager with a paged cache; it is not
used because it samples with one generation config for the whole batch (no per-request
greedy/sampled choice, no per-request seed), which the OpenAI API needs. The model itself,
its attention and its ``DynamicCache`` are transformers'.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import torch

from modelfleet.serving.kv_batch import PaddedKVBatch, cache_tensors, new_cache
from modelfleet.serving.metrics import ServerMetrics
from modelfleet.serving.settings import EngineSettings

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The admission queue holds ``max_queue`` requests already; retry later."""


class EngineClosed(Exception):
    """The engine is shutting down and takes no more requests."""


@dataclass(frozen=True)
class SamplingParams:
    """How to pick each token. ``temperature`` 0 is greedy (argmax); otherwise softmax at
    ``temperature`` restricted to the smallest set of tokens of probability ``top_p``,
    drawn with a generator seeded by ``seed`` (random when None)."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """A tokenised request. ``max_tokens`` >= 1 tokens at most; generation stops early at a
    token of ``stop_token_ids`` (that token is generated and counted)."""

    prompt_ids: tuple[int, ...]
    max_tokens: int
    sampling: SamplingParams = SamplingParams()
    stop_token_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class TokenEvent:
    """One generated token; ``finish_reason`` ("stop", "length", "error") on the last one.
    ``token_id`` is -1 on an error event, which carries no token."""

    token_id: int
    finish_reason: str | None = None


@dataclass(eq=False)
class _Sequence:
    id: int
    request: GenerationRequest
    arrival: float
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[TokenEvent] = field(default_factory=asyncio.Queue)
    generator: torch.Generator | None = None
    cache: Any = None  # own DynamicCache while prefilling
    prefilled: int = 0
    generated: list[int] = field(default_factory=list)
    last_token_at: float = 0.0
    end_reason: str | None = None  # set once: by the engine, or by the client (cancel/finish)
    counted: bool = False

    @property
    def reserved(self) -> int:
        return len(self.request.prompt_ids) + self.request.max_tokens


class SequenceHandle:
    """What ``Engine.submit`` returns: the token stream of one request, and its cancel."""

    def __init__(self, engine: Engine, seq: _Sequence) -> None:
        self._engine = engine
        self._seq = seq

    @property
    def prompt_tokens(self) -> int:
        """Length of the prompt in tokens."""
        return len(self._seq.request.prompt_ids)

    async def tokens(self) -> AsyncIterator[TokenEvent]:
        """Generated tokens as they come; ends after the event with a ``finish_reason``."""
        while True:
            event = await self._seq.queue.get()
            yield event
            if event.finish_reason is not None:
                return

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop generating and free the slot at the next step (idempotent; no-op once the
        sequence finished). ``reason`` is what ``modelfleet_requests_total`` counts:
        "cancelled" for a client that went away, "stop" for a stop string found by the
        caller."""
        self._engine._cancel(self._seq, reason)


class Engine:
    """Runs ``model`` (a transformers causal LM, already on its device, in eval mode) on a
    daemon thread. ``submit`` from the asyncio loop; tokens come back on that loop."""

    def __init__(
        self,
        model: Any,
        *,
        settings: EngineSettings,
        metrics: ServerMetrics,
        kv_cache_tokens: int,
    ) -> None:
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.kv_cache_tokens = kv_cache_tokens
        self.device: torch.device = next(model.parameters()).device
        self._ids = itertools.count()
        self._cv = threading.Condition()
        self._waiting: deque[_Sequence] = deque()
        self._cancelled: list[_Sequence] = []
        self._prefilling: list[_Sequence] = []
        self._decoding: list[_Sequence] = []  # rows of self._batch, in order
        self._batch = PaddedKVBatch()
        self._outbox: list[tuple[_Sequence, TokenEvent]] = []
        self._closing = False
        self._failed_steps = 0
        """Engine steps that raised in a row (reset by a step that did not)."""
        self.peak_batch = 0
        """The most sequences one decode step has served so far."""
        self.peak_prefill_group = 0
        """The most prompts one prefill pass has served so far."""
        self._thread = threading.Thread(target=self._run, name="modelfleet-engine", daemon=True)
        import inspect

        params = inspect.signature(model.forward).parameters
        # transformers 5.x renamed past_key_values to cache.
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"

    def check_model(self) -> None:
        """Run one tiny forward pass (warming the kernels up) and check that the model's
        cache is one this engine can batch. Raises ``TypeError`` for models whose cache
        has sliding-window or linear-attention layers."""
        with torch.inference_mode():
            cache = new_cache()
            ids = torch.tensor([[1, 2]], dtype=torch.long, device=self.device)
            self._forward(ids, cache)
            cache_tensors(cache)

    # -- the asyncio side ---------------------------------------------------------------

    def start(self) -> None:
        """Start the engine thread."""
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread; every unfinished request ends with an "error" event."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """The engine thread runs and takes requests (False once closed or crashed)."""
        return self._thread.is_alive() and not self._closing

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a slot."""
        return len(self._waiting)

    def submit(self, request: GenerationRequest) -> SequenceHandle:
        """Queue ``request``; call from a running event loop. Raises ``QueueFull`` when
        ``max_queue`` requests wait already (counted as "rejected"), ``EngineClosed`` when
        closing, ``ValueError`` when the request can never fit the KV-cache budget."""
        if request.max_tokens < 1 or not request.prompt_ids:
            raise ValueError("a request needs a prompt and max_tokens >= 1")
        seq = _Sequence(
            id=next(self._ids),
            request=request,
            arrival=time.monotonic(),
            loop=asyncio.get_running_loop(),
        )
        if seq.reserved > self.kv_cache_tokens:
            raise ValueError(
                f"prompt + max_tokens = {seq.reserved} tokens exceed the KV-cache budget "
                f"of {self.kv_cache_tokens} tokens"
            )
        with self._cv:
            if self._closing:
                raise EngineClosed("the server is shutting down")
            if len(self._waiting) >= self.settings.max_queue:
                self.metrics.request_finished("rejected")
                raise QueueFull(f"{len(self._waiting)} requests are waiting already")
            self._waiting.append(seq)
            self.metrics.queue_depth.set(len(self._waiting))
            self._cv.notify_all()
        return SequenceHandle(self, seq)

    def _cancel(self, seq: _Sequence, reason: str) -> None:
        with self._cv:
            if seq.end_reason is not None:
                return
            seq.end_reason = reason
            self._cancelled.append(seq)
            self._cv.notify_all()

    # -- the engine thread --------------------------------------------------------------

    def _emit(self, seq: _Sequence, event: TokenEvent) -> None:
        self._outbox.append((seq, event))

    def _flush(self) -> None:
        """Hand the buffered events to their event loops: one wake-up per loop per step,
        not one per token (the loop also serves HTTP)."""
        if not self._outbox:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Sequence, TokenEvent]]] = {}
        for seq, event in self._outbox:
            by_loop.setdefault(seq.loop, []).append((seq, event))
        self._outbox = []
        for loop, events in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                loop.call_soon_threadsafe(_deliver, events)

    def _finish(self, seq: _Sequence, reason: str) -> None:
        """Count a sequence that left (once)."""
        if not seq.counted:
            seq.counted = True
            self.metrics.request_finished(reason)
        seq.cache = None

    def _run(self) -> None:
        try:
            with torch.inference_mode():
                while self._iterate():
                    pass
        except Exception:  # fail every request rather than hang; /health then answers 500
            log.exception("engine thread stopped")
        finally:
            with self._cv:
                self._closing = True
                leftovers = [*self._waiting, *self._prefilling, *self._decoding]
                self._waiting.clear()
            for seq in leftovers:
                if seq.end_reason is None:
                    self._emit(seq, TokenEvent(-1, "error"))
                self._finish(seq, "error")
            self._flush()

    def _iterate(self) -> bool:
        with self._cv:
            while not (
                self._closing
                or self._cancelled
                or self._prefilling
                or self._decoding
                or self._waiting
            ):
                self._cv.wait()
            if self._closing:
                return False
            cancelled, self._cancelled = self._cancelled, []
            gone = set(cancelled)
            if gone:
                self._waiting = deque(s for s in self._waiting if s not in gone)
            self._admit()
            self.metrics.queue_depth.set(len(self._waiting))
        if gone:
            self._drop(gone, cancelled)
        try:
            self._prefill()
            self._flush()  # first tokens out before the decode step
            self._decode()
        except torch.OutOfMemoryError:
            log.exception("out of memory; failing the running batch")
            self._fail_running()
        except Exception:
            # One request's step must not take the server down for every other request:
            # fail the sequences of this step and go on. A fault that repeats on every step
            # (a broken device, a model that cannot run) stops the engine so /health fails.
            self._failed_steps += 1
            limit = self.settings.max_consecutive_step_failures
            log.exception("engine step failed (%d in a row, limit %d)", self._failed_steps, limit)
            self._fail_running()
            if self._failed_steps >= limit:
                raise
        else:
            self._failed_steps = 0
        self._flush()
        self.metrics.running.set(len(self._prefilling) + len(self._decoding))
        held = self._batch.padded_tokens() + sum(s.prefilled for s in self._prefilling)
        self.metrics.kv_cache_usage.set(min(1.0, held / self.kv_cache_tokens))
        return True

    def _admit(self) -> None:
        active = self._prefilling + self._decoding
        longest = max((s.reserved for s in active), default=0)
        while self._waiting and len(active) < self.settings.max_running_sequences:
            head = self._waiting[0]
            longest_after = max(longest, head.reserved)
            if (len(active) + 1) * longest_after > self.kv_cache_tokens and active:
                break
            self._waiting.popleft()
            longest = longest_after
            seed = head.request.sampling.seed
            if head.request.sampling.temperature > 0:
                head.generator = torch.Generator().manual_seed(
                    seed if seed is not None else torch.seed()
                )
            head.cache = new_cache()
            self._prefilling.append(head)
            active.append(head)

    def _drop(self, gone: set[_Sequence], cancelled: list[_Sequence]) -> None:
        self._prefilling = [s for s in self._prefilling if s not in gone]
        rows = [i for i, s in enumerate(self._decoding) if s in gone]
        if rows:
            self._batch.remove(rows)
            self._decoding = [s for s in self._decoding if s not in gone]
        for seq in cancelled:
            self._finish(seq, seq.end_reason or "cancelled")

    def _fail_running(self) -> None:
        for seq in [*self._prefilling, *self._decoding]:
            self._emit(seq, TokenEvent(-1, "error"))
            self._finish(seq, "error")
        self._prefilling, self._decoding = [], []
        self._batch = PaddedKVBatch()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _forward(self, input_ids: torch.Tensor, cache: Any, **kwargs: Any) -> torch.Tensor:
        out = self.model(
            input_ids=input_ids,
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_kwarg: cache},
            **kwargs,
        )
        logits: torch.Tensor = out.logits[:, -1, :]
        return logits

    def _prefill(self) -> None:
        """Spend up to ``prefill_chunk_tokens`` prompt tokens: new prompts that fit whole are
        prefilled together in one forward pass; a longer prompt takes one chunk per step."""
        budget = self.settings.prefill_chunk_tokens
        together: list[_Sequence] = []
        for seq in list(self._prefilling):
            if budget <= 0:
                break
            if seq.end_reason is not None:  # cancelled after this iteration began
                continue
            remaining = len(seq.request.prompt_ids) - seq.prefilled
            if seq.prefilled == 0 and remaining <= budget:
                together.append(seq)
                budget -= remaining
                continue
            budget -= self._prefill_chunk(seq, budget)
        if len(together) == 1:
            self._prefill_chunk(together[0], len(together[0].request.prompt_ids))
        elif together:
            self._prefill_together(together)

    def _prefill_chunk(self, seq: _Sequence, budget: int) -> int:
        """Prefill the next ``budget`` prompt tokens of ``seq`` in its own cache; returns
        the tokens used. The last chunk samples the first token and joins the batch."""
        prompt = seq.request.prompt_ids
        chunk = prompt[seq.prefilled : seq.prefilled + budget]
        start = seq.prefilled
        ids = torch.tensor([chunk], dtype=torch.long, device=self.device)
        positions = torch.arange(start, start + len(chunk), device=self.device).unsqueeze(0)
        logits = self._forward(ids, seq.cache, position_ids=positions)
        seq.prefilled += len(chunk)
        self.metrics.prompt_tokens.inc(len(chunk))
        if seq.prefilled == len(prompt):
            self._prefilling.remove(seq)
            self._join(seq, self._sample(logits, [seq])[0], cache_tensors(seq.cache))
        return len(chunk)

    def _prefill_together(self, group: list[_Sequence]) -> None:
        """Prefill whole prompts of ``group`` in one forward pass. Rows are right-padded:
        causal attention never lets a real position see the padding after it, so no mask
        is needed and each row computes what it would alone; the logits are read at each
        row's last real position and each row's cache is cut to its own length."""
        self.peak_prefill_group = max(self.peak_prefill_group, len(group))
        lengths = [len(s.request.prompt_ids) for s in group]
        ids = torch.zeros((len(group), max(lengths)), dtype=torch.long)
        for row, seq in enumerate(group):
            ids[row, : lengths[row]] = torch.tensor(seq.request.prompt_ids, dtype=torch.long)
        keep = sorted({n - 1 for n in lengths})
        cache = new_cache()
        out = self.model(
            input_ids=ids.to(self.device),
            use_cache=True,
            logits_to_keep=torch.tensor(keep, device=self.device),
            **{self._cache_kwarg: cache},
        )
        column = {position: i for i, position in enumerate(keep)}
        rows = torch.arange(len(group), device=self.device)
        index = torch.tensor([column[n - 1] for n in lengths], device=self.device)
        logits: torch.Tensor = out.logits[rows, index]
        tokens = self._sample(logits, group)
        tensors = cache_tensors(cache)
        for row, (seq, token, n) in enumerate(zip(group, tokens, lengths, strict=True)):
            seq.prefilled = n
            self.metrics.prompt_tokens.inc(n)
            self._prefilling.remove(seq)
            own = [(k[row : row + 1, :, :n], v[row : row + 1, :, :n]) for k, v in tensors]
            self._join(seq, token, own)

    def _join(
        self, seq: _Sequence, token: int, tensors: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> None:
        """``seq`` is prefilled and sampled ``token``: send it, and unless that ended the
        sequence, add its cache (``tensors``, batch 1) to the running batch."""
        seq.cache = None
        if self._accept(seq, token):
            self._batch.add(new_cache(tensors), seq.prefilled)
            self._decoding.append(seq)

    def _decode(self) -> None:
        if not self._decoding:
            return
        self.peak_batch = max(self.peak_batch, len(self._decoding))
        ids = torch.tensor(
            [[s.generated[-1]] for s in self._decoding], dtype=torch.long, device=self.device
        )
        mask, positions = self._batch.step_inputs(self.device)
        logits = self._forward(ids, self._batch.cache, attention_mask=mask, position_ids=positions)
        self._batch.advanced()
        tokens = self._sample(logits, self._decoding)
        done = [
            row
            for row, (seq, token) in enumerate(zip(self._decoding, tokens, strict=True))
            if not self._accept(seq, token)
        ]
        if done:
            self._batch.remove(done)
            dropped = set(done)
            self._decoding = [s for i, s in enumerate(self._decoding) if i not in dropped]

    def _accept(self, seq: _Sequence, token: int) -> bool:
        """Record ``token`` for ``seq`` and send it; False when ``seq`` is now finished."""
        now = time.monotonic()
        if not seq.generated:
            self.metrics.ttft.observe(now - seq.arrival)
        else:
            self.metrics.tpot.observe(now - seq.last_token_at)
        seq.last_token_at = now
        seq.generated.append(token)
        self.metrics.generated_tokens.inc()
        reason = None
        if token in seq.request.stop_token_ids:
            reason = "stop"
        elif len(seq.generated) >= seq.request.max_tokens:
            reason = "length"
        if reason is None and seq.end_reason is None:
            self._emit(seq, TokenEvent(token))
            return True
        with self._cv:
            already = seq.end_reason is not None
            if not already:
                seq.end_reason = reason
        if not already:
            self._emit(seq, TokenEvent(token, reason))
            self._finish(seq, reason or "length")
            return False
        # Cancelled while this step ran: the cancellation is reaped next iteration.
        return True

    def _sample(self, logits: torch.Tensor, seqs: list[_Sequence]) -> list[int]:
        """One token per row of ``logits`` ``[rows, vocab]``."""
        tokens: list[int] = logits.argmax(dim=-1).tolist()
        sampled = [i for i, s in enumerate(seqs) if s.request.sampling.temperature > 0]
        if sampled:
            rows = logits[sampled].float().cpu()
            for row, i in zip(rows, sampled, strict=True):
                tokens[i] = sample_token(row, seqs[i].request.sampling, seqs[i].generator)
        return tokens


def _deliver(events: list[tuple[_Sequence, TokenEvent]]) -> None:
    for seq, event in events:
        seq.queue.put_nowait(event)


def sample_token(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None
) -> int:
    """Draw one token id from ``logits`` ``[vocab]`` (float32, CPU) with temperature and
    nucleus (top-p) sampling. Deterministic for a given generator state."""
    # Shift first: the largest logit becomes 0, so a tiny temperature gives 0 and -inf (a
    # one-hot softmax) instead of inf / inf = NaN, which multinomial refuses.
    probs = torch.softmax((logits - logits.max()) / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        cumulative = sorted_probs.cumsum(0)
        # Keep the smallest prefix reaching top_p (always at least the most likely token).
        keep = (cumulative - sorted_probs) < params.top_p
        sorted_probs = sorted_probs * keep
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator).item())
