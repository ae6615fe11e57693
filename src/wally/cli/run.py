"""``wally run``: run a PyTorch script (or module) unchanged, with wally standing in for torch.

``wally run train.py --epochs 3`` is ``python train.py --epochs 3`` after
:func:`wally.alias_torch`: ``sys.argv``, ``sys.path[0]`` and ``__name__ == "__main__"`` are set as
Python sets them, an exception in the script prints Python's usual traceback (it is the user's
code, so its frames are what matter) and the exit code is Python's (the script's
``sys.exit`` code, 1 after an uncaught exception, 130 after Ctrl-C). What wally itself refuses
(a missing script, the real torch already imported) is one line, as for every command.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback
from types import TracebackType
from typing import Any

from wally.cli import CommandError, printable


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="run a PyTorch script unchanged on wally",
        description="Run SCRIPT (or -m MODULE) as python would, with 'import torch' and "
                    "'import torchvision' giving wally (wally.alias_torch()). Everything after "
                    "SCRIPT or MODULE is passed to it in sys.argv.",
    )
    parser.add_argument("-m", dest="module", metavar="MODULE", default=None,
                        help="run a module as 'python -m MODULE' does")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS...]",
                        help="the script, then its own arguments")
    parser.set_defaults(func=run)


# The modules whose frames a traceback of the user's script leaves out: this runner, runpy, and
# the import finder of the switch (Python hides its own import machinery the same way).
_HIDDEN_MODULES = {__name__, "runpy", "wally._alias"}


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` without the frames of :data:`_HIDDEN_MODULES`: the traceback ``python SCRIPT``
    would print."""
    frames = []
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") not in _HIDDEN_MODULES:
            frames.append(tb)
        tb = tb.tb_next
    kept = None
    for frame in reversed(frames):
        kept = TracebackType(kept, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return kept


def _execute(args: argparse.Namespace) -> None:
    """Set ``sys.argv`` and ``sys.path[0]`` as Python would, then run the script or module."""
    if args.module is not None:
        sys.argv = [args.module, *args.args]  # runpy puts the module's file in argv[0]
        sys.path[0:1] = [os.getcwd()]
        runpy.run_module(args.module, run_name="__main__", alter_sys=True)
        return
    script, *rest = args.args
    sys.argv = [script, *rest]
    sys.path[0:1] = [os.path.dirname(os.path.realpath(script))]
    _run_script(script)


def _run_script(script: str) -> None:
    """Execute ``script`` as the ``__main__`` module, as ``python SCRIPT`` does: ``__file__`` is
    its absolute path while ``sys.argv[0]`` stays as typed (``runpy.run_path`` would put the
    path it was given in both)."""
    import importlib.machinery
    import io
    import types

    path = os.path.abspath(script)
    with io.open_code(path) as file:
        code = compile(file.read(), path, "exec")
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    main.__dict__["__cached__"] = None
    sys.modules["__main__"] = main
    exec(code, main.__dict__)  # noqa: S102 - running the user's script is this command's job


def run(args: argparse.Namespace) -> int:
    import importlib.util

    from wally._alias import AliasError, alias_torch

    if args.module is None:
        problem = None
        if not args.args:
            problem = "expected a SCRIPT to run (or -m MODULE)"
        elif not os.path.isfile(args.args[0]):
            reason = "is a directory" if os.path.isdir(args.args[0]) else "no such file"
            problem = f"can't open file {printable(args.args[0])!r}: {reason}"
        if problem is not None:  # exit code 2, as python's for a script it cannot open
            print(f"wally run: error: {problem}", file=sys.stderr)
            return 2
    try:
        alias_torch()
    except AliasError as error:
        raise CommandError(str(error)) from None
    if args.module is not None:
        try:
            found = importlib.util.find_spec(args.module)
        except ModuleNotFoundError as error:  # a parent package is missing
            if error.name is None or not args.module.startswith(error.name):
                raise
            found = None
        except ValueError:  # an empty or relative name
            found = None
        if found is None:
            raise CommandError(f"no module named {printable(args.module)!r}")
    try:
        _execute(args)
    except SystemExit:
        raise  # the script's own exit code, handled by Python as for `python SCRIPT`
    except KeyboardInterrupt as error:
        traceback.print_exception(type(error), error, _user_frames(error.__traceback__))
        return 130
    except BaseException as error:  # noqa: BLE001 - the user's code: Python's own report
        traceback.print_exception(type(error), error, _user_frames(error.__traceback__))
        sys.stderr.flush()
        return 1
    return 0
