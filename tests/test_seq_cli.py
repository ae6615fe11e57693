"""``wally train/eval/predict/summary`` on series: --dataset ucr/<Name>, series files, and the
one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _seq_data import HEADER, MULTI, write_ucr
from wally.cli import main

pytest.importorskip("safetensors", reason="checkpoints need safetensors: pip install safetensors")





@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One quick fcn1d run on a written 2-channel unequal-length dataset."""
    root = tmp_path_factory.mktemp("data")
    cases = MULTI.split("@data\n")[1] * 4
    write_ucr(root, "Multi", MULTI.split("@data\n")[0] + "@data\n" + cases)
    out = tmp_path_factory.mktemp("run")
    code = main(["train", "fcn1d", "--dataset", "ucr/Multi", "--data-dir", str(root),
                 "--epochs", "2", "--batch-size", "4", "--out", str(out)])
    assert code == 0
    return root, out


def test_train_writes_a_series_run(run, capsys):
    _, out = run
    config = json.loads((out / "config.json").read_text())
    settings = config["settings"]
    assert settings["dataset"] == "ucr/Multi" and settings["optimizer"] == "adam"
    assert settings["lr"] == 1e-3 and settings["batch_size"] == 4
    assert config["classes"] == ["a", "b", "c"] and config["input_size"] == [2, 5]
    assert config["model_config"]["kwargs"]["in_channels"] == 2


def test_eval_and_predict_on_series(run, tmp_path, capsys):
    root, out = run
    checkpoint = str(out / "checkpoint.safetensors")
    capsys.readouterr()
    assert main(["eval", checkpoint, "--dataset", "ucr/Multi", "--data-dir", str(root),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["count"] == 12 and 0 <= result["accuracy"] <= 1
    series = root / "UCR" / "Multi" / "Multi_TEST.ts"
    np.save(tmp_path / "one.npy", np.ones((2, 9), np.float32))
    (tmp_path / "one.csv").write_text("1,2,3\n4,5,6\n")
    assert main(["predict", checkpoint, str(series), str(tmp_path / "one.npy"),
                 str(tmp_path / "one.csv"), "--json", "--topk", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == 12 + 2
    assert lines[-2]["length"] == 9 and len(lines[-1]["top"]) == 2
    assert {entry["name"] for line in lines for entry in line["top"]} <= {"a", "b", "c"}


def test_series_errors_are_one_line(run, tmp_path, capsys):
    root, out = run
    checkpoint = str(out / "checkpoint.safetensors")
    np.save(tmp_path / "wrong.npy", np.ones((3, 9), np.float32))
    (tmp_path / "bad.ts").write_text(HEADER + "1,2,x,4:up\n")
    cases = [
        (["predict", checkpoint, str(tmp_path / "wrong.npy")],
         "wrong.npy: series 0 has 3 channels, the model expects 2"),
        (["predict", checkpoint, str(tmp_path / "bad.ts")],
         "bad.ts, line 10: case 0, dimension 0, value 2: expected a number, got 'x'"),
        (["predict", checkpoint, str(tmp_path / "x.png")], None),
        (["train", "lenet", "--dataset", "ucr/Multi", "--data-dir", str(root)],
         "lenet is an image model; ucr/Multi holds series"),
        (["train", "tcn", "--dataset", "digits"], "tcn is a series model"),
        (["train", "fcn1d", "--dataset", "ucr/../x"], "expected ucr/<Name>"),
        (["eval", checkpoint, "--dataset", "ucr/Nope", "--data-dir", str(root)],
         "Nope_TEST.ts not found"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse's own errors
            code = stop.code
        err = capsys.readouterr().err
        assert code != 0, argv
        assert "Traceback" not in err
        if message is not None:
            assert message in err, (argv, err)


def test_malformed_training_file_is_one_line(tmp_path, capsys):
    write_ucr(tmp_path, "Broken", HEADER + "1,2,3:up\n")
    code = main(["train", "fcn1d", "--dataset", "ucr/Broken", "--data-dir", str(tmp_path),
                 "--epochs", "1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "Broken_TRAIN.ts, line 10: case 0: length 3, expected 4 (@seriesLength)" in err


def test_summary_shows_time_field_and_causality(capsys):
    assert main(["summary", "tcn", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert ("output step t sees 253 input steps, t-252 … t: causal (no output step sees a "
            "later input step)") in out
    assert main(["summary", "fcn1d", "--input-size", "1", "12", "29", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "(1, 12, 29)" in out and "t-6 … t+7: not causal (it sees 7 steps ahead)" in out
