"""Hostile files: files made to run a program, hang wally or exhaust its memory.

Each case asserts the exact outcome: the error's type and the words that name the problem; and,
for the command line (``wally predict``, ``wally find``, run as a child process), the exit code,
no traceback, a time bound, a bound on the child's peak RSS (its ``VmHWM`` as it exits), no
file written outside the output folder (the child's ``TMPDIR`` included), and no program started:
the first folder on the child's ``PATH`` holds fake ``gs``, ``djpeg`` ... that leave a mark when
run (Pillow's EPS plugin runs ``gs`` and would find the fake first). Children run under a 4 GiB
address-space limit, so that the code these tests replace fails them instead of the machine.

Classes of cases, counted for ``docs/RELIABILITY.md`` (section ``hostile_files``):

* ``image_programs``: PostScript, EPS and PDF files, named ``.png``, that Pillow would hand to
  Ghostscript;
* ``image_memory``: an ICO holding a 13000×13000 PNG, a 2048×2048 scene for ``find``, a
  1×33,554,432 PNG and an 8192×4096 PNG at the pixel cap;
* ``non_regular``: a FIFO and a link to ``/dev/zero`` handed to every reader and to both commands;
* ``oversized``: 6 GB sparse CIFAR-10 and IDX files;
* ``archives``: a 1 MB ``cifar-10-binary.tar.gz`` that inflates to 1 GiB, one with 100 members,
  one whose members claim 300 MiB and one with a 4 GiB long-name header (each refused for its
  MD5, then, trusted, for its members), and a mirror that sends without end;
* ``dataset_content``: IDX labels out of range, IDX images with a zero-size dimension, and the
  message for missing dataset files.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
import urllib.error
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import wally
from _reliability import report
from wally.data import CIFAR10, MNIST, DatasetFormatError, DatasetNotFoundError
from wally.data import download as download_module
from wally.data.cifar import RECORD_BYTES, read_cifar_binary
from wally.data.mnist import read_idx
from wally.io.files import RefusedFileError

resource = pytest.importorskip("resource", reason="the memory checks are POSIX-only")
PIL_Image = pytest.importorskip("PIL.Image", reason="image files are read with Pillow")

CASES: Counter[str] = Counter()
PEAKS_MB: dict[str, float] = {}
CHILD_ADDRESS_SPACE = 4 << 30
FAKE_PROGRAMS = ("gs", "gswin32c", "gswin64c", "djpeg", "cjpeg", "convert", "magick",
                 "display", "xdg-open", "xv")
CIFAR_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"


# ----- running wally as a child -----------------------------------------------------------------
@dataclass
class Outcome:
    code: int
    out: str
    err: str
    seconds: float
    peak_mb: float
    timed_out: bool


@dataclass
class Sandbox:
    work: Path  # the child's working folder
    tmp: Path  # its TMPDIR
    marks: Path  # where the fake programs write when run
    env: dict[str, str]

    def files_outside(self, allowed: Path | None = None) -> list[str]:
        """Files written in the working folder (outside ``allowed``) or TMPDIR."""
        found = []
        for folder in (self.work, self.tmp):
            for path in folder.rglob("*"):
                if path.is_dir() or path.name.startswith("input-"):
                    continue
                if allowed is not None and allowed in path.parents:
                    continue
                found.append(str(path))
        return found

    def programs_run(self) -> list[str]:
        return self.marks.read_text().splitlines() if self.marks.exists() else []


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    work, tmp, bin_dir = tmp_path / "work", tmp_path / "tmp", tmp_path / "bin"
    for folder in (work, tmp, bin_dir):
        folder.mkdir()
    marks = tmp_path / "programs-run.txt"
    for name in FAKE_PROGRAMS:
        fake = bin_dir / name
        fake.write_text(f'#!/bin/sh\necho "{name} $*" >> "{marks}"\nexit 0\n')
        fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               TMPDIR=str(tmp), OMP_NUM_THREADS="2", MPLBACKEND="Agg")
    return Sandbox(work, tmp, marks, env)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_ADDRESS_SPACE, CHILD_ADDRESS_SPACE))


# The child's own high-water mark, written as it exits: wait4's ru_maxrss would not do, since
# Linux carries the parent's peak RSS at fork time over into the child's.
RUNNER = """
import atexit, os, runpy, sys

def _peak():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["WALLY_TEST_PEAK"], "w") as out:
        out.write(kb)

