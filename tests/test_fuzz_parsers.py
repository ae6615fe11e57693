"""Hostile files: fuzz every parser that reads a user's file, with hypothesis.

Parsers, and the only exception each may raise (all ``ValueError`` subclasses, with a message
naming the file; a missing or unreadable file stays an ``OSError``):

==================================  ======================================  ======================
parser                              reads                                   may raise
==================================  ======================================  ======================
``wally.data.mnist.read_idx``       MNIST's IDX files, raw or gzipped       ``DatasetFormatError``
``wally.data.cifar.read_cifar_...`` CIFAR-10 ``.bin`` batches               ``DatasetFormatError``
``wally.cli._images.read_image...`` images on the allow-list (``predict``) ``DatasetFormatError``
``wally.io.load_checkpoint``        safetensors checkpoints, JSON metadata  ``CheckpointError``
``wally.io.metrics.read_metrics``   ``metrics.jsonl``                       ``MetricsFormatError``
==================================  ======================================  ======================

Each parser gets inputs two ways: *generated* from the format's structure (headers with arbitrary
fields, sizes up to 2^64 - 1, JSON documents of any shape and depth) and *mutated* from valid
seed files (bit flips, byte overwrites, interesting integers written over headers, insertions,
deletions, truncations, duplications). No other exception type, no hang (each call runs under a
10 s alarm), and no allocation beyond :data:`MEMORY_BOUND` bytes (the peak traced by
``tracemalloc``, which sees NumPy's and Python's allocations; Pillow's own C allocations are
bounded by ``read_image_file``'s pixel limit, checked with the process's peak RSS).

``MAX_EXAMPLES`` sets the inputs per test; the counts actually run are printed, and written to
``$WALLY_RELIABILITY_REPORT`` under ``"fuzz"``.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import signal
import struct
import sys
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wally
from _reliability import report
from wally import nn, optim
from wally.data import DatasetFormatError
from wally.data.cifar import RECORD_BYTES, read_cifar_binary
from wally.data.mnist import read_idx
from wally.io import CheckpointError, load_checkpoint, save_checkpoint
from wally.io.metrics import MetricsFormatError, read_metrics

# Pillow warns about the corrupt files it is fed (EXIF, MPO, TIFF tags), hypothesis about the
# size of the examples it prints: the outcome is what the tests check.
pytestmark = pytest.mark.filterwarnings("ignore")

resource = pytest.importorskip("resource", reason="the memory and hang checks are POSIX-only")
safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="needs safetensors")
PIL_Image = pytest.importorskip("PIL.Image", reason="image files are read with Pillow")

# Inputs per test; every parser has a generated and a mutated test (and the checkpoint loader a
# third, on its JSON metadata), which together give each parser at least 10,000 inputs.
MAX_EXAMPLES = {
    "idx_generated": 3000, "idx_mutated": 7000,
    "cifar_generated": 3000, "cifar_mutated": 7000,
    "image_generated": 3000, "image_mutated": 7000,
    "checkpoint_generated": 1000, "checkpoint_metadata": 2000, "checkpoint_mutated": 7000,
    "metrics_generated": 2000, "metrics_mutated": 8000,
}
MEMORY_BOUND = 64 << 20  # bytes traced at the peak of one call, beyond what was live before
MAX_INPUT = 16 << 10  # bytes per generated file: a gzip of 16 KiB inflates to at most 16.5 MB
HANG_SECONDS = 10

COUNTS: Counter[str] = Counter()
PEAKS: dict[str, int] = {}
OUTCOMES: Counter[tuple[str, str]] = Counter()


def _fuzz_settings(name: str) -> settings:
    return settings(max_examples=MAX_EXAMPLES[name], deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


class Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang(f"a parser ran for more than {HANG_SECONDS} s")


@pytest.fixture(scope="module", autouse=True)
def _reported():
    """Report the counts at the module's end."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    parsers = sorted({name.rsplit("_", 1)[0] for name in COUNTS})
    per_parser = {p: sum(n for k, n in COUNTS.items() if k.rsplit("_", 1)[0] == p)
                  for p in parsers}
    if per_parser:
        report("fuzz", {
            "inputs_per_parser": per_parser,
            "inputs_per_test": dict(sorted(COUNTS.items())),
            "peak_traced_bytes_per_parser": dict(sorted(PEAKS.items())),
            "memory_bound_bytes": MEMORY_BOUND,
            "peak_rss_growth_mb": round(rss_growth_mb, 1),
            "outcomes": {f"{p}: {kind}": n for (p, kind), n in sorted(OUTCOMES.items())},
        })


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _overwrite(path: Path, data: bytes) -> None:
    # Not write_bytes: on ext4, truncating a file that holds data on open flushes it (about 2 ms).
    path.touch()
    with open(path, "r+b") as file:
        file.write(data)
        file.truncate()


