"""The ``wally train``, ``wally eval`` and ``wally predict`` commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wally.cli import main

pytest.importorskip("safetensors", reason="checkpoints need safetensors: pip install safetensors")

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--dataset", "synthetic", "--limit", "192", "--batch-size", "64", "--optimizer", "adam"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One quick synthetic run, shared by the tests that only read its files."""
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "lenet_modern", *QUICK, "--epochs", "2", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("command", ["train", "eval", "predict"])
def test_help_exits_zero(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: wally {command}" in capsys.readouterr().out


def test_train_writes_the_four_files_and_a_final_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "lenet_modern", *QUICK, "--epochs", "2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.safetensors", "config.json", "curves.png", "metrics.jsonl"]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "examples_per_s",
            "lr"} <= set(metrics[0])
    config = json.loads((out / "config.json").read_text())
    assert config["model_config"]["name"] == "lenet_modern"
    assert config["input_size"] == [1, 28, 28] and config["settings"]["epochs"] == 2
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("test accuracy ") and "examples/s" in lines[-1]
    assert any(line.startswith("epoch 2/2") for line in lines)


def test_resume_continues_the_run_and_refuses_other_settings(trained_run, tmp_path, capsys):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    assert main(["train", "lenet_modern", *QUICK, "--epochs", "3", "--out", str(out),
                 "--resume"]) == 0
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]

    capsys.readouterr()
    assert main(["train", "lenet_modern", *QUICK, "--epochs", "3", "--lr", "0.5",
                 "--out", str(out), "--resume"]) == 1
    assert "--lr 0.001 (given 0.5)" in capsys.readouterr().err
    assert main(["train", "lenet_modern", *QUICK, "--epochs", "3", "--out", str(out)]) == 1
    assert "pass --resume" in capsys.readouterr().err


def test_eval_reports_accuracy(trained_run, capsys):
    checkpoint = str(trained_run / "checkpoint.safetensors")
    assert main(["eval", checkpoint, "--dataset", "synthetic", "--limit", "100",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 100 and 0 <= result["accuracy"] <= 1
    assert main(["eval", checkpoint, "--dataset", "synthetic", "--limit", "100"]) == 0
    assert capsys.readouterr().out.startswith("test accuracy ")


def test_predict_prints_top_k_classes(trained_run, tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image", reason="predict reads images with Pillow")
    picture = np.zeros((56, 40, 3), dtype=np.uint8)
    picture[10:46, 18:22] = 255
    path = tmp_path / "stroke.png"
    Image.fromarray(picture).save(path)
    checkpoint = str(trained_run / "checkpoint.safetensors")
    assert main(["predict", checkpoint, str(path), str(path), "--topk", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(path) and len(lines) == 8
    probabilities = [float(line.split()[1]) for line in lines[1:4]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(line.split()[2] == "figure" for line in lines[1:4])

    assert main(["predict", checkpoint, str(path), "--topk", "20", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["top"]
    assert len(top) == 10 and sum(t["probability"] for t in top) == pytest.approx(1, abs=1e-5)


def test_unknown_model_and_dataset_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "lenet9", "--dataset", "synthetic"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown model 'lenet9'" in err and "lenet_modern" in err and "resnet18" in err
    for command in (["train", "lenet"], ["eval", "x.safetensors"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--dataset", "imagenet"])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "invalid choice: 'imagenet'" in err and "fashion-mnist" in err


def test_missing_dataset_files_are_a_one_line_failure(tmp_path, capsys):
    code = main(["train", "lenet", "--dataset", "mnist", "--data-dir", str(tmp_path / "data"),
                 "--out", str(tmp_path / "run"), "--epochs", "1"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("wally train: error: ") and "MNIST" in err


def test_bad_checkpoints_fail_with_exit_code_1(tmp_path, capsys):
    import pickle

    pickled = tmp_path / "model.pt"
    pickled.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    assert main(["eval", str(pickled), "--dataset", "synthetic"]) == 1
    assert "never unpickles" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.safetensors"), "x.png"]) == 1
    assert "no checkpoint at" in capsys.readouterr().err


def test_the_installed_command_exits_1_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "wally", "eval", str(tmp_path / "none.safetensors"),
         "--dataset", "synthetic"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "no checkpoint at" in result.stderr
