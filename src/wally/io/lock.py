"""One process per folder: an exclusive OS file lock on ``FOLDER/.wally.lock``.

``wally train --out DIR`` holds it for the whole run, so a second run on the same folder is
refused instead of interleaving its checkpoint and metrics with the first's. The lock is the
operating system's (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows): the kernel
releases it when the process ends, however it ends, so a run killed with SIGKILL never leaves a
stale lock behind; the file itself stays, holding the last holder's pid for messages only.

>>> with FolderLock("runs/lenet"):
...     train()
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

LOCK_NAME = ".wally.lock"

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None  # type: ignore[assignment]


class FolderLockedError(RuntimeError):
    """Another process holds the folder's lock; the message names its pid."""


def _try_lock(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    if msvcrt is not None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    raise OSError("this platform has neither fcntl nor msvcrt file locks, so wally cannot "
                  "make sure only one run uses the folder")


def holder(folder: str | os.PathLike[str]) -> int | None:
    """The pid recorded in ``folder``'s lock file (the last process that held it), if any."""
    try:
        text = (Path(folder) / LOCK_NAME).read_text(encoding="ascii", errors="replace")[:32]
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return None


class FolderLock:
    """An exclusive lock on ``folder`` (created if missing), taken without waiting.

    :meth:`acquire` raises :class:`FolderLockedError` naming the holder's pid when another
    process has it. Released by :meth:`release`, on leaving a ``with`` block, or by the kernel
    when the process dies.
    """

    def __init__(self, folder: str | os.PathLike[str], what: str = "run") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
        for _ in range(20):
            fd = os.open(self.path, flags, 0o644)
            try:
                if not _try_lock(fd):
                    pid = holder(self.folder)
                    by = f"process {pid}" if pid is not None else "another process"
                    raise FolderLockedError(
                        f"{self.folder} is in use by another {self.what} ({by} holds "
                        f"{self.path}); wait for it to finish, or choose another folder"
                    )
                # The file may have been unlinked (and a new one created) between our open and
                # our lock: then we hold a lock on a file nobody else will see. Try again.
                if fcntl is not None and os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            except FileNotFoundError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            return self
        raise FolderLockedError(f"{self.folder}: its lock file {self.path} keeps changing; "
                                "another process is removing it")

    def release(self, remove: bool = False) -> None:
        """Let go of the lock; with ``remove``, delete the lock file first (while held, so no
        other process can be waiting on it in between)."""
        if self._fd is None:
            return
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(self._fd)  # closing the last descriptor releases flock and msvcrt locks
        self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()
