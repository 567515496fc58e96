"""Keep freed memory for reuse in a long-running process (the explorer's server).

A forward pass allocates its activations afresh and frees them at its end. glibc's ``malloc``
hands a large block to the kernel when it is freed (``mmap`` above a threshold that adapts up
to 32 MiB, and a heap's free top over a trim threshold, twice that, given back), so the next
pass's blocks are new pages, and the first write to each 4 KiB page is a page fault. GPT-2 124M
on a batch of 20 prompts of 32 tokens took about 22,000-29,000 such faults per batch (90-110 MB
of fresh pages: the 640 x 3072 MLP activations, the bias each product starts from, the GELU's
output) and 682-694 ms; with fixed thresholds of 64 MiB (blocks up to 64 MiB come from the heap
and up to 64 MiB of free heap top is kept), 2-130 faults and 645-651 ms (-6%, 2-core AVX2 CPU,
five runs, four of them with a 256 MiB trim threshold);
a single prompt's 73-75 ms is unchanged, as are forecast batches (their blocks are smaller).
The cost: a process keeps up to 64 MiB of freed memory per heap (glibc has one per thread that
allocates, up to 8 per core) instead of handing it back: after 40 s of 50 clients the explorer
serving two models held 343 MB against 304 MB without this (464 MB with a 256 MiB trim
threshold, which was no faster).

:func:`reuse_freed_memory` sets this for the calling process; ``nexttoken serve`` calls it
before loading its models. It changes no value anywhere, only where memory comes from.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["reuse_freed_memory"]

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def reuse_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 64 << 20) -> bool:
    """Have glibc keep freed blocks up to ``mmap_threshold`` bytes in its heap, and up to
    ``trim_threshold`` bytes free at a heap's top, for later allocations (fixed thresholds
    instead of the adaptive ones). Returns whether it took effect: False on other systems or
    C libraries (macOS, Windows, musl), where nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 when glibc refuses the value
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )
