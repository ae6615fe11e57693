"""The ``wally`` command's entry point, outside the ``wally`` package on purpose.

Importing anything from ``wally`` first runs ``wally/__init__.py``, which imports NumPy and the
whole library (about half a second). A Ctrl-C in that time would end in a traceback from the
console script; importing from here, it ends in one line and exit code 130, as one during a
command does.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from wally.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("wally: interrupted\n")
        return 130
    return run()


if __name__ == "__main__":
    sys.exit(main())