atexit.register(_peak)
kind, target = sys.argv[1:3]
sys.argv = [target, *sys.argv[3:]]
if kind == "-m":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    exec(compile(target, "<child>", "exec"), {"__name__": "__main__"})
"""


def run_child(sandbox: Sandbox, argv: list[str], timeout: float) -> Outcome:
    """Run ``python argv...`` (``-m module ...`` or ``-c code ...``) in the sandbox; its exit
    code, output, time and peak RSS (VmHWM, in MB; infinite if it did not say)."""
    peak_file = sandbox.work.parent / "child-peak-kb.txt"
    peak_file.unlink(missing_ok=True)
    env = dict(sandbox.env, WALLY_TEST_PEAK=str(peak_file))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        process = subprocess.Popen([sys.executable, "-c", RUNNER, *argv], stdout=out,
                                   stderr=err, stdin=subprocess.DEVNULL, cwd=sandbox.work,
                                   env=env, preexec_fn=_limit_memory)
        try:
            process.wait(timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            timed_out = True
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        peak_mb = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("inf")
        return Outcome(process.returncode, out.read().decode(errors="replace"),
                       err.read().decode(errors="replace"), seconds, peak_mb, timed_out)


def run_wally(sandbox: Sandbox, args: list[str], timeout: float = 30) -> Outcome:
    return run_child(sandbox, ["-m", "wally", *args], timeout)


def assert_refused(outcome: Outcome, *words: str, seconds: float = 15,
                   peak_mb: float = 300) -> None:
    """Exit 1, no traceback, within the bounds, and every word in the message."""
    assert not outcome.timed_out, f"still running after {outcome.seconds:.0f} s (a hang?)"
    assert outcome.code == 1, (outcome.code, outcome.err[-2000:])
    assert "Traceback" not in outcome.err, outcome.err[-2000:]
    for word in words:
        assert word in outcome.err, (word, outcome.err)
    assert outcome.seconds < seconds, outcome.seconds
    assert outcome.peak_mb < peak_mb, f"peak RSS {outcome.peak_mb:.0f} MB"


# ----- files -------------------------------------------------------------------------------------
def png_bytes(width: int, height: int, channels: int = 3) -> bytes:
    """A black PNG of any size, compressed row by row (a 13000×13000 one is 160 KB)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    compressor = zlib.compressobj(9)
    row = bytes(1 + width * channels)
    rows_at_once = max(1, (1 << 22) // len(row))
    body = []
    for first in range(0, height, rows_at_once):
        body.append(compressor.compress(row * min(rows_at_once, height - first)))
    body.append(compressor.flush())
    color = {1: 0, 3: 2}[channels]
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0))
            + chunk(b"IDAT", b"".join(body)) + chunk(b"IEND", b""))


def ico_holding(png: bytes) -> bytes:
    """An ICO whose one entry is ``png`` (its directory says 256×256: 0 means 256)."""
    return (struct.pack("<HHH", 0, 1, 1)
            + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 6 + 16) + png)


