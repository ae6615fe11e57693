"""``wally.alias_torch()`` and ``wally run``: PyTorch code runs unchanged, in a fresh
interpreter each time (the switch changes ``sys.modules`` for good), where the real torch must
never be imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

# Appended to every script: fails if any module of the real torch or torchvision was loaded.
NO_REAL_TORCH = textwrap.dedent("""
    import sys as _sys
    _real = sorted(name for name, module in _sys.modules.items()
                   if name.split(".")[0] in ("torch", "torchvision")
                   and not getattr(module, "__name__", "").startswith("wally"))
    assert not _real, f"the real torch was imported: {_real}"
""")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("WALLY_DEBUG", None)
    return env


def python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code) + NO_REAL_TORCH, *args],
                          capture_output=True, text=True, env=_env(), cwd=cwd, timeout=120)


def wally_run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wally", "run", *args], capture_output=True,
                          text=True, env=_env(), cwd=cwd, timeout=120)


def test_every_import_form_resolves_to_wally():
    result = python("""
        import wally
        wally.alias_torch()
        wally.alias_torch()  # idempotent
        import torch
        import torch.nn as nn
        from torch.nn import functional as F
        import torch.nn.init
        import torch.optim
        import torch.optim.lr_scheduler
        from torch.optim import lr_scheduler
        import torch.utils.data
        from torch.utils import data
        from torch.utils.data import DataLoader, TensorDataset
        import torch.onnx
        import torch.autograd
        from torch.autograd import grad
        import torch.utils.data.sampler  # below a mapped name: wally's submodule of that path
        assert torch is wally and nn is wally.nn and F is wally.nn.functional
        assert torch.nn.init is wally.nn.init and torch.optim is wally.optim
        assert lr_scheduler is wally.optim.lr_scheduler
        assert sys.modules["torch.utils.data"] is wally.data
        assert DataLoader is wally.data.DataLoader and data.TensorDataset is TensorDataset
        assert torch.onnx is wally.onnx and grad is wally.autograd.grad
        assert sys.modules["torch.utils.data.sampler"] is wally.data.sampler
        net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
        y = net(torch.rand(size=(1, 1, 8, 8)))
        print(type(y).__module__, y.shape, y.dtype)
    """.replace("import wally\n", "import sys, wally\n", 1))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "wally.tensor torch.Size([1, 2, 6, 6]) torch.float32"


def test_unmapped_names_raise_module_not_found():
    result = python("""
        import wally
        wally.alias_torch()
        for name in ("torch.distributions", "torch.nn.quantized", "torchaudio_is_not_ours"):
            try:
                __import__(name)
            except ModuleNotFoundError as error:
                print(name, "->", error)
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("torch.distributions -> No module named 'torch.distributions': "
                               "wally has no counterpart of torch.distributions")
    assert "wally has no counterpart of torch.nn.quantized" in lines[1]
    assert "wally" not in lines[2]  # names outside torch/torchvision are left alone


