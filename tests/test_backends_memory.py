"""wally keeps freed blocks for the next training step (``wally.backends.memory``): after a
warm-up, a step's large arrays no longer cost fresh pages from the operating system."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from wally.backends import memory

pytestmark = pytest.mark.skipif(memory._glibc() is None, reason="the C library is not glibc")

STEPS = r"""
import json, resource
import wally
from wally import nn, optim
from wally.backends import memory

wally.set_num_threads(1)
wally.manual_seed(0)
net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                    nn.Linear(400, 10))
opt = optim.SGD(net.parameters(), lr=0.01)
x, y = wally.randn(64, 1, 28, 28), wally.randint(0, 10, (64,))

def step():
    opt.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()

for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults_per_step": faults / 5, "kept": memory.keeps_freed_memory()}))
"""


def _run(env_value: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "WALLY_MALLOC"}
    if env_value is not None:
        env["WALLY_MALLOC"] = env_value
    done = subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_warm_training_step_takes_no_fresh_pages():
    # One step frees and reallocates about 1.5 MB of activations and gradients (1.2 MB for
    # the first layer's output alone): ~400 pages a step if they went back to the system.
    kept = _run(None)
    assert kept["kept"] is True
    assert kept["faults_per_step"] < 20, kept


def test_system_malloc_is_left_alone_and_would_fault():
    # The same steps with glibc's own thresholds: the page faults the default avoids (this
    # also shows the test above can fail).
    system = _run("system")
    assert system["kept"] is False
    assert system["faults_per_step"] > 100, system


def test_an_unknown_setting_warns_and_keeps_the_default():
    done = subprocess.run(
        [sys.executable, "-c", "import wally; from wally.backends import memory; "
         "print(memory.keeps_freed_memory())"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "WALLY_MALLOC": "bogus"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert "WALLY_MALLOC: expected 'keep' or 'system', got 'bogus'" in done.stderr
