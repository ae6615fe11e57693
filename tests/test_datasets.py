"""MNIST / Fashion-MNIST / CIFAR-10 parsing, downloads and Digits (wally.data).

Nothing here touches the network: the tests write small IDX files, CIFAR-10 binary files and
archives themselves, and downloads go to ``file://`` mirrors or a fake ``urlopen``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import tarfile
import time
import tracemalloc
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import wally
from wally.data import (
    CIFAR10,
    MNIST,
    ChecksumError,
    DataLoader,
    DatasetFormatError,
    DatasetNotFoundError,
    Digits,
    FashionMNIST,
    default_collate,
)
from wally.data import download as download_module
from wally.data import transforms as T
from wally.data.cifar import read_cifar_binary
from wally.data.mnist import read_idx

# ----- writing the formats -----------------------------------------------------------------------
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i2"): 0x0B, np.dtype(">f4"): 0x0D}


def idx_bytes(array: np.ndarray, dims=None, code=None, magic=b"\x00\x00") -> bytes:
    big_endian = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else (
        array)
    code = IDX_CODES[big_endian.dtype] if code is None else code
    dims = array.shape if dims is None else dims
    header = magic + bytes([code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return header + big_endian.tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def mnist_arrays(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, size=n, dtype=np.uint8))


def write_mnist(folder: Path, prefix="train", n=12, gz=False, seed=0):
    images, labels = mnist_arrays(n, seed)
    suffix = ".gz" if gz else ""
    write(folder / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), gz)
    write(folder / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz)
    return images, labels


def cifar_records(n, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    planes = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)  # R, G, B planes
    records = np.concatenate([labels[:, None], planes.reshape(n, -1)], axis=1)
    return records.tobytes(), planes.transpose(0, 2, 3, 1), labels


def cifar_files(n_per_batch=4):
    files, images, labels = {}, {}, {}
    for i, name in enumerate([f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]):
        files[name], images[name], labels[name] = cifar_records(n_per_batch, seed=i)
    return files, images, labels


def make_tar(path: Path, members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a URL fails the test."""
    calls = []

    def refuse(url, timeout):
        calls.append(url)
        raise AssertionError(f"the network was touched: {url}")

    monkeypatch.setattr(download_module, "urlopen", refuse)
    return calls


@pytest.fixture
def offline(monkeypatch):
    """Every URL fails as it does without a network."""
    calls = []

    def unreachable(url, timeout):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download_module, "urlopen", unreachable)
    return calls


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".part"))


# ----- IDX parsing -------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    images, _ = mnist_arrays(3)
    path = write(tmp_path / "images", idx_bytes(images), gz)
    np.testing.assert_array_equal(read_idx(path, expected_ndim=3), images)
    values = np.arange(-6, 6, dtype=np.int16).reshape(3, 4) * 1000
    out = read_idx(write(tmp_path / "shorts", idx_bytes(values), gz))
    assert out.dtype == np.int16 and out.dtype.isnative
    np.testing.assert_array_equal(out, values)
    floats = np.linspace(-1, 1, 5, dtype=np.float32)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "f", idx_bytes(floats), gz)), floats)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("make, message", [
    (lambda a: idx_bytes(a, magic=b"\x08\x03"), "magic number"),
    (lambda a: idx_bytes(a, code=0x07), "dtype code 0x07"),
    (lambda a: idx_bytes(a)[:3], "truncated IDX header"),
    (lambda a: idx_bytes(a)[:10], "dimension sizes missing"),
    (lambda a: idx_bytes(a)[:-5], "truncated"),
    (lambda a: idx_bytes(a) + b"\x00", "past|holds 2353"),
    (lambda a: idx_bytes(a, dims=(3, 28, 28, 1, 1)), "expected 3 dimensions"),
])
def test_read_idx_refuses_bad_files(tmp_path, gz, make, message):
    images, _ = mnist_arrays(3)
    path = write(tmp_path / "bad", make(images), gz)
    with pytest.raises(DatasetFormatError, match=message) as info:
        read_idx(path, expected_ndim=3)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_header_claiming_a_billion_images_is_refused_before_allocating(tmp_path, gz):
    data = idx_bytes(np.zeros((1, 28, 28), np.uint8)[:, :2, :2], dims=(10**9, 28, 28))[:100]
    path = write(tmp_path / "huge", data, gz)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DatasetFormatError, match="1000000000"):
            read_idx(path, expected_ndim=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 4 * 2**20  # a 784 GB claim, a few KiB read


def test_corrupt_gzip_is_a_format_error(tmp_path):
    images, _ = mnist_arrays(2)
    compressed = gzip.compress(idx_bytes(images))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DatasetFormatError, match="corrupt or truncated gzip|truncated"):
        read_idx(path)


