"""User–item graphs for recommendation: Debian's package relations (shipped, offline) and
MovieLens-100K (downloaded, checked).

**Debian** (:func:`debian_depends`): the "users" are Debian 12 (bookworm) amd64 binary packages
and the "items" the shared libraries (``lib*`` packages) they declare in ``Depends`` /
``Pre-Depends``. It is a real, sparse, long-tailed implicit-feedback graph that every Debian
machine has after ``apt-get update`` and that can be snapshotted into a small file: the
snapshot ``debian_depends.txt.gz`` beside this module was made on 2026-12-02 with::

    apt-cache dumpavail > Packages
    python -c "from wally.data.recsys import write_debian_snapshot as w; \\
               w(open('Packages').read(), 'debian_depends.txt.gz')"

keeping, after a (8, 20)-core (every package with at least 8 such libraries, every library
needed by at least 20 such packages), 3,221 packages × 447 libraries, 41,817 pairs. Recommending
a library to a package is link prediction on that graph ("packages that need Qt's core and GUI
also need its widgets"); networkx's Davis southern women graph (18 × 14) would be too small to
tell a model from a baseline.

**MovieLens-100K** (:func:`movielens_100k`): GroupLens's ``ml-100k.zip``, ``u.data`` holds
``user item rating timestamp`` tab-separated; 943 users, 1,682 films, 100,000 ratings.

Both come back as :class:`Interactions`; :meth:`Interactions.split` holds out a fixed share of
every user's items, deterministically.
"""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from wally.backend import ndarray, xp
from wally.data.download import DOWNLOAD_HINT, dataset_folder, download, file_digest
from wally.data.errors import DatasetNotFoundError

__all__ = ["Interactions", "debian_depends", "movielens_100k", "parse_debian_packages",
           "write_debian_snapshot", "DEBIAN_SNAPSHOT", "ML100K_URLS", "ML100K_SHA256"]

DEBIAN_SNAPSHOT = Path(__file__).with_name("debian_depends.txt.gz")
ML100K_URLS = ["https://files.grouplens.org/datasets/movielens/ml-100k.zip"]
ML100K_SHA256 = "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"
ML100K_BYTES = 4_924_029
_MAX_TEXT = 64 << 20  # no member of these archives is anywhere near 64 MiB


@dataclass
class Interactions:
    """An implicit-feedback bipartite graph: ``pairs`` ``(2, E)`` int64 of (user, item), users
    numbered ``0..num_users-1`` and items ``0..num_items-1`` separately.

    Example::

        >>> data = Interactions(xp.array([[0, 0, 1], [0, 1, 1]]), ["u0", "u1"], ["a", "b"])
        >>> data
        Interactions(users=2, items=2, pairs=3)
    """

    pairs: ndarray
    user_names: list[str]
    item_names: list[str]
    name: str = ""

    @property
    def num_users(self) -> int:
        return len(self.user_names)

    @property
    def num_items(self) -> int:
        return len(self.item_names)

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[ndarray, ndarray]:
        """``(train, test)`` pairs: of each user's ``n`` items, ``round(test_fraction · n)``
        (at least one when ``n ≥ 2``, none when ``n = 1``) chosen by ``numpy.random.
        default_rng(seed)`` go to ``test``. The same seed gives the same split everywhere."""
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"Interactions.split: test_fraction must be in (0, 1), got "
                             f"{test_fraction!r}")
        rng = xp.random.default_rng(seed)
        pairs = xp.unique(self.pairs, axis=1)  # sorted by user, then item
        starts = xp.searchsorted(pairs[0], xp.arange(self.num_users + 1))
        test = xp.zeros(pairs.shape[1], dtype=bool)
        for u in range(self.num_users):
            lo, hi = int(starts[u]), int(starts[u + 1])
            n = hi - lo
            held = 0 if n < 2 else max(1, int(round(test_fraction * n)))
            test[lo + rng.permutation(n)[:held]] = True
        return pairs[:, ~test], pairs[:, test]

    def __repr__(self) -> str:
        return (f"Interactions(users={self.num_users}, items={self.num_items}, "
                f"pairs={self.pairs.shape[1]})")


def parse_debian_packages(text: str) -> dict[str, set[str]]:
    """Each binary package of a Debian ``Packages`` text (``apt-cache dumpavail``, or
    ``/var/lib/dpkg/status``) → the ``lib*`` packages its ``Depends`` and ``Pre-Depends`` name
    (the first of each ``a | b`` alternative, without versions or ``:any``).

    Example::

        >>> parse_debian_packages("Package: vim\\nDepends: libc6 (>= 2.34), vim-common,"
        ...                       " libgpm2 | libncurses6\\n")
        {'vim': {'libc6', 'libgpm2'}}
    """
    relations: dict[str, set[str]] = {}
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1].isspace() and key is not None:  # a continuation line
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if "Package" not in fields:
            continue
        needs = relations.setdefault(fields["Package"], set())
        for field in ("Pre-Depends", "Depends"):
            for alternatives in fields.get(field, "").split(","):
                first = alternatives.split("|")[0].strip()
                name = first.split(" ")[0].split("(")[0].split(":")[0]
                if name.startswith("lib"):
                    needs.add(name)
    return relations


def _core(relations: dict[str, set[str]], min_user: int, min_item: int) -> dict[str, set[str]]:
    """Drop rare libraries and packages needing few until every package needs ≥ ``min_user``
    kept libraries and every library is needed by ≥ ``min_item`` kept packages."""
    kept = {user: set(items) for user, items in relations.items()}
    while True:
        counts = Counter(item for items in kept.values() for item in items)
        trimmed = {user: {i for i in items if counts[i] >= min_item}
                   for user, items in kept.items()}
        trimmed = {user: items for user, items in trimmed.items() if len(items) >= min_user}
        if trimmed == kept:
            return kept
        kept = trimmed