def exercise(test: str, path: Path, data: bytes, call: Callable[[Path], Any],
             allowed: type[BaseException]) -> int:
    """Write ``data`` to ``path``, parse it, and hold the outcome to the rules; return the peak
    of the bytes allocated meanwhile."""
    parser = test.rsplit("_", 1)[0]
    _overwrite(path, data)
    COUNTS[test] += 1
    tracemalloc.start()  # only around the call: tracing hypothesis too would triple the time
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        call(path)
        OUTCOMES[(parser, "parsed")] += 1
    except allowed as error:
        message = str(error)
        assert str(path) in message, f"the message should name the file: {message!r}"
        OUTCOMES[(parser, type(error).__name__)] += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        PEAKS[parser] = max(PEAKS.get(parser, 0), peak)
    assert peak <= MEMORY_BOUND, f"{parser} allocated {peak} bytes for a {len(data)}-byte file"
    return peak


# ----- mutations, shared by every format --------------------------------------------------------
INTERESTING_32 = [0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x100, 3073, 60000, 10**6, 10**9, 0x7FFFFFFF,
                  0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
INTERESTING_64 = [0, 1, 8, 2**31, 2**32, 10**12, 2**62, 2**63 - 1, 2**63, 2**64 - 1]


def mutate(seed: bytes, recipe: bytes, header: int = 64) -> bytes:
    """``seed`` with one mutation per 4 bytes of ``recipe`` (``op, a, b, c``), libFuzzer-style.

    Reading the mutations from one drawn byte string, instead of drawing each choice, keeps
    hypothesis' cost per input low, and it still shrinks a failure to a short recipe. ``c``'s
    top bit puts the position in the first ``header`` bytes; otherwise ``a, b`` scale it over
    the whole file.
    """
    data = bytearray(seed)
    junk = random.Random(recipe)  # the bytes that insertions and appends add
    for i in range(0, len(recipe) - 3, 4):
        op, a, b, c = recipe[i:i + 4]
        size = len(data)
        if c & 0x80:
            position = a % (min(header, size) + 1)
        else:
            position = (((a << 8) | b) * (size + 1)) >> 16
        kind = op % 10
        if kind <= 1 and size:  # flip one bit
            data[min(position, size - 1)] ^= 1 << (b & 7)
        elif kind == 2 and size:  # overwrite one byte
            data[min(position, size - 1)] = c
        elif kind == 3:  # an interesting 32-bit integer, either byte order
            order = ">I" if c & 1 else "<I"
            data[position:position + 4] = struct.pack(order, INTERESTING_32[b % 16])
        elif kind == 4:  # an interesting 64-bit integer, little-endian (safetensors' length)
            data[position:position + 8] = struct.pack("<Q", INTERESTING_64[b % 10])
        elif kind == 5:  # insert bytes
            data[position:position] = junk.randbytes(1 + c % 16)
        elif kind == 6:  # delete a run of bytes
            del data[position:position + 1 + c % 64]
        elif kind == 7:  # truncate
            del data[position:]
        elif kind == 8:  # duplicate a chunk
            data[position:position] = data[position:position + 1 + c]
        else:  # append junk
            data += junk.randbytes(1 + c % 64)
        if len(data) > 4 * MAX_INPUT:
            del data[4 * MAX_INPUT:]
    return bytes(data)


def mutations_of(seeds: list[bytes], header: int = 64) -> st.SearchStrategy[bytes]:
    """A seed file with 1 to 8 mutations, positions biased towards its header."""
    return st.builds(lambda index, recipe: mutate(seeds[index], recipe, header),
                     st.integers(0, len(seeds) - 1), st.binary(min_size=4, max_size=32))


# ----- IDX --------------------------------------------------------------------------------------
IDX_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _idx(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(IDX_TYPES[code]).tobytes()


def _idx_seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    raw = [_idx(rng.integers(0, 256, (5, 6, 6)).astype(np.uint8), 0x08),
           _idx(rng.integers(0, 10, (7,)).astype(np.uint8), 0x08),
           _idx(rng.normal(size=(3, 4)), 0x0D), _idx(rng.normal(size=(2, 2, 2)), 0x0E),
           _idx(rng.integers(-9, 9, (4, 3)), 0x0B), _idx(rng.integers(-9, 9, (6,)), 0x0C)]
    return raw + [gzip.compress(seed, mtime=0) for seed in raw]


IDX_SEEDS = _idx_seeds()


@st.composite
def idx_files(draw: Any) -> bytes:
    """An IDX header with arbitrary fields (sizes up to 2^32 - 1), data of any length, raw or
    gzipped (and maybe truncated or bit-flipped after compression)."""
    magic = draw(st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x1f\x8b", b"\xff\xff"]))
    code = draw(st.one_of(st.sampled_from(IDX_CODES), st.integers(0, 255)))
    ndim = draw(st.integers(0, 12))
    dims = draw(st.lists(st.one_of(st.sampled_from(INTERESTING_32), st.integers(0, 40)),
                         min_size=min(ndim, 10), max_size=min(ndim, 10)))
    header = magic + bytes([code, ndim]) + struct.pack(f">{len(dims)}I", *dims)
    item = np.dtype(IDX_TYPES.get(code, ">u1")).itemsize
    claimed = int(np.prod(dims, dtype=object)) * item if dims else 0
    length = draw(st.one_of(st.just(min(claimed, MAX_INPUT)), st.integers(0, 2048)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    body = header + rng.integers(0, 256, length, dtype=np.uint8).tobytes()
    if draw(st.booleans()):
        body = gzip.compress(body, mtime=0)
        if draw(st.booleans()):
            body = body[:draw(st.integers(0, len(body)))]
        if draw(st.booleans()) and body:
            index = draw(st.integers(0, len(body) - 1))
            body = body[:index] + bytes([body[index] ^ 0x10]) + body[index + 1:]
    return body


def test_read_idx_generated(scratch):
    @_fuzz_settings("idx_generated")
    @given(data=idx_files(), expected_ndim=st.sampled_from([None, 1, 3]))
    def run(data: bytes, expected_ndim: int | None) -> None:
        exercise("idx_generated", scratch / "file.idx", data,
                 lambda p: read_idx(p, expected_ndim=expected_ndim), DatasetFormatError)

    run()


def test_read_idx_mutated(scratch):
    @_fuzz_settings("idx_mutated")
    @given(data=mutations_of(IDX_SEEDS, header=24))
    def run(data: bytes) -> None:
        exercise("idx_mutated", scratch / "file.idx", data, read_idx, DatasetFormatError)

    run()


def test_idx_header_claiming_a_trillion_images_is_refused_before_allocating(scratch):
    for gz in (False, True):
        header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 10**6, 10**6, 28)  # 2.8e13 bytes
        data = header + bytes(4096)
        peak = exercise("idx_claims", scratch / "huge.idx", gzip.compress(data) if gz else data,
                        read_idx, DatasetFormatError)
        assert peak < 1 << 20


# ----- CIFAR-10 binary --------------------------------------------------------------------------
def _cifar_seeds() -> list[bytes]:
    rng = np.random.default_rng(1)
    seeds = []
    for count in (1, 2, 3):
        records = rng.integers(0, 256, (count, RECORD_BYTES), dtype=np.uint8)
        records[:, 0] = rng.integers(0, 10, count)
        seeds.append(records.tobytes())
    return seeds


CIFAR_SEEDS = _cifar_seeds()


@st.composite
def cifar_files(draw: Any) -> bytes:
    """Record counts around whole numbers, labels anywhere in 0..255."""
    records = draw(st.integers(0, 4))
    extra = draw(st.sampled_from([0, 0, 0, 1, -1, 3072, 17]))
    length = max(0, records * RECORD_BYTES + extra)
    array = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(
        0, 256, length, dtype=np.uint8)
    for record in range(records):
        if record * RECORD_BYTES < length:
            array[record * RECORD_BYTES] = draw(st.one_of(st.integers(0, 9), st.integers(0, 255)))
    return array.tobytes()


def test_read_cifar_binary_generated(scratch):
    @_fuzz_settings("cifar_generated")
    @given(data=cifar_files())
    def run(data: bytes) -> None:
        exercise("cifar_generated", scratch / "batch.bin", data, read_cifar_binary,
                 DatasetFormatError)

    run()


def test_read_cifar_binary_mutated(scratch):
    @_fuzz_settings("cifar_mutated")
    @given(data=mutations_of(CIFAR_SEEDS, header=RECORD_BYTES * 3))
    def run(data: bytes) -> None:
        exercise("cifar_mutated", scratch / "batch.bin", data, read_cifar_binary,
                 DatasetFormatError)

    run()


# ----- image files, the way `wally predict` reads them -----------------------------------------
def _read_image(dataset: str) -> Callable[[Path], Any]:
    from wally.cli._images import read_image_file

    size = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "digits": (1, 28, 28)}[dataset]
    return lambda path: read_image_file(path, dataset, size)


def _image_seeds() -> list[bytes]:
    rng = np.random.default_rng(2)
    grey = PIL_Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8))
    rgb = PIL_Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8))
    rgba = PIL_Image.fromarray(rng.integers(0, 256, (5, 5, 4), dtype=np.uint8))
    seeds = []
    for image, format in [(grey, "PNG"), (rgb, "PNG"), (rgba, "PNG"), (grey, "JPEG"),
                          (rgb, "JPEG"), (grey, "BMP"), (rgb, "BMP"), (rgb, "GIF"),
                          (grey, "TIFF"), (rgb, "TIFF"), (rgb, "WEBP"), (grey, "PPM"),
                          (rgb, "PPM"), (rgb, "ICO"), (rgb.convert("P"), "PNG"),
                          (grey.convert("1"), "PNG"), (rgb, "TGA"), (rgb, "PCX")]:
        buffer = io.BytesIO()
        try:
            image.save(buffer, format=format)
        except (OSError, KeyError, ValueError):  # a codec this Pillow lacks
            continue
        seeds.append(buffer.getvalue())
    return seeds