# ----- MNIST and Fashion-MNIST -------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_local_files(tmp_path, no_network, gz):
    images, labels = write_mnist(tmp_path / "MNIST", "train", gz=gz)
    test_images, _ = write_mnist(tmp_path / "MNIST", "t10k", n=5, gz=gz, seed=1)
    train = MNIST(root=tmp_path, train=True)
    assert len(train) == 12 and train.data.dtype == np.uint8 and train.data.shape == (12, 28, 28)
    assert train.targets.dtype == np.int64
    np.testing.assert_array_equal(train.data, images)
    image, label = train[3]
    assert isinstance(image, wally.Tensor) and image.shape == (1, 28, 28)
    assert image.dtype == wally.float32 and isinstance(label, int) and label == labels[3]
    np.testing.assert_array_equal(image.numpy()[0], images[3] / np.float32(255))
    test = MNIST(root=tmp_path, train=False)
    np.testing.assert_array_equal(test.data, test_images)
    assert no_network == []


def test_mnist_torchvision_layout_and_transforms(tmp_path, no_network):
    _, labels = write_mnist(tmp_path / "MNIST" / "raw", "t10k", n=6, gz=True)
    dataset = MNIST(root=tmp_path, train=False, transform=T.Compose([T.ToTensor()]),
                    target_transform=lambda y: y + 100)
    assert dataset[0][1] == labels[0] + 100
    assert "Number of datapoints: 6" in repr(dataset)


def test_mnist_default_folder_honours_environment(tmp_path, monkeypatch, no_network):
    write_mnist(tmp_path / "wally-data" / "MNIST", "t10k", n=2)
    monkeypatch.setenv("WALLY_DATA", str(tmp_path / "wally-data"))
    assert len(MNIST(train=False)) == 2
    monkeypatch.delenv("WALLY_DATA")
    write_mnist(tmp_path / "xdg" / "wally" / "MNIST", "t10k", n=3)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert len(MNIST(train=False)) == 3
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_mnist(tmp_path / "home" / ".cache" / "wally" / "MNIST", "t10k", n=4)
    assert len(MNIST(train=False)) == 4


def test_fashion_mnist_has_its_own_folder(tmp_path, no_network, monkeypatch):
    monkeypatch.setattr(FashionMNIST, "system_folders", [])  # not the Debian package's copy
    write_mnist(tmp_path / "MNIST", "train")
    with pytest.raises(DatasetNotFoundError):
        FashionMNIST(root=tmp_path)
    write_mnist(tmp_path / "FashionMNIST", "train", n=4)
    fashion = FashionMNIST(root=tmp_path)
    assert len(fashion) == 4 and fashion.classes[0] == "T-shirt/top"


def test_mnist_label_count_mismatch(tmp_path):
    images, labels = mnist_arrays(5)
    write(tmp_path / "MNIST" / "train-images-idx3-ubyte", idx_bytes(images))
    write(tmp_path / "MNIST" / "train-labels-idx1-ubyte", idx_bytes(labels[:4]))
    with pytest.raises(DatasetFormatError, match="5 images but .* 4 labels"):
        MNIST(root=tmp_path)


def test_mnist_fast_loader_path_equals_per_item_path(tmp_path):
    write_mnist(tmp_path / "MNIST", "train", n=23)
    for transform in (None, T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])):
        dataset = MNIST(root=tmp_path, transform=transform)
        wally.manual_seed(0)
        fast = [[f.numpy() for f in b] for b in DataLoader(dataset, batch_size=5, shuffle=True)]
        wally.manual_seed(0)
        slow = [[f.numpy() for f in b] for b in DataLoader(
            dataset, batch_size=5, shuffle=True, collate_fn=lambda b: default_collate(b))]
        for (x_fast, y_fast), (x_slow, y_slow) in zip(fast, slow):
            assert x_fast.dtype == x_slow.dtype == np.float32 and x_fast.shape[1:] == (1, 28, 28)
            np.testing.assert_array_equal(x_fast, x_slow)
            np.testing.assert_array_equal(y_fast, y_slow)


