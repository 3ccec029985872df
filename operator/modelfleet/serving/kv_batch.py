"""The running batch's KV cache: one left-padded ``DynamicCache`` shared by every decoding
sequence, so that one forward pass decodes one token for all of them.

Sequences are prefilled on their own (batch 1, in chunks) and join the batch between decode
steps; finished or cancelled ones leave it. Rows are right-aligned: row ``i`` holds
``pad[i]`` padding positions, then its real keys and values, all ending at the same column.
Padding is masked out by the attention mask (its softmax weight is exactly zero), and each
row's ``position_ids`` count only its real tokens, so a sequence's logits are those it would
get alone, up to float rounding of the different matrix shapes.

The cache is transformers' own ``DynamicCache`` (``cache.layers[i].keys`` / ``.values``,
``[batch, kv_heads, length, head_dim]``); rows join and leave by rebuilding those tensors,
which costs one copy of the cache per join or leave, not per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F


def cache_tensors(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer of a transformers ``DynamicCache``. Raises ``TypeError`` for
    a cache with layers other than plain full-attention ``DynamicLayer`` (sliding-window and
    linear-attention layers keep state this batcher cannot pad)."""
    from transformers.cache_utils import DynamicLayer

    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    for layer in cache.layers:
        if type(layer) is not DynamicLayer:
            raise TypeError(f"unsupported cache layer {type(layer).__name__} for batching")
        out.append((layer.keys, layer.values))  # type: ignore[arg-type]
    return out


def new_cache(tensors: Sequence[tuple[torch.Tensor, torch.Tensor]] = ()) -> Any:
    """A ``DynamicCache`` of plain layers holding ``tensors`` (no copy), or an empty one."""
    from transformers import cache_utils

    hf: Any = cache_utils  # transformers' annotations are looser than mypy --strict wants
    cache = hf.DynamicCache()
    if tensors:
        layers = []
        for keys, values in tensors:
            layer = hf.DynamicLayer()
            layer.lazy_initialization(keys, values)
            layer.keys, layer.values = keys, values
            layers.append(layer)
        cache.layers = layers
    return cache


def _left_pad(tensor: torch.Tensor, columns: int) -> torch.Tensor:
    if columns == 0:
        return tensor
    return F.pad(tensor, (0, 0, columns, 0))  # dims (head_dim, length): pad length on the left


class PaddedKVBatch:
    """Left-padded KV cache of the decoding sequences, in row order.

    ``lengths[i]`` is the number of real cached tokens of row ``i``; ``length`` the padded
    length of every row. Not thread-safe: the engine thread owns it.
    """

    def __init__(self) -> None:
        self.cache: Any = None
        self.lengths: list[int] = []

    @property
    def size(self) -> int:
        """Number of rows."""
        return len(self.lengths)

    @property
    def length(self) -> int:
        """Padded length of the cache (0 when empty)."""
        return max(self.lengths, default=0) if self.cache is None else self._cache_length()

    def _cache_length(self) -> int:
        keys: torch.Tensor = self.cache.layers[0].keys
        return int(keys.shape[-2])

    def padded_tokens(self) -> int:
        """Cache positions held, padding included (rows x padded length)."""
        return self.size * self.length if self.cache is not None else 0

    def add(self, cache: Any, length: int) -> None:
        """Append a prefilled sequence (its own batch-1 ``DynamicCache`` of ``length`` tokens)."""
        tensors = cache_tensors(cache)
        if self.cache is None:
            self.cache = new_cache(tensors)
            self.lengths = [length]
            return
        current = self._cache_length()
        target = max(current, length)
        merged = []
        for (keys, values), (new_keys, new_values) in zip(
            cache_tensors(self.cache), tensors, strict=True
        ):
            merged.append(
                (
                    torch.cat(
                        [_left_pad(keys, target - current), _left_pad(new_keys, target - length)]
                    ),
                    torch.cat(
                        [
                            _left_pad(values, target - current),
                            _left_pad(new_values, target - length),
                        ]
                    ),
                )
            )
        self.cache = new_cache(merged)
        self.lengths.append(length)

    def remove(self, rows: Sequence[int]) -> None:
        """Drop ``rows`` (indices), then the leading columns that are padding in every row."""
        drop = set(rows)
        if not drop:
            return
        keep = [i for i in range(self.size) if i not in drop]
        self.lengths = [self.lengths[i] for i in keep]
        if not keep:
            self.cache = None
            return
        start = self._cache_length() - max(self.lengths)
        index = torch.tensor(keep, device=self.cache.layers[0].keys.device)
        self.cache = new_cache(
            [
                (
                    keys.index_select(0, index)[:, :, start:],
                    values.index_select(0, index)[:, :, start:],
                )
                for keys, values in cache_tensors(self.cache)
            ]
        )

    def step_inputs(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(attention_mask ``[rows, length + 1]``, position_ids ``[rows, 1]``) for decoding one
        more token per row."""
        total = self._cache_length() + 1
        mask = torch.zeros((self.size, total), dtype=torch.long)
        for row, real in enumerate(self.lengths):
            mask[row, total - real - 1 :] = 1
        positions = torch.tensor(self.lengths, dtype=torch.long).unsqueeze(1)
        return mask.to(device), positions.to(device)

    def advanced(self) -> None:
        """Record that the last forward appended one token to every row."""
        self.lengths = [n + 1 for n in self.lengths]
