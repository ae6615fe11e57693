"""wally.distributed: a world of one without mpiexec, the DistributedSampler against PyTorch's,
and, where Open MPI and mpi4py are installed, two ranks on this machine: data-parallel training
matches one process on the same global batches, and a rank that dies ends the job promptly."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import wally
import wally.distributed as dist
from wally import nn
from wally.data import DataLoader, TensorDataset
from wally.distributed import DistributedSampler, comm

_LAUNCH_TIMEOUT = 60  # seconds for one mpiexec run; each takes 1 to 5 s here


# ----- a world of one --------------------------------------------------------------------------
def test_without_a_launcher_the_world_is_one_and_mpi_is_never_initialised():
    code = ("import sys, wally.distributed as d; "
            "print(d.world_size(), d.rank(), d.is_initialized(), d.is_main_process(), "
            "'mpi4py.MPI' in sys.modules)")
    env = _clean_env()
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "0", "True", "True", "False"]


def test_collectives_are_no_ops_in_a_world_of_one():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    dist.broadcast_parameters(model)
    model(wally.randn(4, 3)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    dist.average_gradients(model)
    dist.after_backward(model)
    dist.barrier()
    assert all(p.grad is grad for p, grad in zip(model.parameters(), grads))  # untouched
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") or "running" in key:
            continue
        np.testing.assert_array_equal(value.numpy(), before[key])
    assert dist.all_reduce_sum([1.5, 2]) == [1.5, 2.0]
    assert dist.any_process(True) and not dist.any_process(False)


def test_broadcast_parameters_rejects_a_root_that_is_not_a_rank():
    with pytest.raises(ValueError, match=r"broadcast_parameters: root must be a rank in \[0, 0\]"):
        dist.broadcast_parameters(nn.Linear(2, 2), root=1)


def test_launched_by_mpiexec_without_mpi4py_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(comm, "_world", None)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # makes `from mpi4py import MPI` fail
    with pytest.raises(RuntimeError, match=r"pip install 'wally-cnn\[mpi\]'"):
        dist.init()
    monkeypatch.setenv("WALLY_DISTRIBUTED", "0")  # the escape hatch: train alone anyway
    dist.init()
    assert dist.world_size() == 1


def test_the_timeout_must_be_a_positive_number(monkeypatch):
    monkeypatch.setattr(comm, "_world", None)
    monkeypatch.setenv("WALLY_DISTRIBUTED_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="WALLY_DISTRIBUTED_TIMEOUT must be a number"):
        dist.init()
    with pytest.raises(ValueError, match="positive number of seconds, got -1"):
        dist.init(timeout=-1)


# ----- DistributedSampler ----------------------------------------------------------------------
def shards(sampler_type, size, replicas, **kwargs):
    return [list(sampler_type(range(size), num_replicas=replicas, rank=r, **kwargs))
            for r in range(replicas)]


@pytest.mark.parametrize("size, replicas, drop_last",
                         itertools.product([0, 1, 5, 10, 12, 13], [1, 2, 3, 4, 7], [False, True]))
def test_sampler_matches_pytorch_without_shuffling(torch, size, replicas, drop_last):
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    ours = shards(DistributedSampler, size, replicas, shuffle=False, drop_last=drop_last)
    theirs = shards(TorchSampler, size, replicas, shuffle=False, drop_last=drop_last)
    assert ours == theirs
    for r in range(replicas):
        mine = DistributedSampler(range(size), replicas, r, drop_last=drop_last)
        torch_one = TorchSampler(range(size), replicas, r, drop_last=drop_last)
        assert (len(mine), mine.num_samples, mine.total_size) == (
            len(torch_one), torch_one.num_samples, torch_one.total_size)


def test_sampler_shards_and_pads_by_hand():
    # 10 indices over 4 ranks: padded to 12 by repeating 0 and 1, then every 4th from the rank.
    assert shards(DistributedSampler, 10, 4, shuffle=False) == [[0, 4, 8], [1, 5, 9],
                                                                 [2, 6, 0], [3, 7, 1]]
    # drop_last: 10 cut to 8.
    assert shards(DistributedSampler, 10, 4, shuffle=False, drop_last=True) == [
        [0, 4], [1, 5], [2, 6], [3, 7]]
    # Fewer samples than ranks: the permutation repeats as often as needed.
    assert shards(DistributedSampler, 2, 5, shuffle=False) == [[0], [1], [0], [1], [0]]


@pytest.mark.parametrize("size, replicas", [(10, 4), (12, 3), (7, 2), (3, 5)])
def test_shuffled_shards_cover_one_permutation_padded_from_its_start(size, replicas):
    parts = shards(DistributedSampler, size, replicas, seed=5)
    num_samples = -(-size // replicas)
    assert all(len(part) == num_samples for part in parts)
    # Interleaving the shards gives back the padded permutation: a permutation, then its start.
    padded = [parts[i % replicas][i // replicas] for i in range(num_samples * replicas)]
    assert sorted(padded[:size]) == list(range(size))
    assert padded[size:] == (padded[:size] * replicas)[:len(padded) - size]


def test_set_epoch_reshuffles_the_same_way_on_every_rank():
    samplers = [DistributedSampler(range(100), num_replicas=2, rank=r, seed=3) for r in (0, 1)]
    epoch0 = [list(s) for s in samplers]
    assert [list(s) for s in samplers] == epoch0  # without set_epoch the order repeats
    for s in samplers:
        s.set_epoch(1)
    epoch1 = [list(s) for s in samplers]
    assert epoch1 != epoch0
    assert sorted(epoch1[0] + epoch1[1]) == list(range(100))  # disjoint, complete
    again = DistributedSampler(range(100), num_replicas=2, rank=1, seed=3)
    again.set_epoch(1)
    assert list(again) == epoch1[1]
    other_seed = DistributedSampler(range(100), num_replicas=2, rank=1, seed=4)
    other_seed.set_epoch(0)  # seed 4, epoch 0 is not seed 3, epoch 1
    assert list(other_seed) != epoch1[1]


def test_sampler_defaults_to_this_world_and_checks_its_arguments():
    sampler = DistributedSampler(range(5))
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (1, 0, 5)
    assert sorted(sampler) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"invalid rank 2, rank should be in the interval \[0, 1"):
        DistributedSampler(range(5), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be at least 1, got 0"):
        DistributedSampler(range(5), num_replicas=0, rank=0)
    with pytest.raises(TypeError, match="must have a len"):
        DistributedSampler(iter(range(5)))


def test_distributed_loader_alone_is_the_plain_shuffled_loader():
    data = TensorDataset(wally.arange(20), wally.arange(20) * 2)
    ours = dist.distributed_loader(data, batch_size=6, seed=4)
    plain = DataLoader(data, batch_size=6, shuffle=True, generator=4)
    for epoch in (1, 2):
        dist.set_epoch(ours, epoch)
        assert [x.tolist() for x, _ in ours] == [x.tolist() for x, _ in plain]


def test_distributed_sampler_in_a_data_loader_reshuffles_per_epoch():
    data = TensorDataset(wally.arange(20))
    sampler = DistributedSampler(data, num_replicas=2, rank=1, seed=0)
    loader = DataLoader(data, batch_size=4, sampler=sampler)
    assert len(loader) == 3
    orders = []
    for epoch in range(2):
        dist.set_epoch(loader, epoch)
        orders.append([int(v) for (batch,) in loader for v in batch.tolist()])
    assert orders[0] != orders[1] and sorted(orders[0]) != list(range(10))


# ----- two ranks under mpiexec -----------------------------------------------------------------
def _mpi_missing() -> str | None:
    if not dist.is_available():
        return "mpi4py is not installed (pip install 'wally-cnn[mpi]')"
    if shutil.which("mpiexec") is None:
        return "mpiexec is not on PATH (apt-get install openmpi-bin libopenmpi-dev)"
    return None


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=_mpi_missing() or "")

TRAINING_SCRIPT = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import wally
    import wally.distributed as dist
    from wally import nn
    from wally.data import DataLoader, TensorDataset

    out, mode = sys.argv[1], sys.argv[2]
    rank, size = dist.rank(), dist.world_size()
    wally.manual_seed(100 + rank)  # different weights on every rank: the broadcast must fix it
    model = wally.models.lenet()
    dist.broadcast_parameters(model)
    state = {"init." + k: v.numpy().copy() for k, v in model.state_dict().items()}
    data = np.random.default_rng(0)
    images = data.standard_normal((512, 1, 28, 28)).astype(np.float32)
    dataset = TensorDataset(wally.from_numpy(images), wally.from_numpy(data.integers(0, 10, 512)))
    sampler = dist.DistributedSampler(dataset, seed=3)
    loader = DataLoader(dataset, batch_size=128 // size, sampler=sampler)
    optimizer = wally.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    step = 0
    for epoch in range(2):  # 2 epochs of 4 global batches of 128
        sampler.set_epoch(epoch)
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss_fn(model(inputs), targets).backward()
            dist.average_gradients(model)
            optimizer.step()
            step += 1
            if step == 3 and rank == 1:
                print("rank 1 stops", flush=True)
                if mode == "crash":
                    os._exit(1)
                if mode == "exit":
                    sys.exit(3)
                if mode == "raise":
                    raise RuntimeError("rank 1 failed on purpose")
                if mode == "hang":
                    time.sleep(600)
    state.update({k: v.numpy() for k, v in model.state_dict().items()})

    # Batch norm: parameters stay equal, running statistics follow each rank's own shard.
    wally.manual_seed(0)
    bn_model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(),
                             nn.Linear(2 * 26 * 26, 10))
    dist.broadcast_parameters(bn_model)
    bn_optimizer = wally.optim.SGD(bn_model.parameters(), lr=0.1)
    inputs, targets = next(iter(loader))
    bn_optimizer.zero_grad()
    loss_fn(bn_model(inputs), targets).backward()
    dist.average_gradients(bn_model)
    bn_optimizer.step()
    state.update({"bn." + k: v.numpy() for k, v in bn_model.state_dict().items()})

    # A parameter with no gradient on a rank counts as zeros there; one with none anywhere
    # keeps grad None.
    heads = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.Linear(2, 2), "c": nn.Linear(2, 2)})
    used = heads["a"] if rank == 0 else heads["b"]
    (used.weight.sum() * (rank + 1)).backward()
    dist.average_gradients(heads)
    expected_a = 1 / size
    expected_b = 2 / size if size > 1 else None
    assert np.allclose(heads["a"].weight.grad.numpy(), expected_a), heads["a"].weight.grad
    if expected_b is None:
        assert heads["b"].weight.grad is None
    else:
        assert np.allclose(heads["b"].weight.grad.numpy(), expected_b), heads["b"].weight.grad
    assert heads["c"].weight.grad is None

    np.savez(f"{out}.rank{rank}.npz", **state)
    print(f"rank {rank} of {size} finished {step} steps", flush=True)
""")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_", "PMI", "PMIX_", "MV2_", "WALLY_DISTRIBUTED"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")  # 2 ranks on 2 cores
    return env