IMAGE_SEEDS = _image_seeds()
IMAGE_MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"GIF87a", b"BM",
               b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"P5\n", b"P6\n",
               b"\x00\x00\x01\x00", b"8BPS", b"\x0a\x05\x01\x08", b"\x00\x00\x00\x0cjP  ",
               b"icns", b"DDS ", b"qoif", b""]


@st.composite
def image_files(draw: Any) -> bytes:
    """A known format's magic number, then random bytes (or a seed's header, then random)."""
    if draw(st.booleans()):
        head = draw(st.sampled_from(IMAGE_MAGIC))
    else:
        seed = draw(st.sampled_from(IMAGE_SEEDS))
        head = seed[:draw(st.integers(0, min(len(seed), 64)))]
    return head + draw(st.binary(max_size=512))


def test_read_image_file_generated(scratch):
    @_fuzz_settings("image_generated")
    @given(data=image_files(), dataset=st.sampled_from(["mnist", "cifar10", "digits"]))
    def run(data: bytes, dataset: str) -> None:
        exercise("image_generated", scratch / "picture", data, _read_image(dataset),
                 DatasetFormatError)

    run()


def test_read_image_file_mutated(scratch):
    @_fuzz_settings("image_mutated")
    @given(data=mutations_of(IMAGE_SEEDS, header=48),
           dataset=st.sampled_from(["mnist", "cifar10"]))
    def run(data: bytes, dataset: str) -> None:
        exercise("image_mutated", scratch / "picture", data, _read_image(dataset),
                 DatasetFormatError)

    run()


