"""Write a file so that a crash never leaves a half-written one under the final name.

The bytes go to a temporary file in the same folder (so the rename stays on one file system),
are flushed and fsync'ed, and only then replace the target with ``os.replace``; the folder
itself is fsync'ed last so that the rename survives a power cut. On any failure the temporary
file is removed and whatever was at ``path`` before is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

# A test seam, used by tests/test_kill_resume.py: with this variable set to a number of seconds,
# atomic_write stops that long halfway through writing the temporary file, so that a test can
# SIGKILL the process while a torn temporary file exists. Unset, it costs one dictionary lookup.
PAUSE_ENV = "WALLY_TEST_ATOMIC_WRITE_PAUSE"


def _write_pausing_halfway(file: Any, data: bytes, seconds: float) -> None:
    half = len(data) // 2
    file.write(data[:half])
    file.flush()
    time.sleep(seconds)
    file.write(data[half:])


def fsync_directory(folder: str | os.PathLike[str]) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: readers see the old file or the new one.

    The new file keeps the permissions of the one it replaces (or gets those of a newly
    created file: ``0o666`` less the umask), not the ``0o600`` of a temporary file.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        mode = os.stat(target).st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            if hasattr(os, "fchmod"):
                os.fchmod(file.fileno(), mode)
            pause = os.environ.get(PAUSE_ENV)
            if pause:
                _write_pausing_halfway(file, data, float(pause))
            else:
                file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_directory(folder)


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line and make it durable (write, flush, fsync) before returning."""
    with open(path, "a", encoding="utf-8") as file:
        file.write(line.rstrip("\n") + "\n")
        file.flush()
        os.fsync(file.fileno())