POSTSCRIPT = {
    # a PostScript { } loop: Ghostscript would never return
    "PostScript": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\nshowpage\n",
    "EPS": (b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIII", 30, 40, 0, 0, 0, 0) + b"\xff\xff"
            + b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"),
    "PDF": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """An untrained LeNet for ``predict`` (MNIST's shapes), a fresh finder and a fresh one of
    two channels per layer."""
    pytest.importorskip("safetensors", reason="checkpoints are safetensors files")
    from wally.io import save_checkpoint
    from wally.models import get_model

    folder = tmp_path_factory.mktemp("checkpoints")
    wally.manual_seed(0)
    lenet, finder = folder / "lenet.safetensors", folder / "finder.safetensors"
    tiny = folder / "tiny_finder.safetensors"
    save_checkpoint(lenet, get_model("lenet"),
                    extra={"dataset": "mnist", "classes": [str(i) for i in range(10)]})
    save_checkpoint(finder, get_model("wally_finder"))
    save_checkpoint(tiny, get_model("wally_finder", channels=(2, 2, 2)))
    return {"predict": lenet, "find": finder, "tiny_find": tiny}


def command(name: str, checkpoints: dict[str, Path], image: Path, sandbox: Sandbox) -> list[str]:
    if name == "predict":
        return ["predict", str(checkpoints["predict"]), str(image)]
    return ["find", str(image), "--checkpoint", str(checkpoints["find"]),
            "--out", str(sandbox.work / "out")]


# ----- 1. image files that would run a program ---------------------------------------------------
@pytest.mark.parametrize("fmt", list(POSTSCRIPT))
def test_postscript_named_png_is_refused_without_starting_a_program(tmp_path, monkeypatch, fmt):
    """The library: refused by name, before Pillow's EPS plugin (or any other) is asked."""
    from PIL import EpsImagePlugin, Image

    from wally.io.images import read_image

    started: list[object] = []

    def refuse(*args, **kwargs):
        started.append(args)
        raise AssertionError(f"a program was started: {args}")

    for name in ("Popen", "call", "check_call", "check_output", "run"):
        monkeypatch.setattr(subprocess, name, refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)
    Image.init()
    factory, accept = Image.OPEN["EPS"]

    def record_eps(*args, **kwargs):
        started.append("EPS plugin")
        return factory(*args, **kwargs)

    monkeypatch.setitem(Image.OPEN, "EPS", (record_eps, accept))
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", "gs")
    path = tmp_path / "eps_named.png"
    path.write_bytes(POSTSCRIPT[fmt])
    with pytest.raises(DatasetFormatError) as info:
        read_image(path, "L", size=(28, 28))
    assert str(info.value).startswith(f"{path}: the file holds {fmt}")
    assert "which wally does not read (it reads PNG, JPEG" in str(info.value)
    assert started == []
    CASES["image_programs"] += 1


@pytest.mark.parametrize("name", ["predict", "find"])
def test_postscript_named_png_runs_nothing_from_the_command_line(sandbox, checkpoints, name):
    image = sandbox.work / "input-eps_named.png"
    image.write_bytes(POSTSCRIPT["PostScript"])
    outcome = run_wally(sandbox, command(name, checkpoints, image, sandbox))
    assert_refused(outcome, str(image), "the file holds PostScript", "which wally does not read")
    assert sandbox.programs_run() == []
    assert sandbox.files_outside() == []
    CASES["image_programs"] += 1


# ----- 2. image files that would exhaust memory --------------------------------------------------
@pytest.fixture(scope="module")
def big_ico(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ico") / "input-big.ico"
    path.write_bytes(ico_holding(png_bytes(13000, 13000, channels=1)))
    return path


def test_ico_holding_a_huge_png_is_refused_before_decoding(sandbox, checkpoints, big_ico):
    from wally.io.images import read_image

    with pytest.raises(DatasetFormatError, match="the file holds ICO \\(Windows icon\\)"):
        read_image(big_ico)
    outcome = run_wally(sandbox, command("predict", checkpoints, big_ico, sandbox))
    assert_refused(outcome, str(big_ico), "the file holds ICO", peak_mb=150)  # it was 710 MB
    PEAKS_MB["predict_ico_13000x13000"] = round(outcome.peak_mb, 1)
    CASES["image_memory"] += 1


def test_find_on_a_large_scene_stays_bounded(sandbox, checkpoints):
    """2048×2048 pixels: the finder ran on the whole padded image at once (705 MB peak)."""
    image = sandbox.work / "input-scene.png"
    image.write_bytes(png_bytes(2048, 2048))
    args = command("find", checkpoints, image, sandbox)
    import importlib.util

    drawing = importlib.util.find_spec("matplotlib") is not None
    outcome = run_wally(sandbox, args if drawing else [*args, "--no-picture"], timeout=120)
    assert outcome.code == 0, outcome.err[-2000:]
    assert "2048×2048 image" in outcome.out
    assert outcome.peak_mb < 350, f"peak RSS {outcome.peak_mb:.0f} MB"
    out = sandbox.work / "out"
    assert sandbox.files_outside(allowed=out) == []
    if drawing:
        assert (out / "found.png").is_file()
    assert sandbox.programs_run() == []
    PEAKS_MB["find_2048x2048"] = round(outcome.peak_mb, 1)
    CASES["image_memory"] += 1


def test_thin_image_is_refused_by_find_before_any_work(sandbox, checkpoints):
    """1×33,554,432 pixels, at the cap: padded, 1.1 billion pixels (a 12.4 GiB MemoryError)."""
    image = sandbox.work / "input-thin.png"
    image.write_bytes(png_bytes(1 << 25, 1))
    outcome = run_wally(sandbox, command("find", checkpoints, image, sandbox))
    assert_refused(outcome, str(image), "33554432×1 image", "1,107,297,312 pixels",
                   "more than the 67,108,864", seconds=10, peak_mb=200)
    assert sandbox.files_outside() == []
    PEAKS_MB["find_1x33554432"] = round(outcome.peak_mb, 1)
    CASES["image_memory"] += 1


def test_images_at_the_pixel_cap_keep_the_memory_bound(sandbox, checkpoints):
    """8192×4096 (98 KB): ``predict`` and ``find`` (a finder of two channels, so that it runs
    in seconds) both stay within the bound that decoding sets, 16 bytes a pixel besides the
    file, above what Python, NumPy, wally and Pillow take: ``find`` ran the whole padded image
    through the finder at once (the issue's default finder peaked at 5.2 GB)."""
    from wally.io.images import DECODE_BYTES_PER_PIXEL, MAX_IMAGE_PIXELS

    image = sandbox.work / "input-cap.png"
    image.write_bytes(png_bytes(8192, 4096))
    baseline_mb = 150
    bound_mb = baseline_mb + (DECODE_BYTES_PER_PIXEL * MAX_IMAGE_PIXELS
                              + image.stat().st_size) / 2**20
    for name in ("predict", "find"):
        args = command(name, checkpoints, image, sandbox)
        if name == "find":
            args[args.index("--checkpoint") + 1] = str(checkpoints["tiny_find"])
        outcome = run_wally(sandbox, args, timeout=120)
        assert outcome.code == 0, outcome.err[-2000:]
        assert outcome.peak_mb < bound_mb, (name, outcome.peak_mb, bound_mb)
        PEAKS_MB[f"{name}_8192x4096"] = round(outcome.peak_mb, 1)
    assert sandbox.files_outside(allowed=sandbox.work / "out") == []
    CASES["image_memory"] += 2


def test_tiled_heatmap_equals_a_single_pass(monkeypatch):
    """The tiles that bound find's memory give the heatmap one pass over the image gives."""
    import importlib

    module = importlib.import_module("wally.apps.finder")

    finder = module.wally_finder()
    image = np.random.default_rng(0).integers(0, 256, (150, 170, 3), dtype=np.uint8)
    whole, pad = module.heatmap(finder, image)
    monkeypatch.setattr(module, "TILE_PIXELS", 64 * 64)
    tiled, tiled_pad = module.heatmap(finder, image)
    assert pad == tiled_pad and whole.shape == tiled.shape == ((150 + 2) // 4 + 1,
                                                               (170 + 2) // 4 + 1)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-5)


# ----- 3. files that are not regular files -------------------------------------------------------
def make_special(kind: str, path: Path) -> Path:
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    return path


SPECIAL_WORDS = {"fifo": "a FIFO", "dev_zero": "a character device"}


@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
@pytest.mark.parametrize("name", ["predict", "find"])
def test_commands_refuse_an_image_that_is_not_a_regular_file(sandbox, checkpoints, name, kind):
    image = make_special(kind, sandbox.work / "input-picture.png")
    outcome = run_wally(sandbox, command(name, checkpoints, image, sandbox), timeout=20)
    assert_refused(outcome, str(image), SPECIAL_WORDS[kind], seconds=10, peak_mb=200)
    assert sandbox.files_outside() == []
    CASES["non_regular"] += 1


READERS = {
    "image": "from wally.io.images import read_image as read",
    "idx": "from wally.data.mnist import read_idx as read",
    "cifar": "from wally.data.cifar import read_cifar_binary as read",
    "metrics": "from wally.io.metrics import read_metrics as read",
    "archive": "from wally.data.cifar import extract_members\n"
               "read = lambda path: extract_members(path, 'out', {'x'})",
}
CHILD = """
import sys
{import_reader}
try:
    read(sys.argv[1])
except ValueError as error:
    print(type(error).__name__ + ": " + str(error))
else:
    print("read without error")
"""


@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_refuses_what_is_not_a_regular_file(sandbox, reader, kind):
    path = make_special(kind, sandbox.work / f"input-{reader}")
    code = CHILD.format(import_reader=READERS[reader])
    outcome = run_child(sandbox, ["-c", code, str(path)], timeout=20)
    assert not outcome.timed_out, "hung"
    assert outcome.code == 0, outcome.err[-2000:]
    assert outcome.out.startswith("RefusedFileError: "), outcome.out
    assert f"{path}: expected a regular" in outcome.out and SPECIAL_WORDS[kind] in outcome.out
    assert outcome.seconds < 10 and outcome.peak_mb < 200, (outcome.seconds, outcome.peak_mb)
    assert sandbox.files_outside() == []
    CASES["non_regular"] += 1


# ----- 4. sparse files larger than the format allows ---------------------------------------------
def sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with open(path, "wb") as file:
        file.write(head)
        file.truncate(size)
    return path


def refused_quickly(call, *args):
    """Run ``call(*args)``, expecting a refusal; return it, asserting little time and memory."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError) as info:
            call(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2.0
    assert peak < 8 << 20, f"{peak:,} bytes allocated"
    return info.value


def test_sparse_6gb_cifar_batch_is_refused_before_reading(tmp_path):
    path = sparse(tmp_path / "data_batch_1.bin", RECORD_BYTES * 2_000_000)  # 6.1 GB
    error = refused_quickly(read_cifar_binary, path)
    assert isinstance(error, RefusedFileError)
    assert str(error) == (f"{path}: 6,146,000,000 bytes, over wally's CIFAR-10 batch limit of "
                          "30,730,000 bytes")
    CASES["oversized"] += 1


def test_sparse_6gb_idx_file_is_refused_before_reading(tmp_path):
    count = 6_000_000_000 // 784
    head = struct.pack(">BBBB3I", 0, 0, 0x08, 3, count, 28, 28)
    path = sparse(tmp_path / "train-images-idx3-ubyte", 16 + 784 * count, head)
    error = refused_quickly(read_idx, path, 3)
    assert isinstance(error, RefusedFileError)
    assert f"{path}: 5,999,999,840 bytes, over wally's IDX limit" in str(error)
    CASES["oversized"] += 1


# ----- 5. dataset archives -----------------------------------------------------------------------
ZEROS_MIB = gzip.compress(bytes(1 << 20))


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | int]]) -> bytes:
    """A tar.gz of ``members`` (data, or a count of zero bytes), as concatenated gzip members,
    so that a GiB of zeros costs a MB and no time to build."""
    parts = []
    for info, data in members:
        size = data if isinstance(data, int) else len(data)
        if info.size == 0 and info.isfile():
            info.size = size
        parts.append(gzip.compress(info.tobuf(tarfile.GNU_FORMAT)))
        if isinstance(data, int):
            whole, rest = divmod(data, 1 << 20)
            parts += [ZEROS_MIB] * whole + [gzip.compress(bytes(rest))]
        else:
            parts.append(gzip.compress(data))
        parts.append(gzip.compress(bytes(-size % 512)))
    parts.append(gzip.compress(bytes(1024)))
    return b"".join(parts)


def _member(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info


def _batches(skip: str | None = None) -> list[tuple[tarfile.TarInfo, bytes | int]]:
    records = bytes(4 * RECORD_BYTES)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    return [(_member(f"cifar-10-batches-bin/{n}"), records) for n in names if n != skip]


ARCHIVES = {
    "inflates_to_1_gib": (
        lambda: [(_member("cifar-10-batches-bin/data_batch_1.bin"), 1 << 30),
                 *_batches(skip="data_batch_1.bin")],
        "refusing to extract member 'cifar-10-batches-bin/data_batch_1.bin' of "
        "1,073,741,824 bytes, expected a whole number of 3073-byte records, at most "
        "30,730,000 bytes"),
    "100_members": (
        lambda: [(_member(f"cifar-10-batches-bin/x{i}"), b"x") for i in range(100)]
        + _batches(),
        "more than 64 members, which no dataset archive has"),
    "members_claim_300_mib": (
        lambda: [(_member("cifar-10-batches-bin/readme.html"), 300 << 20), *_batches()],
        "its members hold more than 268,435,456 bytes"),
    "long_name_claims_4_gib": (
        lambda: [(_member("././@LongLink", 4 << 30, tarfile.GNUTYPE_LONGNAME), 8 << 20),
                 *_batches()],
        "bytes once decompressed, more than the dataset's archive holds"),
}


@pytest.mark.parametrize("case", list(ARCHIVES))
def test_cifar_archive_bombs_are_refused_before_extracting(tmp_path, monkeypatch, case):
    build, words = ARCHIVES[case]
    archive = tmp_path / "CIFAR10" / "cifar-10-binary.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(_tar_gz(build()))
    assert archive.stat().st_size < 2 << 20  # about 1 MB: the size
    with pytest.raises(DatasetFormatError, match="md5 .*, expected " + CIFAR_MD5):
        CIFAR10(root=tmp_path, train=False)  # not the published archive
    monkeypatch.setattr(CIFAR10, "archive_md5", hashlib.md5(archive.read_bytes()).hexdigest())
    error = refused_quickly(CIFAR10, tmp_path, False)  # trusted: its members are refused
    assert isinstance(error, DatasetFormatError)
    assert str(error).startswith(f"{archive}: ") and words in str(error), str(error)
    assert sorted(p.name for p in (tmp_path / "CIFAR10").iterdir()) == [archive.name]
    CASES["archives"] += 2


class _Endless:
    """A response that never ends: a mirror sending zeros for ever."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, size: int) -> bytes:
        return bytes(size)


def test_a_mirror_sending_without_end_is_cut_off(tmp_path, monkeypatch):
    monkeypatch.setattr(download_module, "urlopen", lambda url, timeout: _Endless())
    destination = tmp_path / "data" / "cifar-10-binary.tar.gz"
    start = time.perf_counter()
    with pytest.raises(ConnectionError) as info:
        download_module.download(["https://mirror.invalid/cifar-10-binary.tar.gz"],
                                 destination, md5=CIFAR_MD5, max_bytes=4 << 20)
    assert time.perf_counter() - start < 5
    assert ("https://mirror.invalid/cifar-10-binary.tar.gz: sent more than 4,194,304 bytes, "
            "more than cifar-10-binary.tar.gz has; cut off") in str(info.value)
    assert list((tmp_path / "data").iterdir()) == []  # the partial download is gone
    CASES["archives"] += 1


# ----- 6. dataset files' content -----------------------------------------------------------------
def idx(array: np.ndarray, dims: tuple[int, ...] | None = None) -> bytes:
    dims = array.shape if dims is None else dims
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, 0x08, len(dims), *dims) + array.tobytes()


def write_mnist(folder: Path, labels: np.ndarray, image_dims: tuple[int, ...] | None = None
                ) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    images = np.zeros((len(labels), 28, 28), np.uint8)
    (folder / "train-images-idx3-ubyte").write_bytes(
        idx(images if image_dims is None else np.zeros(image_dims, np.uint8)))
    (folder / "train-labels-idx1-ubyte").write_bytes(idx(labels.astype(np.uint8)))


def test_idx_label_out_of_range_is_refused_at_read_time(tmp_path):
    labels = np.array([0, 1, 9, 12, 3, 200], np.uint8)
    write_mnist(tmp_path / "MNIST", labels)
    path = tmp_path / "MNIST" / "train-labels-idx1-ubyte"
    with pytest.raises(DatasetFormatError) as info:
        MNIST(root=tmp_path, train=True)
    assert str(info.value) == (f"{path}: label 12 at index 3, expected 0..9 (2 labels out of "
                               "range)")
    CASES["dataset_content"] += 1


@pytest.mark.parametrize("dims", [(200, 28, 0), (0, 28, 28), (200, 0, 28)])
def test_idx_images_with_a_zero_size_dimension_are_refused(tmp_path, dims):
    write_mnist(tmp_path / "MNIST", np.zeros(dims[0], np.uint8), image_dims=dims)
    path = tmp_path / "MNIST" / "train-images-idx3-ubyte"
    with pytest.raises(DatasetFormatError) as info:
        MNIST(root=tmp_path, train=True)
    assert str(info.value) == (f"{path}: the header declares shape {dims}, expected no "
                               "dimension of size 0")
    CASES["dataset_content"] += 1


@pytest.mark.parametrize("download", [False, True])
def test_missing_mnist_lists_every_missing_file_at_once(tmp_path, monkeypatch, download):
    def unreachable(url, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download_module, "urlopen", unreachable)
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(root=tmp_path, train=True, download=download)
    message = str(info.value)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert f"  {name}\n" in message, name
    if not download:
        assert "pass download=True, or --download on the command line, to fetch them" in message
    CASES["dataset_content"] += 1


def test_report():
    """The counts of the cases above, for docs/RELIABILITY.md (runs after them)."""
    report("hostile_files", {"cases_per_class": dict(sorted(CASES.items())),
                             "cases": sum(CASES.values()),
                             "peak_rss_mb": dict(sorted(PEAKS_MB.items()))})

