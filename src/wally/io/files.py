"""Opening the files users hand to wally: regular files only, and never more bytes than asked.

Every file wally reads (images, checkpoints, IDX, CIFAR, metrics, configs) goes through
:func:`open_regular`. It opens without blocking (a FIFO would otherwise wait forever for a
writer), then checks the *opened* file with ``fstat``, so a path swapped between a check and the
open can't slip past: a FIFO, a socket, a device such as ``/dev/zero`` or a directory is refused
before one byte is read, and so is a file larger than the caller's ``max_bytes``.

>>> with open_regular("weights.safetensors", "checkpoint", max_bytes=1 << 30) as f:
...     header = f.read(8)
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path


class RefusedFileError(ValueError):
    """A file wally will not read: not a regular file, or larger than the format allows.

    A ``ValueError``; the message names the file, what it is (or its size) and what was
    expected.
    """


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def check_size(path: str | os.PathLike[str], what: str, size: int,
               max_bytes: int | None) -> None:
    """Refuse ``size`` bytes of ``what`` at ``path`` if it is over ``max_bytes``."""
    if max_bytes is not None and size > max_bytes:
        raise RefusedFileError(
            f"{path}: {size:,} bytes, over wally's {what} limit of {max_bytes:,} bytes"
        )


def open_regular(path: str | os.PathLike[str], what: str = "file",
                 max_bytes: int | None = None) -> io.BufferedReader:
    """Open ``path`` for binary reading if it is a regular file of at most ``max_bytes`` bytes.

    Symbolic links are followed (a link to a regular file is fine; a link to ``/dev/zero`` is
    refused as a character device). ``what`` names the file in messages ("image", "checkpoint").

    Raises:
        FileNotFoundError, PermissionError, OSError: as ``open`` does.
        RefusedFileError: not a regular file, or more than ``max_bytes`` bytes.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(os.fspath(path), flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFileError(
                f"{path}: expected a regular {what} file, got {_kind(info.st_mode)}"
            )
        check_size(path, what, info.st_size, max_bytes)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], what: str = "file",
                 max_bytes: int | None = None) -> bytes:
    """The whole of a regular file of at most ``max_bytes`` bytes (see :func:`open_regular`).

    Reads at most the file's size (as ``fstat`` gave it) plus one byte: a file that grows after
    the check is refused rather than read without end. (Not ``read(max_bytes + 1)``: Python's
    buffered ``read(n)`` allocates ``n`` bytes first, whatever the file holds.)
    """
    with open_regular(path, what, max_bytes) as file:
        size = os.fstat(file.fileno()).st_size
        data = file.read(size + 1)
    if len(data) > size:
        check_size(path, what, len(data), max_bytes)
        raise RefusedFileError(f"{path}: the {what} grew while being read (from {size:,} "
                               "bytes)")
    return data


def read_text(path: str | os.PathLike[str], what: str = "file",
              max_bytes: int | None = None) -> str:
    """:func:`read_regular` decoded as UTF-8 (a decoding error names the file)."""
    data = read_regular(path, what, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RefusedFileError(
            f"{path}: the {what} is not UTF-8 text (byte {error.start})"
        ) from None


def is_regular(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a regular file (following links), without opening it."""
    try:
        return stat.S_ISREG(Path(path).stat().st_mode)
    except OSError:
        return False
