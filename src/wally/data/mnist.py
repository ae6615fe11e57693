"""MNIST and Fashion-MNIST, read from their IDX files (gzipped or not).

The IDX format: two zero bytes, a dtype code, the number of dimensions ``d``; then ``d``
big-endian uint32 sizes; then the values, big-endian, row-major. Every claim the header makes is
checked against the file before memory is allocated for it, so a corrupt or hostile file is
refused with a message instead of a crash or a huge allocation.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from wally.backend import ndarray, xp
from wally.data.download import DOWNLOAD_HINT, dataset_folder, download, not_found_message
from wally.data.errors import DatasetFormatError, DatasetNotFoundError
from wally.data.vision import VisionDataset
from wally.io.files import open_regular

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MAX_DIMS = 8
# DEFLATE cannot expand data more than about 1032-fold: a gzip file claiming more is lying.
_MAX_DEFLATE_RATIO = 1032
_CHUNK = 1 << 20


MAX_IDX_BYTES = 1 << 30
"""The most data an IDX file may hold (1 GiB, decompressed; MNIST's training images are 47 MB):
a larger header, or a larger file, is refused before anything is read."""


def read_idx(path: str | os.PathLike[str], expected_ndim: int | None = None) -> ndarray:
    """Read an IDX file (``.gz`` or raw, told apart by content) into a native-endian array.

    The file must be a regular file (:func:`wally.io.files.open_regular`: a FIFO or a device is
    refused before reading) of at most :data:`MAX_IDX_BYTES` bytes after the header.

    Raises :class:`~wally.data.DatasetFormatError` for a wrong magic number, an unknown dtype
    code, an unexpected number of dimensions, a dimension of size 0, a header that claims more
    (or less) data than the file holds or than :data:`MAX_IDX_BYTES` (checked before
    allocating), or a truncated or corrupt gzip stream; ``RefusedFileError`` for what is not a
    regular file or is larger than the limit.

    >>> read_idx("train-labels-idx1-ubyte.gz", expected_ndim=1).shape  # doctest: +SKIP
    (60000,)
    """
    path = Path(path)
    header_room = 4 + 4 * _MAX_DIMS
    with open_regular(path, "IDX", MAX_IDX_BYTES + header_room) as raw:
        size = os.fstat(raw.fileno()).st_size
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        try:
            stream: Any
            with (gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw) as stream:
                dims, dtype = _read_header(stream, path, expected_ndim)
                header_bytes = 4 + 4 * len(dims)
                nbytes = math.prod(dims) * dtype.itemsize
                if nbytes > MAX_IDX_BYTES:
                    raise DatasetFormatError(
                        f"{path}: the header declares shape {dims} ({nbytes:,} bytes of data), "
                        f"over wally's IDX limit of {MAX_IDX_BYTES:,} bytes"
                    )
                if compressed:
                    if nbytes > size * _MAX_DEFLATE_RATIO:
                        raise DatasetFormatError(
                            f"{path}: the header declares shape {dims} ({nbytes} bytes of "
                            f"data), more than a {size}-byte gzip file can hold"
                        )
                    buffer = _read_bounded(stream, nbytes, path, dims)
                else:
                    available = size - header_bytes
                    if nbytes != available:
                        raise DatasetFormatError(
                            f"{path}: the header declares shape {dims} ({nbytes} bytes of data), "
                            f"but the file holds {available} bytes after the header"
                            + (" (truncated?)" if nbytes > available else "")
                        )
                    buffer = bytearray(nbytes)
                    if stream.readinto(buffer) != nbytes or stream.read(1):
                        raise DatasetFormatError(f"{path}: file changed while being read")
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise DatasetFormatError(
                f"{path}: corrupt or truncated gzip data ({error})") from error
    try:
        array = xp.frombuffer(buffer, dtype=dtype).reshape(dims)
    except ValueError as error:  # a shape NumPy refuses
        raise DatasetFormatError(f"{path}: cannot hold shape {dims} ({error})") from None
    return array.astype(dtype.newbyteorder("="), copy=False) if dtype.itemsize > 1 else array


def _read_header(stream: IO[bytes], path: Path,
                 expected_ndim: int | None) -> tuple[tuple[int, ...], Any]:
    magic = stream.read(4)
    if len(magic) < 4:
        raise DatasetFormatError(f"{path}: truncated IDX header ({len(magic)} bytes)")
    if magic[:2] != b"\x00\x00":
        raise DatasetFormatError(
            f"{path}: not an IDX file (magic number 0x{magic.hex()} does not start with 0x0000)"
        )
    code, ndim = magic[2], magic[3]
    if code not in _IDX_DTYPES:
        raise DatasetFormatError(
            f"{path}: unknown IDX dtype code 0x{code:02x} (expected one of "
            f"{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})"
        )
    if expected_ndim is not None and ndim != expected_ndim:
        raise DatasetFormatError(f"{path}: expected {expected_ndim} dimensions, the header "
                                 f"declares {ndim}")
    if not 1 <= ndim <= _MAX_DIMS:
        raise DatasetFormatError(f"{path}: the header declares {ndim} dimensions")
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DatasetFormatError(f"{path}: truncated IDX header (dimension sizes missing)")
    dims = struct.unpack(f">{ndim}I", sizes)
    if 0 in dims:
        raise DatasetFormatError(f"{path}: the header declares shape {dims}, expected no "
                                 "dimension of size 0")
    return dims, xp.dtype(_IDX_DTYPES[code])


def _read_bounded(stream: IO[bytes], nbytes: int, path: Path,
                  dims: tuple[int, ...]) -> bytearray:
    """Read exactly ``nbytes`` in chunks, so memory grows with the data actually present."""
    buffer = bytearray()
    while len(buffer) < nbytes:
        chunk = stream.read(min(_CHUNK, nbytes - len(buffer)))
        if not chunk:
            raise DatasetFormatError(
                f"{path}: the header declares shape {dims} ({nbytes} bytes of data), but the "
                f"file holds only {len(buffer)} bytes after the header (truncated?)"
            )
        buffer += chunk
    if stream.read(1):
        raise DatasetFormatError(f"{path}: data continues past the {nbytes} bytes the header "
                                 f"declares for shape {dims}")
    return buffer


def _check_labels(labels: ndarray, classes: int, path: Path) -> None:
    """Refuse a label outside ``0 .. classes − 1``, naming the file, the index and the value."""
    bad = xp.flatnonzero(labels >= classes)
    if len(bad):
        index = int(bad[0])
        raise DatasetFormatError(
            f"{path}: label {int(labels[index])} at index {index}, expected 0..{classes - 1} "
            f"({len(bad):,} labels out of range)")


class MNIST(VisionDataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 28×28 grey.

    Args:
        root: the parent folder; files are in ``<root>/MNIST`` (or its ``raw/`` subfolder, as
            torchvision lays them out). Default: ``$WALLY_DATA/MNIST``, else
            ``$XDG_CACHE_HOME/wally/MNIST``, else ``~/.cache/wally/MNIST``.
        train: the training split (else the test split).
        transform: applied to each image, a uint8 ``(28, 28)`` array; default ``ToTensor()``
            (float32 ``(1, 28, 28)`` in [0, 1]).
        target_transform: applied to each label (a Python int).
        download: fetch missing files from ``mirrors`` (checksums verified). Without network, or
            with ``download=False``, missing files raise :class:`DatasetNotFoundError` saying
            what to put where. Files already found (in the folder, or in a ``system_folders``
            entry) are never downloaded.

    ``data`` is uint8 ``(N, 28, 28)`` and ``targets`` int64 ``(N,)``. The files are checked as
    they are read (:func:`read_idx`), and so are the labels: one outside ``0 .. 9`` is refused
    with a :class:`DatasetFormatError` naming the file, its index and its value.

    >>> train = MNIST(train=True, download=True)  # doctest: +SKIP
    >>> image, label = train[0]; image.shape, label  # doctest: +SKIP
    ((1, 28, 28), 5)
    """

    name = "MNIST"
    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    resources = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    system_package = ""
    """The Debian package that installs the files in ``system_folders``, named in the message
    for missing files."""
    system_folders: list[Path] = []
    """Folders searched after ``<root>/<name>`` and its ``raw/``: where an operating-system
    package installs the same files (read with the same checks, never written to)."""
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root: str | os.PathLike[str] | None = None, train: bool = True,
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None,
                 download: bool = False) -> None:
        self.folder = dataset_folder(self.name, root)
        super().__init__(self.folder, transform, target_transform)
        self.train = train
        prefix = "train" if train else "t10k"
        image_path, label_path = self._files([f"{prefix}-images-idx3-ubyte",
                                              f"{prefix}-labels-idx1-ubyte"], download)
        images = read_idx(image_path, expected_ndim=3)
        labels = read_idx(label_path, expected_ndim=1)
        if images.dtype != xp.uint8 or labels.dtype != xp.uint8:
            raise DatasetFormatError(f"{self.name}: expected uint8 images and labels, got "
                                     f"{images.dtype} in {image_path} and {labels.dtype} in "
                                     f"{label_path}")
        if len(images) != len(labels):
            raise DatasetFormatError(f"{self.name}: {image_path} holds {len(images)} images but "
                                     f"{label_path} holds {len(labels)} labels")
        _check_labels(labels, len(self.classes), label_path)
        self.data = images
        self.targets = labels.astype(xp.int64)

    def _files(self, stems: list[str], download_missing: bool) -> list[Path]:
        """Each stem's file, gzipped or not, in the folder or its ``raw/``; downloading the
        missing ones if asked (and only then touching the network)."""
        found = {stem: self._find(stem) for stem in stems}
        missing = [stem for stem, path in found.items() if path is None]
        if missing and download_missing:
            md5 = dict(self.resources)
            errors = []
            for stem in missing:
                urls = [mirror + stem + ".gz" for mirror in self.mirrors]
                try:
                    found[stem] = download(urls, self.folder / (stem + ".gz"),
                                           md5=md5.get(stem + ".gz"), max_bytes=MAX_IDX_BYTES)
                except ConnectionError as error:
                    errors.append(str(error))
                    break  # offline or blocked: the other files would only time out as well
            if errors:
                raise DatasetNotFoundError(self._not_found(
                    "the files are missing and could not be downloaded:\n" + "\n".join(errors)))
        elif missing:
            raise DatasetNotFoundError(self._not_found(
                f"dataset files not found in {self.folder} ({DOWNLOAD_HINT})"))
        return [path for path in found.values() if path is not None]

    def _find(self, stem: str) -> Path | None:
        for folder in (self.folder, self.folder / "raw", *self.system_folders):
            for name in (stem, stem + ".gz"):
                if (folder / name).exists():  # read_idx refuses what is not a regular file
                    return folder / name
        return None

    def _not_found(self, reason: str) -> str:
        """The message for missing files: every file of the dataset that is missing, both
        splits', so that one round of copying fixes it."""
        stems = [name.removesuffix(".gz") for name, _ in self.resources]
        files = {stem + ".gz": [mirror + stem + ".gz" for mirror in self.mirrors]
                 for stem in stems if self._find(stem) is None}
        extra = "(gzipped as downloaded, or unpacked without the .gz)"
        if self.system_package:
            extra += (f"\nor install the {self.system_package} package (apt-get install "
                      f"{self.system_package}), whose files are found in "
                      f"{', '.join(map(str, self.system_folders))}")
        return not_found_message(self.name, self.folder, files, reason, extra=extra)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes, ten kinds of clothing.

    Same arguments as :class:`MNIST`; files live in ``<root>/FashionMNIST`` (or its ``raw/``).
    Where neither holds them, the copy that Debian's ``dataset-fashion-mnist`` package installs
    is used (``apt-get install dataset-fashion-mnist`` puts the four ``.gz`` files in
    ``/usr/share/datasets/fashion-mnist``): offline, with ``download=True`` as well, since it is
    the same data (Debian recompressed the files, so their MD5s differ from the published
    ones; what they hold is checked as it is read, as for any file).

    >>> FashionMNIST(root="../data", train=False, download=True).classes[0]  # doctest: +SKIP
    'T-shirt/top'
    """

    name = "FashionMNIST"
    mirrors = [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ]
    resources = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    system_package = "dataset-fashion-mnist"
    system_folders = [Path("/usr/share/datasets/fashion-mnist")]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
