"""The simulator's memory without transparent-huge-page advice (a cost of the host, not of
the model).

numpy advises the kernel to back every large array (4 MiB and more) with transparent huge
pages. Where the kernel compacts memory to find one on such a fault
(``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, a common default, and this
project's 2-core VM), every fresh array of a report's ~10^7 requests can stall in
compaction: measured there, 3-4 s of system time per policy evaluation with the advice,
0.6-0.8 s without it, for the same arrays and the same values. ``simulate`` and its worker
processes allocate without the advice.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import cast


def _hugepage_setter() -> Callable[[bool], bool] | None:
    """numpy's switch for its huge-page advice (returns the previous setting); None when
    this numpy has none."""
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        setter = getattr(module, "_set_madvise_hugepage", None)
        if callable(setter):
            return cast(Callable[[bool], bool], setter)
    return None


@contextlib.contextmanager
def without_hugepage_advice() -> Iterator[None]:
    """numpy allocates without the huge-page advice inside (process-wide; restored on
    exit, also on error). Changes no value, only how the kernel backs the memory."""
    setter = _hugepage_setter()
    if setter is None:
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)
