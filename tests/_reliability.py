"""The reliability tests' figures: printed with the test's output, and gathered into one JSON file.

``docs/RELIABILITY.md`` quotes these figures; ``benchmarks/reliability_report.py`` regenerates
them by running the tests with ``WALLY_RELIABILITY_REPORT`` naming the JSON file to fill. Each
test writes its own section (``report("kill_resume", {...})``), merged into what is there.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

REPORT_ENV = "WALLY_RELIABILITY_REPORT"


def report(section: str, figures: dict[str, Any], capsys: Any = None) -> None:
    """Print ``figures`` and, when ``$WALLY_RELIABILITY_REPORT`` is set, merge them into that
    JSON file under ``section`` (a dict: a later call's keys replace an earlier one's)."""
    line = f"[reliability] {section}: " + json.dumps(figures, sort_keys=True)
    if capsys is not None:
        with capsys.disabled():
            print("\n" + line, file=sys.stderr)
    else:
        print(line)
    target = os.environ.get(REPORT_ENV)
    if not target:
        return
    path = Path(target)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    section_data = data.get(section)
    if not isinstance(section_data, dict):
        section_data = {}
    section_data.update(figures)
    data[section] = section_data
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)
