"""CIFAR-10 from its *binary* distribution (no pickle is ever loaded).

``cifar-10-binary.tar.gz`` holds ``cifar-10-batches-bin/data_batch_1.bin`` … ``_5.bin`` and
``test_batch.bin``: 3073-byte records, one label byte then 3 × 1024 bytes (the red, green and blue
32×32 planes, row-major). The archive is extracted member by member with our own writes; any
member that would land outside the folder (absolute names, ``..``) or is a link or device makes
the whole archive refused.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from wally.backend import ndarray, xp
from wally.data.download import dataset_folder, download, not_found_message
from wally.data.errors import DatasetFormatError, DatasetNotFoundError
from wally.data.vision import VisionDataset

RECORD_BYTES = 1 + 3 * 32 * 32
_CHUNK = 1 << 20


def read_cifar_binary(path: str | os.PathLike[str]) -> tuple[ndarray, ndarray]:
    """Images uint8 ``(N, 32, 32, 3)`` and labels int64 ``(N,)`` from one CIFAR-10 ``.bin`` file.

    Raises :class:`~wally.data.DatasetFormatError` if the file is empty, its length is not a
    multiple of 3073 bytes, or a label is not in 0..9.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0 or size % RECORD_BYTES:
        raise DatasetFormatError(
            f"{path}: {size} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 records "
            f"({size // RECORD_BYTES} records and {size % RECORD_BYTES} bytes left over)"
        )
    buffer = bytearray(size)
    with open(path, "rb") as stream:
        if stream.readinto(buffer) != size:
            raise DatasetFormatError(f"{path}: file changed while being read")
    records = xp.frombuffer(buffer, dtype=xp.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(xp.int64)
    if labels.max() > 9:
        bad = int(xp.argmax(labels > 9))
        raise DatasetFormatError(f"{path}: record {bad} has label {labels[bad]}, expected 0..9")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return xp.ascontiguousarray(images), labels


def _check_member(member: tarfile.TarInfo, archive: Path) -> PurePosixPath:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or member.name.startswith(("/", "\\")) or (
            "\\" in member.name):
        raise DatasetFormatError(f"{archive}: refusing to extract member {member.name!r}, whose "
                                 "path leads outside the destination folder")
    if not (member.isfile() or member.isdir()):
        raise DatasetFormatError(f"{archive}: refusing to extract member {member.name!r}, which "
                                 "is a link or a special file")
    return name


def extract_members(archive: str | os.PathLike[str], destination: str | os.PathLike[str],
                    wanted: set[str]) -> list[Path]:
    """Extract the regular files named in ``wanted`` (paths inside the archive) from a tar
    archive into ``destination``, each written to a temporary file and renamed into place.

    Every member is checked first: one with an absolute path, a ``..`` component, or that is a
    link or special file makes the whole archive refused with a
    :class:`~wally.data.DatasetFormatError`.
    """
    archive, destination = Path(archive), Path(destination)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            selected = []
            for member in members:
                name = _check_member(member, archive)
                if member.isfile() and str(name) in wanted:
                    selected.append((member, name))
            missing = wanted - {str(name) for _, name in selected}
            if missing:
                raise DatasetFormatError(f"{archive}: the archive lacks {sorted(missing)}")
            written = []
            for member, name in selected:
                target = destination.joinpath(*name.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # regular files always have a stream
                _write_atomically(source, target)
                written.append(target)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DatasetFormatError(f"{archive}: corrupt or truncated archive ({error})") from error
    return written


def _write_atomically(source: Any, target: Path) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                         dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in iter(lambda: source.read(_CHUNK), b""):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


class CIFAR10(VisionDataset):
    """CIFAR-10: 50,000 training and 10,000 test colour images, 32×32, ten classes.

    Args:
        root: the parent folder; files are in ``<root>/CIFAR10``: either the archive
            ``cifar-10-binary.tar.gz`` or its extracted ``cifar-10-batches-bin/`` folder.
            Default: ``$WALLY_DATA/CIFAR10``, else ``$XDG_CACHE_HOME/wally/CIFAR10``, else
            ``~/.cache/wally/CIFAR10``.
        train: the five training batches (else the test batch).
        transform: applied to each image, a uint8 ``(32, 32, 3)`` array; default
            ``ToTensor()`` (float32 ``(3, 32, 32)`` in [0, 1]).
        target_transform: applied to each label (a Python int).
        download: fetch the archive (MD5 verified) if neither it nor the extracted files are
            there. Missing files otherwise raise :class:`DatasetNotFoundError`.

    ``data`` is uint8 ``(N, 32, 32, 3)`` and ``targets`` int64 ``(N,)``.

    >>> test = CIFAR10(root="../data", train=False, download=True)  # doctest: +SKIP
    >>> test.data.shape, test.classes[test[0][1]]  # doctest: +SKIP
    ((10000, 32, 32, 3), 'cat')
    """

    name = "CIFAR10"
    mirrors = ["https://www.cs.toronto.edu/~kriz/"]
    archive = "cifar-10-binary.tar.gz"
    archive_md5 = "c32a1d4ab5d03f1284b67883e8d87530"
    base_folder = "cifar-10-batches-bin"
    train_files = [f"data_batch_{i}.bin" for i in range(1, 6)]
    test_files = ["test_batch.bin"]
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]

    def __init__(self, root: str | os.PathLike[str] | None = None, train: bool = True,
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None,
                 download: bool = False) -> None:
        self.folder = dataset_folder(self.name, root)
        super().__init__(self.folder, transform, target_transform)
        self.train = train
        names = self.train_files if train else self.test_files
        parts = [read_cifar_binary(path) for path in self._files(names, download)]
        self.data = xp.concatenate([images for images, _ in parts])
        self.targets = xp.concatenate([labels for _, labels in parts])

    def _files(self, names: list[str], download_missing: bool) -> list[Path]:
        for folder in (self.folder / self.base_folder, self.folder):
            if all((folder / name).is_file() for name in names):
                return [folder / name for name in names]
        archive = self.folder / self.archive
        if not archive.is_file():
            urls = [mirror + self.archive for mirror in self.mirrors]
            if not download_missing:
                raise DatasetNotFoundError(self._not_found(
                    f"dataset files not found in {self.folder} (pass download=True to fetch "
                    "them)"))
            try:
                download(urls, archive, md5=self.archive_md5)
            except ConnectionError as error:
                raise DatasetNotFoundError(self._not_found(
                    f"the archive is missing and could not be downloaded:\n{error}")) from error
        every = self.train_files + self.test_files
        extract_members(archive, self.folder, {f"{self.base_folder}/{name}" for name in every})
        return [self.folder / self.base_folder / name for name in names]

    def _not_found(self, reason: str) -> str:
        files = {self.archive: [mirror + self.archive for mirror in self.mirrors]}
        return not_found_message(
            self.name, self.folder, files, reason,
            extra=f"(or its extracted {self.base_folder}/ folder, holding "
                  f"{', '.join(self.train_files + self.test_files)})")
