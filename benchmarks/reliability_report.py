"""Regenerate the figures of docs/RELIABILITY.md from the reliability tests' own counts.

Runs the reliability test files with ``WALLY_RELIABILITY_REPORT`` naming a JSON file, into
which each test writes what it counted (kills survived, inputs fuzzed per parser, bad inputs per
layer, anomalies caught, pickle files refused), then rewrites the table between the
``reliability-figures`` markers of docs/RELIABILITY.md (and the per-layer table between the
``bad-inputs`` markers) from that file.

    python benchmarks/reliability_report.py                 # run the tests, rewrite the doc
    python benchmarks/reliability_report.py --json out.json # keep the raw counts too
    python benchmarks/reliability_report.py --from out.json # rewrite the doc without running
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "RELIABILITY.md"
TESTS = ["tests/test_kill_resume.py", "tests/test_fuzz_parsers.py", "tests/test_bad_inputs.py",
         "tests/test_numerics.py", "tests/test_no_pickle.py", "tests/test_reproducibility.py",
         "tests/test_versions.py", "tests/test_hostile_files.py", "tests/test_hostile_cli.py",
         "tests/test_hostile_layers.py"]
HOSTILE = {"hostile_files": ("hostile files (images, datasets, archives, FIFOs, devices)",
                             "tests/test_hostile_files.py"),
           "hostile_cli": ("hostile command lines, checkpoints and output folders",
                           "tests/test_hostile_cli.py"),
           "hostile_layers": ("hostile layer inputs (huge, empty, integer, byte-swapped)",
                              "tests/test_hostile_layers.py")}
PARSERS = {"idx": ("IDX (`wally.data.read_idx`, raw and gzipped)", "idx"),
           "cifar": ("CIFAR-10 binary (`read_cifar_binary`)", "cifar"),
           "image": ("image files through Pillow (`wally predict`'s `read_image_file`)",
                     "image"),
           "checkpoint": ("checkpoints and their JSON metadata (`wally.io.load_checkpoint`)",
                          "checkpoint"),
           "metrics": ("`metrics.jsonl` (`wally.io.metrics.read_metrics`)", "metrics")}


def run_tests(report: Path) -> float:
    env = dict(os.environ, WALLY_RELIABILITY_REPORT=str(report))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *TESTS],
                            cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(f"reliability_report: the tests failed (exit {result.returncode}); the "
                 "figures are not rewritten")
    return time.perf_counter() - start


def _pytest(target: str) -> str:
    return f"`python -m pytest -q {target}`"


def figures_table(data: dict[str, Any]) -> str:
    rows = ["| figure | count | reproduce with |", "|---|---:|---|"]
    kills = data.get("kill_resume", {})
    if kills:
        inside, random_moments = (kills["kills_inside_checkpoint_write"],
                                  kills["kills_at_random_moments"])
        rows.append(
            f"| SIGKILLs survived by `wally train --resume` ({inside} inside a checkpoint "
            f"write, {random_moments} at random moments; "
            f"{kills['interrupted_runs_compared']} interrupted runs compared bit for bit with "
            f"uninterrupted ones) | **{kills['kills_survived']}** | "
            f"{_pytest('tests/test_kill_resume.py')} |")
    fuzz = data.get("fuzz", {})
    for key, (label, selector) in PARSERS.items():
        count = fuzz.get("inputs_per_parser", {}).get(key)
        if count is not None:
            rows.append(f"| inputs fuzzed: {label} | **{count:,}** | "
                        f"{_pytest(f'tests/test_fuzz_parsers.py -k {selector}')} |")
    bad = data.get("bad_inputs", {})
    if bad:
        gaps = len(bad.get("known_gaps", []))
        rows.append(f"| bad inputs tried over {bad['layers']} ops and layers "
                    f"({bad['refused_as_documented']} refused with a message naming the op, the "
                    f"expected and the actual value; {gaps} known gaps, marked xfail) | "
                    f"**{bad['tried']}** | {_pytest('tests/test_bad_inputs.py')} |")
    anomalies = data.get("anomalies", {})
    if anomalies:
        rows.append(f"| anomalies caught by `detect_anomaly`, op named "
                    f"({anomalies['caught_forward']} in the forward pass, "
                    f"{anomalies['caught_backward']} in the backward pass; ops: "
                    f"{', '.join(anomalies['ops'])}) | **{anomalies['caught']}** | "
                    f"{_pytest('tests/test_numerics.py -k detect_anomaly')} |")
    versions = data.get("versions", {})
    if versions:
        hidden = versions["hidden by PyTorch's .data, refused"]
        rows.append(f"| in-place writes tried against autograd's version check ("
                    f"{versions['refused']} refused, {versions['true gradient']} with the true "
                    f"gradient, none wrong; {hidden} writes through `.data` refused that PyTorch "
                    f"misses, {versions['of those, wrong in PyTorch']} of them with a wrong "
                    f"gradient in PyTorch) | **{versions['cells']}** | "
                    f"{_pytest('tests/test_versions.py -k grid')} |")
    for section, (label, target) in HOSTILE.items():
        hostile = data.get(section, {})
        if hostile:
            classes = hostile.get("cases_per_class") or {
                key: value for key, value in hostile.items()
                if key != "cases" and isinstance(value, int)}
            rows.append(f"| {label}, each with its exact outcome asserted ({len(classes)} "
                        f"classes) | **{hostile['cases']}** | {_pytest(target)} |")
    pickles = data.get("no_pickle", {})
    if pickles:
        rows.append(f"| pickle-bearing files refused, none run ({len(pickles['loaders'])} "
                    f"loaders x {len(pickles['pickle_kinds'])} kinds of file; "
                    f"{pickles['source_files_scanned']} source files scanned for unpickling) | "
                    f"**{pickles['pickle_files_refused']}** | "
                    f"{_pytest('tests/test_no_pickle.py')} |")
    return "\n".join(rows)


def bad_inputs_table(data: dict[str, Any]) -> str:
    per_layer = data.get("bad_inputs", {}).get("per_layer", {})
    rows = ["| op or layer | bad inputs tried |", "|---|---:|"]
    rows += [f"| `{layer}` | {count} |" for layer, count in sorted(per_layer.items(),
                                                                  key=lambda kv: kv[0].lower())]
    return "\n".join(rows)


def fuzz_detail(data: dict[str, Any]) -> str:
    fuzz = data.get("fuzz", {})
    if not fuzz:
        return ""
    rows = ["| test | inputs |", "|---|---:|"]
    rows += [f"| `{name}` | {count:,} |"
             for name, count in sorted(fuzz.get("inputs_per_test", {}).items())]
    peaks = fuzz.get("peak_traced_bytes_per_parser", {})
    rows.append("")
    rows.append("Peak memory traced in one parser call (tracemalloc), against the bound of "
                f"{fuzz.get('memory_bound_bytes', 0) / 2**20:.0f} MiB: "
                + ", ".join(f"{key} {value / 2**20:.1f} MiB" for key, value in sorted(
                    peaks.items())) + ".")
    return "\n".join(rows)


def replace_between(text: str, marker: str, body: str) -> str:
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"reliability_report: {DOC} lacks the markers {start} ... {end}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None,
                        help="where to keep the tests' counts (default: a temporary file)")
    parser.add_argument("--from", dest="source", type=Path, default=None,
                        help="rewrite the doc from this JSON file without running the tests")
    parser.add_argument("--doc", type=Path, default=DOC, help="the document to rewrite")
    args = parser.parse_args(argv)

    seconds = None
    if args.source is not None:
        report = args.source
    else:
        report = args.json or Path(tempfile.mkdtemp()) / "reliability.json"
        report.unlink(missing_ok=True)
        seconds = run_tests(report)
    data = json.loads(report.read_text(encoding="utf-8"))
    text = args.doc.read_text(encoding="utf-8")
    stamp = (f"Measured on {platform.system()} {platform.machine()}, Python "
             f"{platform.python_version()}, {os.cpu_count()} CPUs"
             + (f"; the test files took {seconds:.0f} s." if seconds is not None else "."))
    text = replace_between(text, "reliability-figures", figures_table(data) + "\n\n" + stamp)
    text = replace_between(text, "bad-inputs", bad_inputs_table(data))
    text = replace_between(text, "fuzz-detail", fuzz_detail(data))
    args.doc.write_text(text, encoding="utf-8")
    print(f"reliability_report: rewrote the figures of {args.doc} from {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