def _png(width: int, height: int, body: bytes = b"") -> bytes:
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height", [(10**5, 10**5), (2**31 - 1, 1), (20000, 20000),
                                           (9000, 9000)])
def test_image_claiming_billions_of_pixels_is_refused_before_decoding(scratch, width, height):
    import zlib

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    exercise("image_claims", scratch / "bomb.png", _png(width, height, zlib.compress(bytes(4096))),
             _read_image("mnist"), DatasetFormatError)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
    assert grown_mb < 64, f"peak RSS grew by {grown_mb:.0f} MB"


# ----- checkpoints ------------------------------------------------------------------------------
def _tiny_model() -> nn.Module:
    wally.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * 4 * 4, 3))


def _checkpoint_seeds(folder: Path) -> list[bytes]:
    from wally.models import get_model

    seeds = []
    for index, (build, kind) in enumerate([(_tiny_model, "sgd"), (_tiny_model, "adam"),
                                           (lambda: get_model("lenet", input_size=12,
                                                              num_classes=2), "sgd")]):
        model = build()
        optimizer = (optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if kind == "sgd"
                     else optim.Adam(model.parameters(), lr=0.01))
        x = wally.randn(2, *((1, 6, 6) if index < 2 else (1, 12, 12)))
        loss = model(x).sum()
        loss.backward()
        optimizer.step()
        path = folder / f"seed{index}.safetensors"
        save_checkpoint(path, model, optimizer, epoch=1, step=3,
                        extra={"dataset": "mnist", "classes": ["a", "b", "c"], "fit": {
                            "history": [{"epoch": 1, "train_loss": 0.5}], "batches_done": 2}})
        seeds.append(path.read_bytes())
    return seeds