def write_debian_snapshot(packages_text: str, path: str | os.PathLike[str], min_user: int = 8,
                          min_item: int = 20) -> tuple[int, int, int]:
    """Write the ``(min_user, min_item)``-core of :func:`parse_debian_packages` as gzip'd text,
    one ``package<TAB>lib lib ...`` line each, sorted (gzip mtime 0: the same input gives the
    same bytes). Returns (packages, libraries, pairs)."""
    from wally.io.atomic import atomic_write

    kept = _core(parse_debian_packages(packages_text), min_user, min_item)
    lines = [f"{user}\t{' '.join(sorted(items))}" for user, items in sorted(kept.items())]
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as out:
        out.write(("\n".join(lines) + "\n").encode())
    atomic_write(Path(path), buffer.getvalue())
    items = {i for needs in kept.values() for i in needs}
    return len(kept), len(items), sum(len(needs) for needs in kept.values())


def _from_lines(lines: list[str], source: str, name: str) -> Interactions:
    users, rows = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        user, sep, rest = line.partition("\t")
        if not sep or not rest.split():
            raise ValueError(f"{name}: line {number} of {source} is not 'package<TAB>lib ...': "
                             f"{line[:60]!r}")
        users.append(user)
        rows.append(rest.split())
    items = sorted({i for row in rows for i in row})
    column = {item: j for j, item in enumerate(items)}
    u = [k for k, row in enumerate(rows) for _ in row]
    i = [column[item] for row in rows for item in row]
    return Interactions(xp.array([u, i], dtype=xp.int64).reshape(2, -1), users, items, name)


def debian_depends(path: str | os.PathLike[str] | None = None) -> Interactions:
    """Debian packages × the libraries they depend on, from the snapshot this module ships (or
    another written by :func:`write_debian_snapshot`). See the module docs for how it was made.

    Example::

        >>> debian_depends()
        Interactions(users=3221, items=447, pairs=41817)
    """
    source = Path(DEBIAN_SNAPSHOT if path is None else path)
    try:
        with gzip.open(source, "rb") as stream:
            raw = stream.read(_MAX_TEXT + 1)
    except (OSError, EOFError) as error:
        raise ValueError(f"debian_depends: cannot read {source}: {error}") from None
    if len(raw) > _MAX_TEXT:
        raise ValueError(f"debian_depends: {source} unpacks to more than {_MAX_TEXT:,} bytes")
    return _from_lines(raw.decode("utf-8").splitlines(), str(source), "debian")


def parse_movielens(text: str, source: str = "u.data", min_rating: int = 1) -> Interactions:
    """``user<TAB>item<TAB>rating<TAB>timestamp`` lines (1-based ids) → the pairs rated at least
    ``min_rating``; users and items renumbered from 0 in id order (``user_names`` keep the ids).
    """
    users, items = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"MovieLens-100K: line {number} of {source} is not 'user<TAB>item"
                             f"<TAB>rating<TAB>timestamp' integers: {line[:60]!r}")
        if int(parts[2]) >= min_rating:
            users.append(int(parts[0]))
            items.append(int(parts[1]))
    user_ids, u = xp.unique(xp.array(users, dtype=xp.int64), return_inverse=True)
    item_ids, i = xp.unique(xp.array(items, dtype=xp.int64), return_inverse=True)
    return Interactions(xp.stack([u.reshape(-1), i.reshape(-1)]).astype(xp.int64),
                        [str(v) for v in user_ids], [str(v) for v in item_ids], "movielens-100k")


def movielens_100k(root: str | os.PathLike[str] | None = None, download_files: bool = False,
                   min_rating: int = 1, mirrors: list[str] | None = None) -> Interactions:
    """MovieLens-100K from ``<root>/MovieLens100K/ml-100k.zip`` (downloaded with
    ``download_files=True`` and checked against its SHA-256), every rating ≥ ``min_rating``
    as an implicit interaction. ``u.data`` is read straight out of the zip (nothing extracted).

    Example::

        >>> movielens_100k(download_files=True)          # doctest: +SKIP
        Interactions(users=943, items=1682, pairs=100000)
    """
    folder = dataset_folder("MovieLens100K", root)
    archive = folder / "ml-100k.zip"
    urls = ML100K_URLS if mirrors is None else mirrors
    if not archive.exists():
        if not download_files:
            raise DatasetNotFoundError(
                f"MovieLens-100K: {archive} is missing; {DOWNLOAD_HINT}")
        download(urls, archive, sha256=ML100K_SHA256, max_bytes=2 * ML100K_BYTES)
    actual = file_digest(archive, "sha256", max_bytes=2 * ML100K_BYTES)
    if actual != ML100K_SHA256:
        from wally.data.errors import ChecksumError

        raise ChecksumError(f"MovieLens-100K: {archive} has sha256 {actual}, expected "
                            f"{ML100K_SHA256}; delete it and download again")
    try:
        with zipfile.ZipFile(archive) as bundle:
            info = bundle.getinfo("ml-100k/u.data")
            if info.file_size > _MAX_TEXT:
                raise ValueError(f"MovieLens-100K: u.data claims {info.file_size:,} bytes")
            text = bundle.read(info).decode("latin-1")
    except (zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"MovieLens-100K: {archive} is not the ml-100k zip ({error})") from None
    return parse_movielens(text, f"{archive}:ml-100k/u.data", min_rating)
