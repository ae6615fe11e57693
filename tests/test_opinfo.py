"""PyTorch's OpInfo and ModuleInfo samples, run through wally (see tests/opinfo_harness.py).

Each op or module wally offers under PyTorch's name is one test: it fails on a sample that
differs from torch and is not listed in tests/opinfo_differences.json, and on a listed sample
that now passes (so the list stays true). The last test checks the overall pass rate.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it

import opinfo_harness as harness  # noqa: E402

CASES = {case.key: case for case in harness.all_cases()}
DIFFERENCES = harness.load_differences()
REPORTS: dict[str, harness.OpReport] = {}


def _report(key: str) -> harness.OpReport:
    if key not in REPORTS:
        REPORTS[key] = harness.run_case(CASES[key])
    return REPORTS[key]


def test_discovers_the_ops_wally_offers() -> None:
    names = {c.opinfo.name for c in CASES.values() if isinstance(c, harness.OpCase)}
    # a few ops that wally has had from the start, under each naming scheme
    for name in ("add", "matmul", "nn.functional.conv2d", "nn.functional.max_pool2d", "T"):
        assert name in names
    modules = {c.info.module_cls.__name__ for c in CASES.values()
               if isinstance(c, harness.ModuleCase)}
    assert {"Conv2d", "BatchNorm2d", "Linear"} <= modules


def test_every_listed_difference_names_a_covered_op() -> None:
    unknown = sorted({key for key, _, _ in DIFFERENCES} - set(CASES))
    assert not unknown, f"opinfo_differences.json lists ops that are not covered: {unknown}"
    assert all(e["reason"] and not e["reason"].startswith("TODO") for e in DIFFERENCES.values())


def _problems(report: harness.OpReport, differences: dict) -> list[str]:
    """Failures not listed in the differences file, and listed samples that pass now."""
    unexpected = [o for o in report.outcomes
                  if not o.passed and harness.failure_key(o) not in differences]
    now_passing = [o for o in report.outcomes
                   if o.passed and harness.failure_key(o) in differences]
    lines = [f"{o.dtype} sample {o.index} [{o.description}]: {o.message}" for o in unexpected]
    lines += [f"{o.dtype} sample {o.index} [{o.description}] passes now: remove it from "
              f"opinfo_differences.json" for o in now_passing]
    return lines


@pytest.mark.parametrize("key", sorted(CASES))
def test_samples_match_torch(key: str) -> None:
    lines = _problems(_report(key), DIFFERENCES)
    assert not lines, f"{key}:\n" + "\n".join(lines)


def test_the_differences_check_catches_both_directions() -> None:
    report = _report("neg:fn")
    passing = report.outcomes[0]
    assert passing.passed
    listed = {harness.failure_key(passing): {"reason": "pretend"}}
    assert any("passes now" in line for line in _problems(report, listed))
    broken = harness.OpReport("neg:fn", [harness.Outcome("neg:fn", "float32", 99, "d", False,
                                                         "boom")])
    assert any("boom" in line for line in _problems(broken, {}))
    assert not _problems(broken, {("neg:fn", "float32", 99): {"reason": "known"}})


def test_pass_rate() -> None:
    outcomes = [o for key in sorted(CASES) for o in _report(key).outcomes]
    passed = sum(o.passed for o in outcomes)
    assert outcomes
    rate = passed / len(outcomes)
    print(f"\nOpInfo+ModuleInfo: {len(CASES)} entries, {len(outcomes)} samples, "
          f"{passed} passed ({100 * rate:.2f} %)")
    assert rate >= 0.995, f"only {100 * rate:.2f} % of {len(outcomes)} samples pass"