def _run(tmp_path, out, mode, ranks, timeout_seconds=None):
    script = tmp_path / "train_script.py"
    script.write_text(TRAINING_SCRIPT)
    env = _clean_env()
    command = [sys.executable, str(script), str(tmp_path / out), mode]
    if ranks:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   # containers often forbid the cross-process memory copies Open MPI tries first
                   OMPI_MCA_btl_vader_single_copy_mechanism="none")
        if timeout_seconds is not None:
            env["WALLY_DISTRIBUTED_TIMEOUT"] = str(timeout_seconds)
        command = ["mpiexec", "-n", str(ranks), "--oversubscribe", *command]
    start = time.monotonic()
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True,
                                timeout=_LAUNCH_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{' '.join(command)} still ran after {_LAUNCH_TIMEOUT} s (hung):\n"
                    f"{error.stdout}{error.stderr}")
    return result, time.monotonic() - start


@needs_mpi
def test_two_ranks_train_like_one_process_on_the_same_global_batches(tmp_path):
    alone, _ = _run(tmp_path, "alone", "ok", ranks=0)  # the same script, without mpiexec
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert "rank 0 of 1 finished 8 steps" in alone.stdout
    pair, _ = _run(tmp_path, "pair", "ok", ranks=2)
    assert pair.returncode == 0, pair.stdout + pair.stderr
    assert "rank 0 of 2 finished 8 steps" in pair.stdout
    assert "rank 1 of 2 finished 8 steps" in pair.stdout

    single = np.load(tmp_path / "alone.rank0.npz")
    rank0, rank1 = np.load(tmp_path / "pair.rank0.npz"), np.load(tmp_path / "pair.rank1.npz")
    lenet_keys = [k for k in single.files if not k.startswith(("bn.", "init."))]
    for key in lenet_keys:
        # Replicas are bit-identical: both ranks apply the same averaged gradient.
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)
        # One process on the same global batches, up to float32 summation order.
        np.testing.assert_allclose(rank0[key], single[key], rtol=1e-4, atol=1e-5, err_msg=key)
        # Every rank started from rank 0's weights, whatever its own seed drew.
        np.testing.assert_array_equal(rank1["init." + key], single["init." + key], err_msg=key)
    moved = max(float(np.abs(single[k] - single["init." + k]).max()) for k in lenet_keys)
    assert moved > 1e-2  # the 8 steps did train

    for key in ("bn.0.weight", "bn.1.weight", "bn.1.bias", "bn.3.weight"):
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)
    # Batch-norm running statistics stay per rank (PyTorch's default, no SyncBatchNorm).
    assert not np.allclose(rank0["bn.1.running_mean"], rank1["bn.1.running_mean"])


