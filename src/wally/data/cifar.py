"""CIFAR-10 from its *binary* distribution (no pickle is ever loaded).

``cifar-10-binary.tar.gz`` holds ``cifar-10-batches-bin/data_batch_1.bin`` … ``_5.bin`` and
``test_batch.bin``: 3073-byte records, one label byte then 3 × 1024 bytes (the red, green and blue
32×32 planes, row-major), 10,000 records (30,730,000 bytes) a file.

Every read is bounded. A ``.bin`` file must be a regular file of at most
:data:`MAX_BATCH_BYTES` (one batch), checked before reading. The archive must be a regular file
of at most :data:`MAX_ARCHIVE_BYTES` with the published MD5 (checked before it is opened as an
archive, also when it was put there by hand), and is extracted member by member with our own
writes: at most :data:`MAX_MEMBERS` members declaring at most :data:`MAX_ARCHIVE_DATA_BYTES`
bytes in all, each member extracted a whole number of records of at most one batch; a member
that would land outside the folder (absolute names, ``..``) or is a link or device makes the
whole archive refused before anything is written.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from wally.backend import ndarray, xp
from wally.data.download import (
    DOWNLOAD_HINT,
    dataset_folder,
    download,
    file_digest,
    not_found_message,
)
from wally.data.errors import DatasetFormatError, DatasetNotFoundError
from wally.data.vision import VisionDataset
from wally.io.files import open_regular

RECORD_BYTES = 1 + 3 * 32 * 32
BATCH_RECORDS = 10_000
MAX_BATCH_BYTES = BATCH_RECORDS * RECORD_BYTES
"""The largest ``.bin`` file read: one batch of 10,000 records (30,730,000 bytes)."""
MAX_ARCHIVE_BYTES = 256 << 20
"""The largest archive opened (the published one is 170,052,171 bytes)."""
MAX_MEMBERS = 64
"""The most members an archive may have (the published one has 9)."""
MAX_ARCHIVE_DATA_BYTES = 256 << 20
"""The most bytes an archive's members may declare in all, decompressed (the published one's
hold 184 MB): a gzip bomb is refused after at most this much decompression."""
_MAX_TAR_STREAM = MAX_ARCHIVE_DATA_BYTES + (4 << 20)  # the members, their headers, padding
_CHUNK = 1 << 20


def read_cifar_binary(path: str | os.PathLike[str]) -> tuple[ndarray, ndarray]:
    """Images uint8 ``(N, 32, 32, 3)`` and labels int64 ``(N,)`` from one CIFAR-10 ``.bin`` file.

    Raises :class:`~wally.data.DatasetFormatError` if the file is empty, its length is not a
    multiple of 3073 bytes, or a label is not in 0..9;
    :class:`~wally.io.files.RefusedFileError` if it is not a regular file or is larger than
    :data:`MAX_BATCH_BYTES` (checked before reading).
    """
    path = Path(path)
    with open_regular(path, "CIFAR-10 batch", MAX_BATCH_BYTES) as stream:
        size = os.fstat(stream.fileno()).st_size
        if size == 0 or size % RECORD_BYTES:
            raise DatasetFormatError(
                f"{path}: {size} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 "
                f"records ({size // RECORD_BYTES} records and {size % RECORD_BYTES} bytes left "
                "over)"
            )
        buffer = bytearray(size)
        if stream.readinto(buffer) != size or stream.read(1):
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
    if member.size < 0:
        raise DatasetFormatError(f"{archive}: member {member.name!r} declares {member.size} "
                                 "bytes")
    if not (member.isfile() or member.isdir()):
        raise DatasetFormatError(f"{archive}: refusing to extract member {member.name!r}, which "
                                 "is a link or a special file")
    return name


def _check_batch_member(member: tarfile.TarInfo, archive: Path) -> None:
    if member.size == 0 or member.size % RECORD_BYTES or member.size > MAX_BATCH_BYTES:
        raise DatasetFormatError(
            f"{archive}: refusing to extract member {member.name!r} of {member.size:,} bytes, "
            f"expected a whole number of {RECORD_BYTES}-byte records, at most "
            f"{MAX_BATCH_BYTES:,} bytes")


def extract_members(archive: str | os.PathLike[str], destination: str | os.PathLike[str],
                    wanted: set[str], check: Callable[[tarfile.TarInfo, Path], None] | None = None
                    ) -> list[Path]:
    """Extract the regular files named in ``wanted`` (paths inside the archive) from a tar
    archive into ``destination``, each written to a temporary file and renamed into place.

    Every member is checked before anything is written: one with an absolute path, a ``..``
    component, or that is a link or special file, more than :data:`MAX_MEMBERS` members, or
    members declaring more than :data:`MAX_ARCHIVE_DATA_BYTES` bytes in all make the whole
    archive refused with a :class:`~wally.data.DatasetFormatError`; so does a wanted member that
    ``check(member, archive)`` refuses. The archive must be a regular file of at most
    :data:`MAX_ARCHIVE_BYTES` bytes.
    """
    archive, destination = Path(archive), Path(destination)
    try:
        with open_regular(archive, "archive", MAX_ARCHIVE_BYTES) as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            with stream, tarfile.open(fileobj=_Capped(stream, _MAX_TAR_STREAM, archive),
                                      mode="r:") as tar:
                return _extract(tar, archive, destination, wanted, check)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DatasetFormatError(f"{archive}: corrupt or truncated archive ({error})") from error


class _Capped:
    """The first ``limit`` bytes of a seekable stream, for ``tarfile``: a read reaching past
    them refuses the archive (tarfile reads a long-name or pax header whole, at the size its
    header claims)."""

    def __init__(self, stream: Any, limit: int, archive: Path) -> None:
        self._stream, self._limit, self._archive = stream, limit, archive

    def read(self, size: int = -1, /) -> bytes:
        if size < 0 or self._stream.tell() + size > self._limit:
            raise DatasetFormatError(
                f"{self._archive}: more than {self._limit:,} bytes once decompressed, more "
                "than the dataset's archive holds")
        return bytes(self._stream.read(size))

    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int:
        return int(self._stream.seek(offset, whence))

    def tell(self) -> int:
        return int(self._stream.tell())

    def write(self, data: bytes, /) -> int:
        raise io.UnsupportedOperation("read-only")

    def close(self) -> None:
        """The stream is closed by its owner."""


def _extract(tar: tarfile.TarFile, archive: Path, destination: Path, wanted: set[str],
             check: Callable[[tarfile.TarInfo, Path], None] | None) -> list[Path]:
    """Check every member (the rules in :func:`extract_members`), then write the wanted ones."""
    selected: list[tuple[tarfile.TarInfo, PurePosixPath]] = []
    total = 0
    for count, member in enumerate(tar, 1):
        if count > MAX_MEMBERS:
            raise DatasetFormatError(f"{archive}: more than {MAX_MEMBERS} members, "
                                     "which no dataset archive has")
        name = _check_member(member, archive)
        if member.isfile() and str(name) in wanted:
            if check is not None:
                check(member, archive)
            selected.append((member, name))
        total += member.size
        if total > MAX_ARCHIVE_DATA_BYTES:
            raise DatasetFormatError(
                f"{archive}: its members hold more than {MAX_ARCHIVE_DATA_BYTES:,} "
                "bytes, more than the dataset's archive does")
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
        self.folder = self._folder(root)
        super().__init__(self.folder, transform, target_transform)
        self.train = train
        names = self.train_files if train else self.test_files
        parts = [read_cifar_binary(path) for path in self._files(names, download)]
        self.data = xp.concatenate([images for images, _ in parts])
        self.targets = xp.concatenate([labels for _, labels in parts])

    def _folder(self, root: str | os.PathLike[str] | None) -> Path:
        """Where the archive or its extracted folder is (module docs of ``download``)."""
        return dataset_folder(self.name, root)

    def _files(self, names: list[str], download_missing: bool) -> list[Path]:
        for folder in (self.folder / self.base_folder, self.folder):
            # exists, not is_file: read_cifar_binary refuses what is not a regular file
            if all((folder / name).exists() for name in names):
                return [folder / name for name in names]
        archive = self.folder / self.archive
        if not archive.exists():
            urls = [mirror + self.archive for mirror in self.mirrors]
            if not download_missing:
                raise DatasetNotFoundError(self._not_found(
                    f"dataset files not found in {self.folder} ({DOWNLOAD_HINT})"))
            try:
                download(urls, archive, md5=self.archive_md5, max_bytes=MAX_ARCHIVE_BYTES)
            except ConnectionError as error:
                raise DatasetNotFoundError(self._not_found(
                    f"the archive is missing and could not be downloaded:\n{error}")) from error
        else:
            self._check_archive(archive)
        every = self.train_files + self.test_files
        extract_members(archive, self.folder, {f"{self.base_folder}/{name}" for name in every},
                        check=_check_batch_member)
        return [self.folder / self.base_folder / name for name in names]

    def _check_archive(self, archive: Path) -> None:
        """Refuse an archive found in the folder unless it has the published MD5 (a download
        is checked as it arrives)."""
        actual = file_digest(archive, "md5", MAX_ARCHIVE_BYTES)
        if actual != self.archive_md5.lower():
            raise DatasetFormatError(
                f"{archive}: md5 {actual}, expected {self.archive_md5} (the published "
                f"{self.archive}); remove it to download it again")

    def _not_found(self, reason: str) -> str:
        files = {self.archive: [mirror + self.archive for mirror in self.mirrors]}
        return not_found_message(
            self.name, self.folder, files, reason,
            extra=f"(or its extracted {self.base_folder}/ folder, holding "
                  f"{', '.join(self.train_files + self.test_files)})")
