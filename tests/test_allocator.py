"""nexttoken.allocator: freed blocks are kept and reused (no fresh pages for each batch)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("resource")

SCRIPT = """
import resource, sys, torch
from nexttoken.allocator import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.ones(10_000_000)  # 40 MB written, then freed: a batch's activations
    del t
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(min(faults[2:]))
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    # 40 MB is over glibc's adaptive mmap threshold (at most 32 MiB): without the setting
    # each allocation maps fresh pages (~10,000 faults of 4 KiB); with it, the freed block
    # is reused
    plain, reused = _faults("default"), _faults("reuse")
    assert plain > 5000
    assert reused < 500