@needs_mpi
@pytest.mark.parametrize("mode, message", [
    ("crash", "exit"),  # os._exit: mpiexec sees the rank vanish and ends the job
    ("exit", "rank 1 exited after 5 collective calls, while this rank waits for it"),
    ("raise", "rank 1 exited after 5 collective calls, while this rank waits for it"),
    ("hang", "average_gradients waited 3 s for the other ranks"),
])
def test_a_rank_that_dies_ends_the_job_with_an_error_instead_of_a_hang(tmp_path, mode, message):
    result, seconds = _run(tmp_path, "dies", mode, ranks=2, timeout_seconds=3)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "rank 1 stops" in output
    assert "finished" not in output
    assert message in output, output
    assert seconds < 30, output
    if mode == "raise":
        assert "RuntimeError: rank 1 failed on purpose" in output


def _train_command_is_wired() -> bool:
    import inspect

    import wally.cli.train
    import wally.train

    return ("after_backward" in inspect.getsource(wally.train)
            and "distributed_loader" in inspect.getsource(wally.cli.train))


@needs_mpi
def test_wally_train_under_mpiexec_trains_on_two_ranks_and_only_rank_0_reports(tmp_path):
    if not _train_command_is_wired():
        pytest.skip("wally train does not call wally.distributed yet (see the integration patch)")
    pytest.importorskip("safetensors", reason="checkpoints need safetensors")
    out = tmp_path / "run"
    env = _clean_env()
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none")
    # Each rank writes its standard output straight to its own file: mpiexec's forwarding can
    # drop a process's last lines when it exits (seen once in CI), and the files also show
    # which rank printed what.
    logs = tmp_path / "stdout"
    logs.mkdir()
    train = [sys.executable, "-m", "wally", "train", "lenet", "--dataset", "synthetic",
             "--limit", "128", "--epochs", "2", "--batch-size", "64", "--out", str(out)]
    command = ["mpiexec", "-n", "2", "--oversubscribe", "sh", "-c",
               f'exec "$@" > "{logs}/rank${{OMPI_COMM_WORLD_RANK:-$PMI_RANK}}.txt"', "sh", *train]
    result = subprocess.run(command, env=env, capture_output=True, text=True,
                            timeout=_LAUNCH_TIMEOUT)
    printed = {rank: (logs / f"rank{rank}.txt").read_text() for rank in (0, 1)}
    assert result.returncode == 0, "\n".join([*printed.values(), result.stdout, result.stderr])
    lines = printed[0].splitlines()
    assert sum(line.startswith("wally train: lenet on synthetic") for line in lines) == 1
    assert "on 2 ranks" in printed[0]
    assert sum(line.startswith("epoch 2/2") for line in lines) == 1
    assert sum(line.startswith("test accuracy") for line in lines) == 1, printed[0]
    assert printed[1] == ""  # rank 1 trains silently
    assert (out / "checkpoint.safetensors").is_file()
    import json

    assert json.loads((out / "config.json").read_text())["settings"]["ranks"] == 2
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]  # 64 samples per rank, 32 per rank and step