# ----- missing data, downloads -------------------------------------------------------------------
def test_missing_mnist_without_download_says_what_to_put_where(tmp_path, no_network):
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(root=tmp_path, train=True)
    message = str(info.value)
    assert str(tmp_path / "MNIST") in message
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        assert name in message
        for mirror in MNIST.mirrors:
            assert mirror + name in message
    assert "download=True" in message
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, RuntimeError)


def test_missing_fashion_mnist_offline(tmp_path, offline, monkeypatch):
    monkeypatch.setattr(FashionMNIST, "system_folders", [])  # not the Debian package's copy
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST(root=tmp_path, train=False, download=True)
    message = str(info.value)
    assert str(tmp_path / "FashionMNIST") in message
    assert "Temporary failure in name resolution" in message
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        for mirror in FashionMNIST.mirrors:
            assert mirror + name in message
    # Every mirror was tried for the first file; then it stopped rather than time out again.
    assert offline == [mirror + "t10k-images-idx3-ubyte.gz" for mirror in FashionMNIST.mirrors]
    assert leftovers(tmp_path) == []
    assert not list((tmp_path / "FashionMNIST").glob("*ubyte*"))


def serve_mnist(tmp_path, monkeypatch, cls=MNIST, corrupt=False):
    """Put gzipped files on a file:// mirror and point ``cls`` at it (with their md5s)."""
    mirror = tmp_path / "mirror"
    images, labels = write_mnist(mirror, "train", gz=True)
    resources = [(path.name, hashlib.md5(path.read_bytes()).hexdigest())
                 for path in sorted(mirror.iterdir())]
    if corrupt:
        resources = [(name, "0" * 32) for name, _ in resources]
    monkeypatch.setattr(cls, "resources", resources)
    monkeypatch.setattr(cls, "mirrors", [mirror.as_uri() + "/"])
    return images, labels


def test_download_from_a_file_mirror_then_offline_reuse(tmp_path, monkeypatch):
    images, _ = serve_mnist(tmp_path, monkeypatch)
    root = tmp_path / "data"
    dataset = MNIST(root=root, download=True)
    np.testing.assert_array_equal(dataset.data, images)
    assert sorted(p.name for p in (root / "MNIST").iterdir()) == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]

    def refuse(url, timeout):
        raise AssertionError("network touched although the files are present")

    monkeypatch.setattr(download_module, "urlopen", refuse)
    np.testing.assert_array_equal(MNIST(root=root, download=True).data, images)


def test_download_falls_back_to_the_next_mirror(tmp_path, monkeypatch):
    serve_mnist(tmp_path, monkeypatch)
    real = download_module.urlopen
    monkeypatch.setattr(MNIST, "mirrors", ["https://unreachable.invalid/"] + MNIST.mirrors)

    def flaky(url, timeout):
        if "unreachable" in url:
            raise urllib.error.URLError("timed out")
        return real(url, timeout)

    monkeypatch.setattr(download_module, "urlopen", flaky)
    assert len(MNIST(root=tmp_path / "data", download=True)) == 12


def test_checksum_mismatch_removes_the_download(tmp_path, monkeypatch):
    serve_mnist(tmp_path, monkeypatch, corrupt=True)
    root = tmp_path / "data"
    with pytest.raises(ChecksumError, match="checksum mismatch.*expected md5 0000") as info:
        MNIST(root=root, download=True)
    assert "was not written" in str(info.value)
    assert leftovers(root) == []
    assert not (root / "MNIST" / "train-images-idx3-ubyte.gz").exists()