LOAD_MODES = ["rebuild", "model", "model+sgd", "model+adam"]


def _loader(mode: str) -> Callable[[Path], Any]:
    """Rebuild the model from the file's own config (so the config's JSON is acted on too), or
    load into a model (and an optimizer) built here, as resuming does."""
    if mode == "rebuild":
        return load_checkpoint

    def load(path: Path) -> Any:
        model = _tiny_model()
        optimizer = None
        if mode == "model+sgd":
            optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        elif mode == "model+adam":
            optimizer = optim.Adam(model.parameters(), lr=0.01)
        return load_checkpoint(path, model=model, optimizer=optimizer, strict=True)

    return load


@pytest.fixture(scope="module")
def checkpoint_seeds(tmp_path_factory) -> list[bytes]:
    return _checkpoint_seeds(tmp_path_factory.mktemp("seeds"))


def _safetensors(header: Any, body: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + body


JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.sampled_from([0, 1, -1, 3, 10**12, 2**63, -(2**63) - 1]),
    st.integers(-1000, 1000), st.floats(allow_nan=False), st.text(max_size=8),
    st.sampled_from(["F32", "F64", "I64", "U8", "BOOL", "F16", "BF16", "C64", "lenet",
                     "<f4", "|V8", "O", "<U3", "__tensor__", "wally.checkpoint"]))
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=6), st.sampled_from([
            "__tensor__", "__scalar__", "value", "__tuple__", "__items__", "name", "kwargs",
            "model_config", "optimizer", "state", "param_groups", "rng", "extra", "fit",
            "epoch", "step", "dtype", "shape", "data_offsets", "__metadata__"])),
            children, max_size=4)),
    max_leaves=12)


