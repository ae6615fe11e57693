"""The ``wally`` command's entry point, outside the ``wally`` package on purpose.

Importing anything from ``wally`` first runs ``wally/__init__.py``, which imports NumPy and the
whole library (about half a second). A Ctrl-C in that time would end in a traceback from the
console script; importing from here, it ends in one line and exit code 130, as one during a
command does.

Python turns a Ctrl-C into a ``KeyboardInterrupt`` raised wherever the interpreter happens to
be, and a few places drop it: a weak-reference callback (importlib's module locks use one)
prints "Exception ignored" and goes on, and a compiled extension's module set-up can clear it
without a word (NumPy's ``random`` did, in 1 of 200 tries under load). So the handler installed
here also notes the Ctrl-C, and the command checks the note at its safe points (:func:`check`:
after start-up, after each training epoch); an error that follows a noted Ctrl-C is reported as
the interruption it came from. Only the interpreter's own start-up, before this module runs,
is out of reach: a Ctrl-C there is Python's (a killed process, or ``init_import_site``'s error).

Nothing here imports more than the standard library's ``signal`` and ``sys``, so the handler
is in place a few milliseconds after the interpreter starts.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType

_noted = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _noted
    _noted = True
    raise KeyboardInterrupt


def _unraisable(previous: Callable[[sys.UnraisableHookArgs], object]
                ) -> Callable[[sys.UnraisableHookArgs], None]:
    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if _noted and issubclass(unraisable.exc_type, KeyboardInterrupt):
            return  # the Ctrl-C is noted; the command reports it in one line at its next check
        previous(unraisable)

    return hook


def watch() -> Callable[[], None] | None:
    """Note every Ctrl-C from now on (and still raise ``KeyboardInterrupt``, as Python does).

    Returns a function that puts back the handlers found, or None where nothing was installed:
    outside the main thread (where Python allows no handler), or when one is already watching.
    """
    global _noted
    if signal.getsignal(signal.SIGINT) is _on_sigint:
        return None
    try:
        previous_handler = signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread
        return None
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable(previous_hook)
    _noted = False

    def restore() -> None:
        global _noted
        signal.signal(signal.SIGINT, previous_handler)
        sys.unraisablehook = previous_hook
        _noted = False

    return restore


def interrupted() -> bool:
    """Whether a Ctrl-C came while watching, whether or not its exception got through."""
    return _noted


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C came that something swallowed."""
    if _noted:
        raise KeyboardInterrupt


def main() -> int:
    restore = watch()
    try:
        try:
            from wally.cli import main as run
        except (Exception, KeyboardInterrupt) as error:
            if not (_noted or isinstance(error, KeyboardInterrupt)):
                raise
            sys.stderr.write("wally: interrupted\n")  # or a module a Ctrl-C left half imported
            return 130
        return run()
    finally:
        if restore is not None:
            restore()


if __name__ == "__main__":
    sys.exit(main())