def test_checksum_mismatch_leaves_an_existing_file_intact(tmp_path, monkeypatch):
    source = write(tmp_path / "mirror" / "file.bin", b"new contents")
    destination = write(tmp_path / "dest" / "file.bin", b"old contents")
    with pytest.raises(ChecksumError):
        download_module.download([source.as_uri()], destination, md5="f" * 32)
    assert destination.read_bytes() == b"old contents"
    assert leftovers(tmp_path / "dest") == []
    good = hashlib.md5(b"new contents").hexdigest()
    download_module.download([source.as_uri()], destination, md5=good)
    assert destination.read_bytes() == b"new contents"


class Interrupted(io.BytesIO):
    def __init__(self, error):
        super().__init__(b"x" * (3 << 20))
        self.error = error
        self.reads = 0

    def read(self, size=-1):
        self.reads += 1
        if self.reads == 2:
            raise self.error
        return super().read(size)


@pytest.mark.parametrize("error", [ConnectionResetError("reset by peer"), KeyboardInterrupt()])
def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch, error):
    monkeypatch.setattr(download_module, "urlopen", lambda url, timeout: Interrupted(error))
    destination = tmp_path / "dest" / "big.gz"
    with pytest.raises(type(error) if isinstance(error, KeyboardInterrupt) else ConnectionError):
        download_module.download(["https://example.invalid/big.gz"], destination, md5="0" * 32)
    assert not destination.exists()
    assert leftovers(tmp_path / "dest") == []


# ----- CIFAR-10 ----------------------------------------------------------------------------------
def test_read_cifar_binary_decodes_records(tmp_path):
    data, images, labels = cifar_records(3)
    out_images, out_labels = read_cifar_binary(write(tmp_path / "b.bin", data))
    assert out_images.shape == (3, 32, 32, 3) and out_images.dtype == np.uint8
    assert out_labels.dtype == np.int64
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels, labels)
    # Record 0, pixel (0, 1): its red, green and blue bytes sit 1024 apart after the label.
    assert out_images[0, 0, 1].tolist() == [data[2], data[2 + 1024], data[2 + 2048]]


@pytest.mark.parametrize("data, message", [
    (b"", "0 bytes"),
    (b"\x00" * 3072, "3072 bytes is not a whole number of 3073-byte"),
    (b"\x00" * (2 * 3073 + 10), "10 bytes left over"),
    (b"\x0a" + b"\x00" * 3072, "label 10"),
])
def test_read_cifar_binary_refuses_bad_files(tmp_path, data, message):
    with pytest.raises(DatasetFormatError, match=message):
        read_cifar_binary(write(tmp_path / "bad.bin", data))


def test_cifar10_from_extracted_files(tmp_path, no_network):
    files, images, labels = cifar_files()
    for name, data in files.items():
        write(tmp_path / "CIFAR10" / "cifar-10-batches-bin" / name, data)
    train = CIFAR10(root=tmp_path, train=True)
    assert train.data.shape == (20, 32, 32, 3) and train.targets.shape == (20,)
    np.testing.assert_array_equal(train.data[4:8], images["data_batch_2.bin"])
    image, label = train[4]
    assert image.shape == (3, 32, 32) and image.dtype == wally.float32
    assert label == labels["data_batch_2.bin"][0]
    test = CIFAR10(root=tmp_path, train=False)
    np.testing.assert_array_equal(test.data, images["test_batch.bin"])


def trust(monkeypatch, archive: Path) -> Path:
    """Make ``archive`` (a small stand-in) the one whose MD5 CIFAR10 expects."""
    monkeypatch.setattr(CIFAR10, "archive_md5", hashlib.md5(archive.read_bytes()).hexdigest())
    return archive


def test_cifar10_extracts_the_archive(tmp_path, no_network, monkeypatch):
    files, images, _ = cifar_files()
    trust(monkeypatch, make_tar(
        tmp_path / "CIFAR10" / "cifar-10-binary.tar.gz",
        {f"cifar-10-batches-bin/{name}": data for name, data in files.items()}
        | {"cifar-10-batches-bin/batches.meta.txt": b"airplane\n"}))
    test = CIFAR10(root=tmp_path, train=False)
    np.testing.assert_array_equal(test.data, images["test_batch.bin"])
    assert (tmp_path / "CIFAR10" / "cifar-10-batches-bin" / "data_batch_5.bin").is_file()
    assert leftovers(tmp_path) == []