@st.composite
def safetensors_files(draw: Any) -> bytes:
    """A safetensors header of arbitrary tensor entries and wally metadata, and a body."""
    header: dict[str, Any] = {}
    offset = 0
    for index in range(draw(st.integers(0, 3))):
        shape = draw(st.lists(st.one_of(st.integers(0, 4), st.sampled_from(INTERESTING_64)),
                              max_size=4))
        dtype = draw(st.sampled_from(["F32", "F64", "I64", "U8", "BOOL", "F16", "X9"]))
        length = draw(st.one_of(st.integers(0, 64), st.sampled_from(INTERESTING_64)))
        name = draw(st.sampled_from([f"{index}.weight", "__optim__.state.0.momentum_buffer",
                                     "__rng__.wally.state", "0.weight", "1.running_mean"]))
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + length]}
        offset += length if length < 4096 else 0
    if draw(st.booleans()):
        payload = draw(JSON_VALUES)
        metadata = {"format": draw(st.sampled_from(["wally.checkpoint", "other"])),
                    "wally": json.dumps(payload) if draw(st.booleans()) else draw(
                        st.text(max_size=20))}
        header["__metadata__"] = metadata if draw(st.integers(0, 9)) else draw(JSON_VALUES)
    body = bytes(min(offset, 4096)) + draw(st.binary(max_size=16))
    return _safetensors(header, body)


def _nested(depth: int) -> Any:
    """Lists nested ``50 * depth`` deep (fresh objects on every call)."""
    node: list[Any] = []
    for _ in range(50 * depth):
        node = [node]
    return node


@st.composite
def metadata_variants(draw: Any, seeds: list[bytes]) -> bytes:
    """A valid checkpoint whose wally metadata JSON has a node replaced by anything, or is
    nested hundreds deep: the file stays valid safetensors, the metadata becomes hostile."""
    seed = draw(st.sampled_from(seeds))
    length = struct.unpack("<Q", seed[:8])[0]
    header = json.loads(seed[8:8 + length])
    body = seed[8 + length:]
    payload = json.loads(header["__metadata__"]["wally"])
    for _ in range(draw(st.integers(1, 3))):
        path = []
        node = payload
        while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict)
                                       else list(range(len(node)))))
            path.append(key)
            node = node[key]
        replacement = draw(st.one_of(JSON_VALUES, st.integers(1, 12).map(_nested)))
        if not path:
            payload = replacement
            continue
        parent = payload
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = replacement
    if draw(st.integers(0, 9)) == 0:
        text = "[" * 100000  # deeper than any JSON parser recurses
    else:
        text = json.dumps(payload)
    header["__metadata__"]["wally"] = text
    return _safetensors(header, body)


def test_load_checkpoint_generated(scratch):
    @_fuzz_settings("checkpoint_generated")
    @given(data=safetensors_files(), mode=st.sampled_from(LOAD_MODES))
    def run(data: bytes, mode: str) -> None:
        exercise("checkpoint_generated", scratch / "model.safetensors", data,
                 _loader(mode), CheckpointError)

    run()


def test_load_checkpoint_mutated(scratch, checkpoint_seeds):
    @_fuzz_settings("checkpoint_mutated")
    @given(data=mutations_of(checkpoint_seeds, header=2048), mode=st.sampled_from(LOAD_MODES))
    def run(data: bytes, mode: str) -> None:
        exercise("checkpoint_mutated", scratch / "model.safetensors", data,
                 _loader(mode), CheckpointError)

    run()


def test_load_checkpoint_metadata(scratch, checkpoint_seeds):
    @_fuzz_settings("checkpoint_metadata")
    @given(data=metadata_variants(checkpoint_seeds), mode=st.sampled_from(LOAD_MODES))
    def run(data: bytes, mode: str) -> None:
        exercise("checkpoint_metadata", scratch / "model.safetensors", data,
                 _loader(mode), CheckpointError)

    run()


