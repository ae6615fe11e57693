"""Where dataset files live, and fetching them safely.

Folders: ``<root>/<Name>`` when a dataset gets ``root=`` (so ``root="../data"`` can hold MNIST
and Fashion-MNIST side by side, as in torchvision), else ``$WALLY_DATA/<Name>``, else
``$XDG_CACHE_HOME/wally/<Name>``, else ``~/.cache/wally/<Name>``.

Downloads try each mirror in turn with ``urllib.request``, write to a temporary file in the
destination folder while computing the checksum, ``fsync`` it, and only then ``os.replace`` it
into place: an interrupted download never leaves a complete-looking file, and a checksum mismatch
removes the temporary file. Nothing touches the network when the files are already there.

Tests (and users behind a proxy) can replace :func:`urlopen` in this module, or point a dataset's
``mirrors`` at ``file://`` URLs.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wally.data.errors import ChecksumError
from wally.io.files import check_size, open_regular

_CHUNK = 1 << 20

DOWNLOAD_HINT = "pass download=True, or --download on the command line, to fetch them"
"""How a missing dataset's message says to download it: the same words fit the library and
the command line."""


def urlopen(url: str, timeout: float) -> Any:
    """Open ``url`` for reading (replaceable: tests substitute a fake that never goes online)."""
    request = urllib.request.Request(url, headers={"User-Agent": "wally"})
    return urllib.request.urlopen(request, timeout=timeout)


def dataset_folder(name: str, root: str | os.PathLike[str] | None) -> Path:
    """The folder for dataset ``name``: ``<root>/<name>`` or the cache folder (module docs).

    >>> str(dataset_folder("MNIST", "/data"))
    '/data/MNIST'
    """
    if root is not None:
        return Path(root).expanduser() / name
    if os.environ.get("WALLY_DATA"):
        return Path(os.environ["WALLY_DATA"]).expanduser() / name
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "wally" / name


def file_digest(path: str | os.PathLike[str], algorithm: str = "md5",
                max_bytes: int | None = None) -> str:
    """The hex digest of a regular file of at most ``max_bytes`` bytes, read in 1 MiB chunks
    (:func:`wally.io.files.open_regular` refuses anything else before reading)."""
    digest = hashlib.new(algorithm)
    total = 0
    with open_regular(path, "file", max_bytes) as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            total += len(chunk)
            check_size(path, "file", total, max_bytes)  # it grew while being read
            digest.update(chunk)
    return digest.hexdigest()


class _NetworkError(Exception):
    pass


def download(urls: Sequence[str], destination: str | os.PathLike[str], md5: str | None = None,
             sha256: str | None = None, timeout: float = 30.0,
             max_bytes: int | None = None) -> Path:
    """Fetch ``destination`` from the first of ``urls`` that delivers a file with the expected
    checksum, atomically. A mirror that sends more than ``max_bytes`` bytes is cut off there
    (its partial file removed) and the next one tried.

    Raises :class:`ChecksumError` if a mirror delivered a file with the wrong checksum and none
    delivered the right one (the temporary file is removed, ``destination`` is untouched), and
    ``ConnectionError`` (an ``OSError``) listing every URL's failure if none could be reached.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    mismatches: list[str] = []
    for url in urls:
        try:
            actual = _fetch_to(url, destination, timeout, md5, sha256, max_bytes)
        except _NetworkError as error:
            failures.append(f"{url}: {error.__cause__ or error}")
            continue
        if actual is None:
            return destination
        mismatches.append(f"{url}: got {actual}")
    if mismatches:
        expected = f"md5 {md5}" if md5 is not None else f"sha256 {sha256}"
        raise ChecksumError(
            f"checksum mismatch for {destination.name}: expected {expected}, but\n  "
            + "\n  ".join(mismatches + failures)
            + f"\nThe corrupt download was discarded; {destination} was not written."
        )
    raise ConnectionError(f"could not download {destination.name}:\n  " + "\n  ".join(failures))


def _fetch_to(url: str, destination: Path, timeout: float, md5: str | None,
              sha256: str | None, max_bytes: int | None = None) -> str | None:
    """Download into a temporary sibling of ``destination``; on a checksum match move it into
    place and return None, else delete it and return the digest that arrived."""
    digest = hashlib.new("md5" if md5 is not None else "sha256")
    expected = md5 if md5 is not None else sha256
    received = 0
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part",
                                         dir=destination.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                response = urlopen(url, timeout)
            except (OSError, http.client.HTTPException, ValueError) as error:
                raise _NetworkError(str(error)) from error
            with response:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as error:
                        raise _NetworkError(str(error)) from error
                    if not chunk:
                        break
                    received += len(chunk)
                    if max_bytes is not None and received > max_bytes:
                        raise _NetworkError(f"sent more than {max_bytes:,} bytes, more than "
                                            f"{destination.name} has; cut off")
                    digest.update(chunk)
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if expected is not None and digest.hexdigest() != expected.lower():
            os.remove(temporary)
            return digest.hexdigest()
        os.replace(temporary, destination)
        _fsync_folder(destination.parent)
        return None
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); harmless to skip where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def not_found_message(dataset: str, folder: Path, files: dict[str, list[str]],
                      reason: str, extra: str = "") -> str:
    """The text of a :class:`DatasetNotFoundError`: what is missing, why, and how to fix it."""
    lines = [f"{dataset}: {reason}", "", "Download these files by hand:"]
    for name, urls in files.items():
        lines.append(f"  {name}")
        lines.extend(f"      {url}" for url in urls)
    lines += ["and put them in this folder:", f"  {folder}"]
    if extra:
        lines.append(extra)
    return "\n".join(lines)
