"""The UCR/UEA time-series classification archive, read from its own ``.ts`` format.

A ``.ts`` file (the format of timeseriesclassification.com, sktime and aeon) is a header of
``@tag value`` lines, then ``@data`` and one case a line::

    # comments start with '#'
    @problemName GunPoint
    @timeStamps false
    @missing false
    @univariate true
    @equalLength true
    @seriesLength 150
    @classLabel true 1 2
    @data
    -0.647,-0.641,...,-0.640:2

In a case the dimensions (channels) are separated by ``:``, the values of one dimension by ``,``,
and the class label comes last. A multivariate file (``@univariate false``, ``@dimensions 12``)
has 12 ``:``-separated dimensions a line; an unequal-length one (``@equalLength false``) may have
a different length on every line (the dimensions of one case have one length: that case is one
``(C, T)`` array). ``?`` is a missing value, allowed only under ``@missing true`` (read as NaN).

The parser is strict: an unknown or repeated tag, a missing ``@data``, a value that is not a
finite number, a case with the wrong number of dimensions, a length other than
``@seriesLength``, dimensions of different lengths, a label not declared by ``@classLabel``:
each is refused with a :class:`~wally.data.DatasetFormatError` naming the file and line.
Time-stamped files (``@timeStamps true``) and regression files (``@targetLabel true``) are
refused with a message saying so.

Example::

    >>> train = UCR("GunPoint", root="data")            # data/UCR/GunPoint/GunPoint_TRAIN.ts
    >>> x, y = train[0]
    >>> x.shape, y, train.classes                       # (channels, time), class index
    (wally.Size([1, 150]), 1, ['1', '2'])
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wally.backend import ndarray, xp
from wally.creation import from_numpy
from wally.data.dataset import Dataset
from wally.data.download import (
    DOWNLOAD_HINT,
    dataset_folder,
    download,
    file_digest,
    not_found_message,
)
from wally.data.errors import ChecksumError, DatasetFormatError, DatasetNotFoundError
from wally.io.files import open_regular

__all__ = ["UCR", "TsFile", "read_ts", "aeon_data_folder", "ucr_folder", "MAX_TS_BYTES"]

MAX_TS_BYTES = 512 << 20
"""The largest ``.ts`` file read (the archive's largest classification files are ~300 MB)."""
MAX_ZIP_BYTES = 1 << 30
"""The largest per-dataset zip opened, and the most bytes its wanted members may declare."""

URL = "https://timeseriesclassification.com/aeon-toolkit/{name}.zip"
"""Where one dataset's zip lives (the URL aeon's loaders use); it holds ``<Name>_TRAIN.ts`` and
``<Name>_TEST.ts`` (and ``.arff``/``.txt`` copies, which are not extracted)."""

SHA256: dict[str, str] = {
    # SHA-256 of the .ts files as shipped in aeon 1.6.0's datasets/data folder.
    "ArrowHead_TRAIN.ts": "a83c470aaf611a5f5284377cce27a5fc9f6292bc3d110257b0fd4905ced5ee72",
    "ArrowHead_TEST.ts": "5417dab42626d41df5e435bb22458c2df40dfad4bcd3b59559bbe72e20e84904",
    "BasicMotions_TRAIN.ts": "8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6",
    "BasicMotions_TEST.ts": "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc",
    "GunPoint_TRAIN.ts": "f842401779fd9800d247d8b33121a1a4643710a19b24917dbdd9a060ca8630d5",
    "GunPoint_TEST.ts": "79332750788a6227b325b96bd0d70130c8eb707b9731f8d7dec62b7a7d36017e",
    "ItalyPowerDemand_TRAIN.ts": "341269cb7e6cef96846b30e774580beec79addb93848ba360145219115a74b7c",
    "ItalyPowerDemand_TEST.ts": "26122451f87dd0387ef90b18bc8a86c041371b8a1c068004922b939971247144",
    "JapaneseVowels_TRAIN.ts": "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    "JapaneseVowels_TEST.ts": "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
    "OSULeaf_TRAIN.ts": "86b9d6e860414ffd26cebc62fff84ffb37fa588ef3e5bf79e4094a437c36ddfc",
    "OSULeaf_TEST.ts": "6c549dd354f9e42d5985fa5fab75321ca9acefc7873457e71467fc8a31f107ce",
}
"""SHA-256 of known ``.ts`` files, checked after a download extracts them (the zips are
repacked now and then; the ``.ts`` files inside are what must not change). A file without an
entry is still parsed strictly, and a warning says that no checksum was known for it."""

_BOOL_TAGS = ("timestamps", "missing", "univariate", "equallength")
_INT_TAGS = ("dimensions", "serieslength")
_TAGS = {"problemname", "classlabel", "targetlabel", "data", *_BOOL_TAGS, *_INT_TAGS}


@dataclass
class TsFile:
    """What :func:`read_ts` read: ``series`` (one float32 ``(C, T)`` array per case), ``labels``
    (the class label of each case as written), ``classes`` (the labels ``@classLabel``
    declares, in its order) and the header's other settings."""

    path: Path
    problem_name: str | None
    series: list[ndarray]
    labels: list[str]
    classes: list[str]
    dimensions: int
    equal_length: bool
    series_length: int | None
    missing: bool
    header: dict[str, str] = field(default_factory=dict)


def _fail(path: Path, line: int, message: str) -> DatasetFormatError:
    return DatasetFormatError(f"{path}, line {line}: {message}")


def _parse_bool(path: Path, line: int, tag: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise _fail(path, line, f"@{tag} must be 'true' or 'false', got {value!r}")
    return value.lower() == "true"


def _parse_int(path: Path, line: int, tag: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1 or str(number) != value.lstrip("+"):
        raise _fail(path, line, f"@{tag} must be a positive integer, got {value!r}")
    return number


def _parse_values(path: Path, line: int, text: str, case: int, dim: int,
                  missing: bool) -> ndarray:
    where = f"case {case}, dimension {dim}"
    if not text:
        raise _fail(path, line, f"{where} is empty, expected comma-separated numbers")
    items = text.split(",")
    values = []
    for position, item in enumerate(items):
        token = item.strip()
        if token == "?":
            if not missing:
                raise _fail(path, line, f"{where}, value {position}: '?' (missing) but the header "
                                        "says @missing false")
            values.append(math.nan)
            continue
        try:
            number = float(token)
        except ValueError:
            raise _fail(path, line, f"{where}, value {position}: expected a number, got "
                                    f"{token[:40]!r}") from None
        if not math.isfinite(number):
            raise _fail(path, line, f"{where}, value {position}: expected a finite number, got "
                                    f"{token!r} (write missing values as '?')")
        values.append(number)
    return xp.asarray(values, dtype=xp.float32)


def read_ts(path: str | os.PathLike[str]) -> TsFile:
    """Read one classification ``.ts`` file strictly (module docstring), at most
    :data:`MAX_TS_BYTES` bytes of UTF-8 text.

    Raises :class:`~wally.data.DatasetFormatError` naming the file and line for every
    malformed header, value, dimension count or length.

    Example::

        >>> ts = read_ts("GunPoint_TRAIN.ts")
        >>> len(ts.series), ts.series[0].shape, ts.classes
        (50, (1, 150), ['1', '2'])
    """
    path = Path(path)
    with open_regular(path, ".ts file", MAX_TS_BYTES) as stream:
        raw = stream.read(MAX_TS_BYTES + 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _fail(path, raw[: error.start].count(b"\n") + 1, "not UTF-8 text") from None
    header: dict[str, str] = {}
    header_line: dict[str, int] = {}
    lines = text.splitlines()
    number = 0
    for number, line in enumerate(lines, start=1):  # noqa: B007 (used after the loop)
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not stripped.startswith("@"):
            raise _fail(path, number, f"expected a header line '@tag value' or '@data' before "
                                      f"the data, got {stripped[:40]!r}")
        tag, _, value = stripped[1:].partition(" ")
        key = tag.lower()
        if key not in _TAGS:
            tags = ", ".join("@" + t for t in sorted(_TAGS))
            raise _fail(path, number, f"unknown header tag @{tag} (known: {tags})")
        if key in header:
            raise _fail(path, number, f"@{tag} given twice (first on line {header_line[key]})")
        header[key], header_line[key] = value.strip(), number
        if key == "data":
            if value.strip():
                raise _fail(path, number, f"@data takes no value, got {value.strip()!r}")
            break
    else:
        raise _fail(path, number, "no @data line: the header never ends")
    data_start = number

    def flag(tag: str, default: bool) -> bool:
        if tag not in header:
            return default
        return _parse_bool(path, header_line[tag], tag, header[tag])

    if flag("timestamps", False):
        raise _fail(path, header_line["timestamps"], "time-stamped series (@timeStamps true) are "
                                                     "not supported")
    if flag("targetlabel", False):
        raise _fail(path, header_line["targetlabel"], "a regression file (@targetLabel true); "
                                                      "UCR reads classification files")
    if "classlabel" not in header:
        raise _fail(path, data_start, "no @classLabel line: expected '@classLabel true <labels>'")
    has_labels, _, declared = header["classlabel"].partition(" ")
    if not _parse_bool(path, header_line["classlabel"], "classLabel", has_labels):
        raise _fail(path, header_line["classlabel"], "@classLabel false: the file has no class "
                                                     "labels, UCR reads classification files")
    classes = declared.split()
    if not classes:
        raise _fail(path, header_line["classlabel"], "@classLabel true declares no labels")
    if len(set(classes)) != len(classes):
        repeated = sorted({c for c in classes if classes.count(c) > 1})
        raise _fail(path, header_line["classlabel"], f"@classLabel repeats labels {repeated}")
    missing = flag("missing", False)
    univariate = flag("univariate", True)
    equal_length = flag("equallength", True)
    dimensions = 1
    if "dimensions" in header:
        dimensions = _parse_int(path, header_line["dimensions"], "dimensions",
                                header["dimensions"])
    if univariate and dimensions != 1:
        raise _fail(path, header_line["dimensions"], f"@univariate true but @dimensions "
                                                     f"{dimensions}")
    series_length = None
    if "serieslength" in header:
        series_length = _parse_int(path, header_line["serieslength"], "seriesLength",
                                   header["serieslength"])
        if not equal_length:
            raise _fail(path, header_line["serieslength"], "@seriesLength given but "
                                                           "@equalLength false")
    known = set(classes)
    series: list[ndarray] = []
    labels: list[str] = []
    expected_dims = dimensions if (not univariate or "dimensions" in header) else None
    for number in range(data_start + 1, len(lines) + 1):
        line = lines[number - 1].strip()
        if not line:
            continue
        if line.startswith(("@", "#")):
            raise _fail(path, number, f"a header or comment line after @data: {line[:40]!r}")
        *dims, label = line.split(":")
        case = len(series)
        label = label.strip()
        if label not in known:
            shown = " ".join(classes) if len(classes) <= 20 else f"{len(classes)} labels"
            raise _fail(path, number, f"case {case}: class label {label[:40]!r} is not one of "
                                      f"@classLabel's ({shown})")
        if not dims:
            raise _fail(path, number, f"case {case}: no values, expected "
                                      "'values:...:label'")
        want = expected_dims if expected_dims is not None else 1
        if len(dims) != want:
            raise _fail(path, number, f"case {case}: {len(dims)} dimensions, expected {want} "
                                      f"(@dimensions {want})" if expected_dims else
                        f"case {case}: {len(dims)} dimensions, expected 1 (@univariate true)")
        arrays = [_parse_values(path, number, d.strip(), case, i, missing)
                  for i, d in enumerate(dims)]
        lengths = {a.shape[0] for a in arrays}
        if len(lengths) != 1:
            per_dim = [a.shape[0] for a in arrays]
            raise _fail(path, number, f"case {case}: its dimensions have different lengths "
                                      f"{per_dim}, expected one length for all")
        length = arrays[0].shape[0]
        if series_length is not None and length != series_length:
            raise _fail(path, number, f"case {case}: length {length}, expected {series_length} "
                                      "(@seriesLength)")
        if equal_length and series and length != series[0].shape[1]:
            raise _fail(path, number, f"case {case}: length {length}, expected "
                                      f"{series[0].shape[1]} like case 0 (@equalLength true)")
        series.append(xp.stack(arrays))
        labels.append(label)
    if not series:
        raise _fail(path, len(lines), "no cases after @data")
    return TsFile(path, header.get("problemname"), series, labels, classes, dimensions,
                  equal_length, series_length, missing, dict(header))


def aeon_data_folder() -> Path | None:
    """The folder of example datasets inside an installed ``aeon`` package
    (``<aeon>/datasets/data``, holding ``GunPoint/GunPoint_TRAIN.ts`` ...), found without
    importing aeon; ``None`` when aeon is not installed or the folder is absent.

    ``UCR(name, root=aeon_data_folder())`` reads from it (that folder has the archive's own
    ``<Name>/`` layout)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "datasets" / "data"
        if folder.is_dir():
            return folder
    return None


def ucr_folder(name: str, root: str | os.PathLike[str] | None) -> Path:
    """Where ``UCR(name, root)`` reads: ``<root>/UCR/<name>`` (wally's layout, the default),
    or ``<root>/<name>`` when only that holds ``<name>_TRAIN.ts`` (the archive's own unzipped
    layout, which aeon's ``datasets/data`` folder also has). Without ``root``: the cache
    folder's ``UCR/<name>`` (:func:`wally.data.download.dataset_folder`)."""
    wally_layout = dataset_folder("UCR", root) / name
    if root is not None and not (wally_layout / f"{name}_TRAIN.ts").exists():
        archive_layout = Path(root).expanduser() / name
        if (archive_layout / f"{name}_TRAIN.ts").exists():
            return archive_layout
    return wally_layout


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or not name.replace("_", "").replace(
            "-", "").isalnum():
        raise ValueError(f"UCR: expected a dataset name such as 'GunPoint' (letters, digits, "
                         f"'-' and '_'), got {name!r}")
    return name


class UCR(Dataset[tuple[Any, int]]):
    """One dataset of the UCR/UEA time-series classification archive.

    ``UCR(name, root, train=True)`` reads ``<root>/UCR/<name>/<name>_TRAIN.ts`` (``_TEST.ts``
    for ``train=False``) with the strict parser :func:`read_ts`; ``root`` may also be a folder
    in the archive's own layout, ``<root>/<name>/<name>_TRAIN.ts``, such as aeon's
    (:func:`aeon_data_folder`, :func:`ucr_folder`). ``download=True`` fetches
    ``<name>.zip`` from the archive (:data:`URL`) when the files are missing, extracts the two
    ``.ts`` files and checks their SHA-256 where :data:`SHA256` knows it.

    Items are ``(x, y)``: ``x`` a float32 Tensor ``(C, T)`` (PyTorch's ``Conv1d`` layout:
    channels = the file's dimensions, ``T`` its length, which varies from item to item in an
    unequal-length file; batch those with :func:`wally.data.pad_collate`), ``y`` the class
    index, ``class_to_idx[label]`` in ``@classLabel``'s order (``classes``). ``transform``
    is applied to ``x``, ``target_transform`` to ``y``.

    Shape:
        ``x``: ``(C, T)``; ``series``: a list of float32 arrays ``(C, T_i)``; ``targets``:
        int64 ``(N,)``.

    Example::

        >>> test = UCR("JapaneseVowels", root="data", train=False)
        >>> len(test), test.num_channels, test.classes[:3], test[0][0].shape
        (370, 12, ['1', '2', '3'], wally.Size([12, 19]))
    """

    def __init__(self, name: str, root: str | os.PathLike[str] | None = None,
                 train: bool = True, download: bool = False,
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None) -> None:
        self.name = _check_name(name)
        self.root = root
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        self.folder = ucr_folder(name, root)
        split = "TRAIN" if self.train else "TEST"
        path = self.folder / f"{name}_{split}.ts"
        if not path.exists():
            if download:
                self._download()
            else:
                raise DatasetNotFoundError(not_found_message(
                    f"UCR {name}", self.folder, {f"{name}.zip": [URL.format(name=name)]},
                    f"{path.name} not found; {DOWNLOAD_HINT}",
                    f"(unzip it there: the folder must hold {name}_TRAIN.ts and "
                    f"{name}_TEST.ts)"))
        ts = read_ts(path)
        self.file = ts
        self.path = path
        self.classes = ts.classes
        self.class_to_idx = {label: index for index, label in enumerate(ts.classes)}
        self.series = ts.series
        self.targets = xp.asarray([self.class_to_idx[label] for label in ts.labels],
                                  dtype=xp.int64)
        self.num_channels = int(ts.series[0].shape[0])
        self.lengths = xp.asarray([s.shape[1] for s in ts.series], dtype=xp.int64)
        self.equal_length = bool((self.lengths == self.lengths[0]).all())

    def __len__(self) -> int:
        return len(self.series)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        x: Any = from_numpy(self.series[index])
        y: Any = int(self.targets[index])
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        lengths = (f"length {int(self.lengths[0])}" if self.equal_length else
                   f"lengths {int(self.lengths.min())}..{int(self.lengths.max())}")
        return (f"Dataset UCR {self.name} ({split})\n    Number of datapoints: {len(self)}\n"
                f"    Channels: {self.num_channels}, {lengths}\n    Classes: {len(self.classes)}"
                f"\n    Root location: {self.folder}")

    def _download(self) -> None:
        name, folder = self.name, self.folder
        folder.mkdir(parents=True, exist_ok=True)
        archive = folder / f"{name}.zip"
        if not archive.exists():
            download([URL.format(name=name)], archive, max_bytes=MAX_ZIP_BYTES)
        extract_ts(archive, folder, name)


def extract_ts(archive: str | os.PathLike[str], folder: str | os.PathLike[str],
               name: str) -> list[Path]:
    """Extract ``<name>_TRAIN.ts`` and ``<name>_TEST.ts`` (found anywhere in the zip) into
    ``folder``, each written to a temporary file and renamed into place, and check each
    against :data:`SHA256`.

    Raises :class:`~wally.data.DatasetFormatError` if the zip lacks one of them or a member
    declares more than :data:`MAX_TS_BYTES` bytes, :class:`~wally.data.ChecksumError` if an
    extracted file's SHA-256 differs from the known one (the file is then removed).
    """
    archive, folder = Path(archive), Path(folder)
    wanted = {f"{name}_TRAIN.ts", f"{name}_TEST.ts"}
    written = []
    with open_regular(archive, "zip archive", MAX_ZIP_BYTES) as stream:
        try:
            zipped = zipfile.ZipFile(stream)
        except zipfile.BadZipFile as error:
            raise DatasetFormatError(f"{archive}: not a zip archive ({error})") from None
        with zipped:
            members: dict[str, zipfile.ZipInfo] = {}
            for info in zipped.infolist():
                base = info.filename.replace("\\", "/").rsplit("/", 1)[-1]
                if base in wanted and not info.is_dir():
                    members.setdefault(base, info)
            absent = sorted(wanted - set(members))
            if absent:
                raise DatasetFormatError(f"{archive}: the zip holds no {', '.join(absent)}")
            for base, info in sorted(members.items()):
                if info.file_size > MAX_TS_BYTES:
                    raise DatasetFormatError(
                        f"{archive}: member {info.filename!r} declares {info.file_size:,} bytes, "
                        f"over the .ts limit of {MAX_TS_BYTES:,}")
                target = folder / base
                handle, temporary = tempfile.mkstemp(prefix=f".{base}.", suffix=".part",
                                                     dir=folder)
                digest = hashlib.sha256()
                try:
                    with os.fdopen(handle, "wb") as out, zipped.open(info) as member:
                        total = 0
                        while chunk := member.read(1 << 20):
                            total += len(chunk)
                            if total > MAX_TS_BYTES:
                                raise DatasetFormatError(f"{archive}: member {info.filename!r} "
                                                         "is larger than it declares")
                            digest.update(chunk)
                            out.write(chunk)
                        out.flush()
                        os.fsync(out.fileno())
                    _check_sha256(base, digest.hexdigest(), archive)
                    os.replace(temporary, target)
                except BaseException:
                    if os.path.exists(temporary):
                        os.remove(temporary)
                    raise
                written.append(target)
    return written


def _check_sha256(base: str, actual: str, archive: Path) -> None:
    expected = SHA256.get(base)
    if not expected:
        warnings.warn(f"UCR: no SHA-256 is known for {base} (from {archive.name}); it was only "
                      "checked by the strict .ts parser", stacklevel=4)
        return
    if actual != expected:
        raise ChecksumError(f"checksum mismatch for {base} in {archive}: expected sha256 "
                            f"{expected}, got {actual}; the file was not written")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a ``.ts`` file (what :data:`SHA256` records)."""
    return file_digest(path, "sha256", MAX_TS_BYTES)
