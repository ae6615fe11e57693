"""Reading a run's ``metrics.jsonl``: one JSON object per line, as ``wally.train.fit`` writes it.

The file may come from anywhere (a colleague's run, a download), so every line is checked and
memory is bounded: the file must be a regular file of at most :data:`MAX_METRICS_BYTES` bytes
(checked before reading: a FIFO or ``/dev/zero`` is refused at once), a line is read at most
:data:`MAX_LINE_BYTES` at a time, at most :data:`MAX_RECORDS` records are kept, and whatever is
wrong is reported as a :class:`MetricsFormatError` naming the file and the line.
"""

from __future__ import annotations

import json
import os
from typing import Any

from wally.io.files import check_size, open_regular

__all__ = ["MAX_LINE_BYTES", "MAX_METRICS_BYTES", "MAX_RECORDS", "MetricsFormatError",
           "read_metrics"]

MAX_LINE_BYTES = 1 << 20
"""The longest line accepted: ``fit`` writes a few hundred bytes per epoch."""
MAX_METRICS_BYTES = 1 << 26
"""The largest file read (64 MiB: some 200,000 epochs of ``fit``'s records)."""
MAX_RECORDS = 1 << 20
"""The most records read (a record is kept as a dict: about 200 bytes even when empty)."""


class MetricsFormatError(ValueError):
    """A ``metrics.jsonl`` that is not one JSON object per line (the message says which line)."""


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``, one dict per epoch, in file order.

    Blank lines are skipped. A last line that begins like a record (``{``) but has no newline
    and is not valid JSON is an append cut short (the process was killed while writing it) and
    is skipped too; ``fit`` rewrites the file from its checkpoint when the run resumes.

    Raises:
        MetricsFormatError: a line is not UTF-8, not JSON, not a JSON object, nested too deeply
            to parse, or longer than :data:`MAX_LINE_BYTES`; more than :data:`MAX_RECORDS`
            records.
        RefusedFileError: not a regular file, or more than :data:`MAX_METRICS_BYTES` bytes.
        OSError: the file cannot be opened or read.

    >>> read_metrics("runs/lenet-mnist/metrics.jsonl")[-1]["val_accuracy"]  # doctest: +SKIP
    0.87
    """
    name = os.fspath(path)
    records: list[dict[str, Any]] = []
    with open_regular(name, "metrics", MAX_METRICS_BYTES) as file:
        number, total = 0, 0
        while True:
            raw = file.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return records
            total += len(raw)
            check_size(name, "metrics", total, MAX_METRICS_BYTES)  # it grew while being read
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise MetricsFormatError(
                    f"{name}, line {number}: longer than {MAX_LINE_BYTES} bytes, which no "
                    "metrics record is"
                )
            # A record cut short by a kill: the last line, no newline, begun like a record.
            torn_tail = raw.startswith(b"{") and not raw.endswith(b"\n") and not file.peek(1)
            record = _parse_line(name, number, raw, torn_tail)
            if record is not None:
                if len(records) == MAX_RECORDS:
                    raise MetricsFormatError(f"{name}, line {number}: more than {MAX_RECORDS:,} "
                                             "records, which no run writes")
                records.append(record)


def _parse_line(name: str, number: int, raw: bytes, torn_tail: bool) -> dict[str, Any] | None:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        if torn_tail:
            return None
        raise MetricsFormatError(
            f"{name}, line {number}: not UTF-8 text (byte {error.start}: {error.reason})"
        ) from None
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except RecursionError:
        raise MetricsFormatError(f"{name}, line {number}: JSON nested too deeply") from None
    except ValueError as error:
        if torn_tail:
            return None
        raise MetricsFormatError(f"{name}, line {number}: not JSON ({error})") from None
    if not isinstance(record, dict):
        raise MetricsFormatError(
            f"{name}, line {number}: expected a JSON object per line, got "
            f"{type(record).__name__}"
        )
    return record