def test_checkpoint_header_claiming_a_huge_tensor_is_refused_before_allocating(scratch):
    peaks = []
    for length in (2**40, 2**63 - 1, 2**64 - 1):
        data = struct.pack("<Q", length) + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
        peaks.append(exercise("checkpoint_claims", scratch / "huge.safetensors", data + bytes(4),
                              load_checkpoint, CheckpointError))
    header = {"w": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}}
    peaks.append(exercise("checkpoint_claims", scratch / "huge.safetensors",
                          _safetensors(header, bytes(64)), load_checkpoint, CheckpointError))
    assert max(peaks) < 1 << 20


# ----- metrics.jsonl ----------------------------------------------------------------------------
METRICS_SEED = "".join(json.dumps(record) + "\n" for record in [
    {"epoch": 1, "step": 8, "lr": 0.1, "train_loss": 2.46, "train_accuracy": 0.08,
     "examples_per_s": 1619.5, "seconds": 0.04, "val_loss": 2.36, "val_accuracy": 0.125},
    {"epoch": 2, "step": 16, "lr": 0.1, "train_loss": float("nan"), "train_accuracy": None,
     "examples_per_s": 2056.8, "seconds": 0.03, "val_loss": 2.44, "val_accuracy": 0.125},
]).encode()


@st.composite
def metrics_files(draw: Any) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 4))
        if kind == 0:
            lines.append(json.dumps(draw(JSON_VALUES)).encode())
        elif kind == 1:
            lines.append(draw(st.binary(max_size=40)))
        elif kind == 2:
            lines.append(draw(st.text(max_size=40)).encode("utf-8", "surrogatepass"))
        elif kind == 3:
            depth = draw(st.integers(1, 5000))
            lines.append(b"{\"a\":" * depth + b"1" + b"}" * depth)
        else:
            lines.append(b"[" * draw(st.integers(1, 100000)))
    data = b"\n".join(lines)
    return data + (b"\n" if draw(st.booleans()) else b"")


def test_read_metrics_generated(scratch):
    @_fuzz_settings("metrics_generated")
    @given(data=metrics_files())
    def run(data: bytes) -> None:
        exercise("metrics_generated", scratch / "metrics.jsonl", data, read_metrics,
                 MetricsFormatError)

    run()


def test_read_metrics_mutated(scratch):
    @_fuzz_settings("metrics_mutated")
    @given(data=mutations_of([METRICS_SEED], header=len(METRICS_SEED)))
    def run(data: bytes) -> None:
        exercise("metrics_mutated", scratch / "metrics.jsonl", data, read_metrics,
                 MetricsFormatError)

    run()


def test_metrics_line_longer_than_the_bound_is_refused_without_reading_it_whole(scratch):
    from wally.io.metrics import MAX_LINE_BYTES

    data = b'{"epoch": 1, "x": "' + b"a" * (8 * MAX_LINE_BYTES) + b'"}\n'
    peak = exercise("metrics_claims", scratch / "metrics.jsonl", data, read_metrics,
                    MetricsFormatError)
    assert peak < 4 * MAX_LINE_BYTES


def test_a_torn_last_metrics_line_is_skipped(scratch):
    path = scratch / "torn.jsonl"
    path.write_bytes(METRICS_SEED + b'{"epoch": 3, "step": 2')
    assert [r["epoch"] for r in read_metrics(path)] == [1, 2]


def test_report(capsys):
    """Print the counts (and write them to the report): runs after the tests above."""
    per_parser: Counter[str] = Counter()
    for name, count in COUNTS.items():
        per_parser[name.rsplit("_", 1)[0]] += count
    with capsys.disabled():
        print(f"\n[reliability] fuzz inputs per parser: {dict(sorted(per_parser.items()))}",
              file=sys.stderr)
    if all(k in COUNTS for k in MAX_EXAMPLES):
        for parser in ("idx", "cifar", "image", "checkpoint", "metrics"):
            assert per_parser[parser] >= 10000, (parser, per_parser[parser])

