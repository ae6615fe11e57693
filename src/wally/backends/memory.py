"""Freed memory kept for the next step: the C allocator told not to hand large blocks back.

A training step allocates the same large arrays every time (activations, gradients, im2col
columns) and frees them before the next step.  glibc's ``malloc`` gives a large freed block
back to the operating system (``munmap``, or trimming the top of the heap), so the next step
asks for it again and the kernel zeroes it page by page: on LeNet at batch 256 that was about
3,700 page faults a step, 12% of a one-thread epoch and 23% of a two-thread one, where the
threads also queue on the kernel's lock of the address space (measured, see
``benchmarks/PROFILE.md``).  A caching allocator is PyTorch's answer on the GPU; on the CPU,
NumPy allocates with ``malloc``, so wally sets two of glibc's documented knobs
(``mallopt(3)``) when it is imported:

* ``M_MMAP_THRESHOLD``: blocks below ``tuning.MALLOC_MMAP_BYTES`` (32 MiB, the largest value
  glibc's own sliding threshold ever reaches) come from the heap, not from ``mmap``;
* ``M_TRIM_THRESHOLD``: the heap is trimmed only when more than ``tuning.MALLOC_TRIM_BYTES``
  (256 MiB) of it is free at the top.

Peak memory does not grow (a block is reused, not added); what changes is that up to 256 MiB
that a step freed stays with the process between steps, as PyTorch's caching allocator keeps
GPU memory.  Set the environment variable ``WALLY_MALLOC=system`` before importing wally to
leave the allocator as it is.  Elsewhere than glibc (macOS, musl, Windows) nothing is changed.
glibc has no way back to its sliding thresholds once they are set.
"""

from __future__ import annotations

import ctypes
import os
import warnings
from typing import Any

from wally.backends import tuning

__all__ = ["keep_freed_memory", "keeps_freed_memory"]

# mallopt(3)'s parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_state: dict[str, Any] = {"kept": False}


def _glibc() -> Any:
    """The C library, where it is glibc (it has ``gnu_get_libc_version`` and ``mallopt``);
    ``None`` elsewhere."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return libc


def keep_freed_memory() -> bool:
    """Tell glibc to keep freed blocks up to ``tuning.MALLOC_MMAP_BYTES`` in the heap and to
    trim the heap only past ``tuning.MALLOC_TRIM_BYTES``; returns whether it did (``False``
    where the C library is not glibc).  wally calls it at import unless ``WALLY_MALLOC`` is
    ``system``."""
    libc = _glibc()
    if libc is None:
        return False
    done = bool(libc.mallopt(_M_MMAP_THRESHOLD, tuning.MALLOC_MMAP_BYTES)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, tuning.MALLOC_TRIM_BYTES)
    )
    _state["kept"] = done
    return done


def keeps_freed_memory() -> bool:
    """Whether :func:`keep_freed_memory` has set glibc's thresholds in this process."""
    return bool(_state["kept"])


def _at_import() -> None:
    choice = os.environ.get("WALLY_MALLOC", "keep").strip().lower()
    if choice == "system":
        return
    if choice not in ("", "keep"):
        warnings.warn(f"WALLY_MALLOC: expected 'keep' or 'system', got "
                      f"{os.environ['WALLY_MALLOC']!r}; keeping freed memory", stacklevel=3)
    keep_freed_memory()


_at_import()