def traversal_members():
    dotdot = tarfile.TarInfo("cifar-10-batches-bin/../../evil.bin")
    dotdot.size = 1
    absolute = tarfile.TarInfo("/tmp/wally-evil.bin")
    absolute.size = 1
    link = tarfile.TarInfo("cifar-10-batches-bin/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return [("dotdot", dotdot), ("absolute", absolute), ("link", link)]


@pytest.mark.parametrize("kind, member", traversal_members())
def test_cifar10_archive_with_unsafe_member_is_refused(tmp_path, no_network, kind, member,
                                                      monkeypatch):
    files, _, _ = cifar_files()
    root = tmp_path / "root"
    trust(monkeypatch, make_tar(
        root / "CIFAR10" / "cifar-10-binary.tar.gz",
        {f"cifar-10-batches-bin/{name}": data for name, data in files.items()}, [member]))
    with pytest.raises(DatasetFormatError, match="refusing to extract"):
        CIFAR10(root=root, train=False)
    assert not (tmp_path / "evil.bin").exists() and not (root / "evil.bin").exists()
    assert not (root / "CIFAR10" / "cifar-10-batches-bin").exists()


def test_cifar10_missing_offline_names_url_file_and_folder(tmp_path, offline):
    with pytest.raises(DatasetNotFoundError) as info:
        CIFAR10(root=tmp_path, download=True)
    message = str(info.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in message
    assert "cifar-10-binary.tar.gz" in message and str(tmp_path / "CIFAR10") in message
    assert offline == ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]


def test_cifar10_download_from_a_file_mirror(tmp_path, monkeypatch):
    files, images, _ = cifar_files()
    archive = make_tar(tmp_path / "mirror" / "cifar-10-binary.tar.gz",
                       {f"cifar-10-batches-bin/{name}": data for name, data in files.items()})
    monkeypatch.setattr(CIFAR10, "mirrors", [(tmp_path / "mirror").as_uri() + "/"])
    monkeypatch.setattr(CIFAR10, "archive_md5", hashlib.md5(archive.read_bytes()).hexdigest())
    test = CIFAR10(root=tmp_path / "data", train=False, download=True)
    np.testing.assert_array_equal(test.data, images["test_batch.bin"])
    monkeypatch.setattr(CIFAR10, "archive_md5", "0" * 32)
    with pytest.raises(ChecksumError):
        CIFAR10(root=tmp_path / "other", train=False, download=True)
    assert leftovers(tmp_path / "other") == []


# ----- Digits ------------------------------------------------------------------------------------
def test_digits_shapes_and_deterministic_split():
    pytest.importorskip("sklearn", reason="scikit-learn is not installed: pip install "
                                          "scikit-learn")
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) + len(test) == 1797 and len(test) == 360
    assert train.data.dtype == np.float32 and train.data.shape == (1437, 8, 8)
    assert 0 <= train.data.min() and train.data.max() == 1
    assert set(train.indices.tolist()).isdisjoint(test.indices.tolist())
    image, label = train[0]
    assert image.shape == (1, 8, 8) and image.dtype == wally.float32 and 0 <= label <= 9
    np.testing.assert_array_equal(Digits(train=True).indices, train.indices)
    assert not np.array_equal(Digits(train=True, seed=1).indices, train.indices)
    assert len(Digits(train=False, test_fraction=0.5)) == 899
    batches = list(DataLoader(train, batch_size=100, shuffle=True))
    assert batches[0][0].shape == (100, 1, 8, 8) and batches[0][1].dtype == wally.int64
    with pytest.raises(ValueError, match="test_fraction"):
        Digits(test_fraction=1.0)


def test_digits_without_scikit_learn_names_what_to_install(monkeypatch):
    import sys

    from wally.data.digits import _load_digits

    _load_digits.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"scikit-learn.*wally-cnn\[data\]"):
        Digits()


def test_dataset_folder_helper(tmp_path, monkeypatch):
    monkeypatch.delenv("WALLY_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert download_module.dataset_folder("CIFAR10", None) == tmp_path / "wally" / "CIFAR10"
    assert download_module.dataset_folder("CIFAR10", "~/d") == Path(
        os.path.expanduser("~/d")) / "CIFAR10"