def test_printed_forms_outside_and_under_the_switch():
    result = python("""
        import wally
        x = wally.zeros(1, 1, 8, 8, dtype=wally.float64)
        print(x.shape, x.dtype, repr(x[0, 0, 0, :2]))
        wally.alias_torch()
        import torch
        print(x.shape, x.dtype, repr(x[0, 0, 0, :2]), torch.int64)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        "wally.Size([1, 1, 8, 8]) wally.float64 tensor([0., 0.], dtype=wally.float64)",
        "torch.Size([1, 1, 8, 8]) torch.float64 tensor([0., 0.], dtype=torch.float64) "
        "torch.int64",
    ]


def test_printed_forms_evaluate_back_outside_the_switch():
    result = python("""
        import wally
        x = wally.ones(2, 3, dtype=wally.int32)
        assert eval(repr(x.shape)) == x.shape and eval(repr(x.dtype)) is x.dtype
        print("ok")
    """)
    assert result.returncode == 0, result.stderr


def test_refuses_when_the_real_torch_is_imported():
    pytest.importorskip("torch")
    code = textwrap.dedent("""
        import torch
        import wally
        try:
            wally.alias_torch()
        except ImportError as error:
            print(type(error).__name__, error)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("AliasError wally.alias_torch(): the real torch is already "
                                    "imported (from ")


def test_torchvision_maps_to_wally_vision():
    probe = python("import importlib.util, sys; "
                   "sys.exit(importlib.util.find_spec('wally.vision') is None)")
    if probe.returncode != 0:
        result = python("""
            import wally
            wally.alias_torch()
            try:
                import torchvision
            except ModuleNotFoundError as error:
                print(error)
        """)
        assert "its wally counterpart wally.vision is not part of" in result.stdout
        pytest.skip("wally.vision is not in this checkout yet")
    result = python("""
        import wally
        wally.alias_torch()
        import torchvision
        from torchvision import transforms, datasets, utils, models
        assert torchvision is wally.vision and transforms is wally.vision.transforms
        assert datasets is wally.vision.datasets and models is wally.vision.models
        print("ok")
    """)
    assert result.returncode == 0, result.stderr


# ----- wally run ----------------------------------------------------------------------------

SCRIPT = """
import sys
import torch
from torch import nn
print("argv", sys.argv)
print("name", __name__, "path0", sys.path[0] == __import__("os").path.dirname(__file__))
print("shape", nn.Linear(3, 2)(torch.ones(size=(4, 3))).shape)
if len(sys.argv) > 1 and sys.argv[1] == "exit":
    sys.exit(int(sys.argv[2]))
if len(sys.argv) > 1 and sys.argv[1] == "raise":
    import helper
    helper.fail()
""" + NO_REAL_TORCH


@pytest.fixture
def project(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    (tmp_path / "helper.py").write_text("def fail():\n    raise KeyError('from the script')\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "main.py").write_text(SCRIPT)
    return tmp_path


def test_run_script_sets_argv_and_path_as_python(project):
    result = wally_run("train.py", "--epochs", "3", "--help", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "argv ['train.py', '--epochs', '3', '--help']", "name __main__ path0 True",
        "shape torch.Size([4, 2])"]


def test_run_module_as_python_dash_m(project):
    result = wally_run("-m", "pkg.main", "x", cwd=project)
    assert result.returncode == 0, result.stderr
    argv = f"argv [{str(project / 'pkg' / 'main.py')!r}, 'x']"
    assert result.stdout.splitlines()[0] == argv


def test_run_exit_codes_follow_python(project):
    assert wally_run("train.py", "exit", "7", cwd=project).returncode == 7
    assert wally_run("train.py", "exit", "0", cwd=project).returncode == 0


def test_run_prints_the_scripts_traceback(project):
    result = wally_run("train.py", "raise", cwd=project)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'from the script'"
    assert f'File "{project / "train.py"}"' in lines[1]
    assert "runpy" not in result.stderr and "wally/cli" not in result.stderr
    assert 'helper.py", line 2, in fail' in result.stderr


def test_run_refusals_are_one_line(project):
    missing = wally_run("nope.py", cwd=project)
    assert missing.returncode == 2
    assert missing.stderr == "wally run: error: can't open file 'nope.py': no such file\n"
    nothing = wally_run(cwd=project)
    assert nothing.returncode == 2 and nothing.stderr.count("\n") == 1
    module = wally_run("-m", "no_such_pkg.mod", cwd=project)
    assert module.returncode == 1
    assert module.stderr == "wally run: error: no module named 'no_such_pkg.mod'\n"


def test_d2l_lenet_cell_prints_as_the_book():
    # The LeNet cell of d2l's chapter 7.6 (PyTorch tab), unchanged but for the switch.
    result = python("""
        import wally
        wally.alias_torch()
        import torch
        from torch import nn

        net = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
            nn.Linear(120, 84), nn.Sigmoid(),
            nn.Linear(84, 10))
        X = torch.rand(size=(1, 1, 28, 28), dtype=torch.float32)
        for layer in net:
            X = layer(X)
            print(layer.__class__.__name__, 'output shape: \\t', X.shape)
        with torch.inference_mode():
            print(net(torch.zeros(1, 1, 28, 28)).requires_grad)
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Conv2d output shape: \t torch.Size([1, 6, 28, 28])"
    assert lines[6] == "Flatten output shape: \t torch.Size([1, 400])"
    assert lines[-2] == "Linear output shape: \t torch.Size([1, 10])"
    assert lines[-1] == "False"


def test_onnx_is_reachable_after_import_wally():
    result = python("""
        import wally
        print(callable(wally.onnx.export), callable(wally.save), callable(wally.load))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "True True True"
