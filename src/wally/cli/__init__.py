"""The ``wally`` command line: one module per sub-command in this package.

Each module defines ``register(subparsers)``, which adds its parser and sets
``func=run`` (a callable taking the parsed arguments and returning the exit code).
Exit codes: 0 success, 1 a failure while running (the message says why), 2 bad usage,
130 interrupted (Ctrl-C).

Every failure is one line on stderr, ``wally COMMAND: error: ...``, never a traceback:
:class:`CommandError` (what a command refuses), the errors bad input raises (``ValueError``
and ``TypeError``, so ``DatasetFormatError``, ``RefusedFileError`` and ``CheckpointError`` too),
``OSError`` (a missing file, a full disk, a name too long), ``MemoryError`` and a missing
optional package (the line names the extra to install). Any other exception is a bug in
wally: it is reported in one line as an internal error. With ``WALLY_DEBUG=1`` in the
environment every failure shows its traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pkgutil
import sys
import unicodedata
from collections.abc import Sequence

import wally_cli

DEBUG_ENV = "WALLY_DEBUG"

# The optional packages and the extra of wally-cnn that installs each.
EXTRAS = {"safetensors": "train", "tqdm": "train", "matplotlib": "train", "PIL": "data",
          "sklearn": "data", "onnx": "onnx", "onnxruntime": "onnx", "mpi4py": "mpi",
          "networkx": "graph", "scipy": "graph", "tensorboard": "tensorboard"}
_PACKAGE_NAMES = {"PIL": "pillow", "sklearn": "scikit-learn"}
MAX_LINE = 1000


class CommandError(Exception):
    """A failure to report to the user in one line, with exit code 1 (no traceback)."""


def printable(text: object) -> str:
    """``text`` with control and format characters (a terminal's escape sequences, newlines,
    bidirectional overrides) written as escapes, so that printing it shows it rather than
    acting on the terminal: ``"\\x1b[2J"`` prints as ``\\x1b[2J``."""
    out = []
    for char in str(text):
        if unicodedata.category(char)[0] == "C" or char in "\u2028\u2029":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def _one_line(text: str) -> str:
    line = printable(" ".join(str(text).split("\n")))
    return line if len(line) <= MAX_LINE else line[:MAX_LINE] + "..."


def _short_path(path: object) -> str:
    """A path for a message: overlong components shortened (the name itself is the problem)."""
    parts = os.fspath(path).split(os.sep) if isinstance(path, str | os.PathLike) else [str(path)]
    return os.sep.join(p if len(p) <= 60 else f"{p[:24]}...({len(p)} characters)"
                       for p in parts)


def describe_os_error(error: OSError) -> str:
    """One line for an ``OSError``: what went wrong and on which file."""
    reason = error.strerror or str(error)
    if error.errno == errno.ENAMETOOLONG:
        name = error.filename if error.filename is not None else ""
        longest = max((len(p) for p in os.fspath(name).split(os.sep)), default=0) \
            if isinstance(name, str | os.PathLike) else 0
        return (f"{_short_path(name)}: a path component of {longest} characters is longer "
                "than the file system allows (usually 255 bytes)")
    if error.errno == errno.ENOSPC:
        where = f" writing {_short_path(error.filename)}" if error.filename else ""
        return f"no space left on the device{where}: free some space and run again"
    if error.filename is not None:
        target = f" -> {_short_path(error.filename2)}" if error.filename2 else ""
        return f"{_short_path(error.filename)}{target}: {reason}"
    return reason


def missing_package(error: ImportError) -> str:
    """One line for a missing optional package, naming the extra that installs it."""
    cause = error.__cause__ or error.__context__  # a friendlier ImportError raised from it
    name = (getattr(error, "name", None) or getattr(cause, "name", None) or "").split(".")[0]
    extra = EXTRAS.get(name)
    if extra is None:
        return str(error)
    return (f"this needs the optional package {_PACKAGE_NAMES.get(name, name)}, which is not "
            f"installed: pip install 'wally-cnn[{extra}]'")


def describe_error(error: BaseException) -> str:
    """The one line a failure is reported as (without the ``wally COMMAND: error:`` prefix)."""
    if isinstance(error, CommandError):
        return str(error)
    if isinstance(error, ImportError):
        return missing_package(error)
    if isinstance(error, OSError):
        return describe_os_error(error)
    if isinstance(error, MemoryError):
        detail = f" ({error})" if str(error) else ""
        return (f"out of memory{detail}: try a smaller --batch-size or input size")
    if isinstance(error, RecursionError):
        return f"input nested too deeply ({error})"
    from wally.autograd import AnomalyError
    from wally.data.errors import ChecksumError
    from wally.io.lock import FolderLockedError

    if isinstance(error, ValueError | TypeError | OverflowError | FloatingPointError
                  | ChecksumError | FolderLockedError | AnomalyError):
        return str(error) or type(error).__name__
    return (f"internal error, a bug in wally: {type(error).__name__}: {error} (run again with "
            f"{DEBUG_ENV}=1 for the traceback, and please report it)")


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _report(command: str, error: BaseException) -> int:
    prefix = f"wally {command}" if command else "wally"
    # An error after a Ctrl-C is its consequence (a module left half imported, a cut-off read).
    if isinstance(error, KeyboardInterrupt) or wally_cli.interrupted():
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    try:
        line = describe_error(error)
    except Exception:  # a message that cannot even be formatted (a broken __str__)
        line = f"{type(error).__name__} (its message could not be formatted)"
    print(f"{prefix}: error: {_one_line(line)}", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wally",
        description="Convolutional neural networks on NumPy, behind PyTorch's API.",
        epilog=f"Failures are one line; set {DEBUG_ENV}=1 to see the traceback of one.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    restore = wally_cli.watch()  # None where the console script already watches
    command = ""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        wally_cli.check()  # a Ctrl-C during start-up that an import swallowed
        if args.command is None:
            parser.print_help()
            return 2
        command = args.command
        return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as error:
        if _debug() and not isinstance(error, KeyboardInterrupt | CommandError):
            raise
        return _report(command, error)
    finally:
        if restore is not None:
            restore()


if __name__ == "__main__":
    sys.exit(main())
