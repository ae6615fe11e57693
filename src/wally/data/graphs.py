"""Graphs to learn on: Zachary's karate club, as networkx ships it (no download), and Cora
(McCallum et al. 2000; downloaded from LINQS as text, never from Planetoid's pickles)."""

from __future__ import annotations

from typing import Any

from wally.backend import xp
from wally.geometric.data import Data
from wally.tensor import Tensor

__all__ = ["karate_club", "KARATE_CLASSES", "KARATE_LABELLED", "cora", "parse_cora", "CORA_CLASSES",
           "CORA_URLS", "CORA_SHA256"]

KARATE_CLASSES = ("Mr. Hi", "Officer")  # networkx's 'club' values: the instructor's, the officer's
KARATE_LABELLED = (0, 33)  # the instructor and the administrator, one labelled member per faction


def karate_club() -> Data:
    """Zachary's karate club (1977): 34 members, 78 friendships, and the two factions the club
    split into, from ``networkx.karate_club_graph()`` (its ``club`` attribute).

    Returned as PyG's ``Data``, set up for Kipf & Welling's semi-supervised experiment:

    - ``x``: the identity ``(34, 34)``: the members have no features, each is its own one-hot
      (Kipf & Welling's featureless setting);
    - ``edge_index``: ``(2, 156)``, every friendship in both directions, sorted by source;
    - ``y``: ``(34,)`` int64, 0 for Mr. Hi's faction (17 members), 1 for the Officer's (17);
    - ``train_mask``: only the instructor (node 0) and the administrator (node 33) labelled;
      ``test_mask``: the other 32 members.

    PyG's own ``KarateClub`` dataset labels four communities found by modularity instead; the
    factions are what the club really split into, and what the issue asks for.
    """
    try:
        import networkx
    except ImportError:
        raise ImportError("the karate club graph needs networkx, which is not installed: "
                          "pip install networkx  (or pip install 'wally-cnn[graph]')") from None
    graph = networkx.karate_club_graph()
    n = graph.number_of_nodes()
    pairs = xp.array(sorted(graph.edges()), dtype=xp.int64).T
    both = xp.concatenate([pairs, pairs[::-1]], axis=1)
    both = both[:, xp.lexsort((both[1], both[0]))]
    y = xp.array([KARATE_CLASSES.index(graph.nodes[i]["club"]) for i in range(n)], dtype=xp.int64)
    train_mask = xp.zeros(n, dtype=bool)
    train_mask[list(KARATE_LABELLED)] = True
    return Data(x=Tensor(xp.eye(n, dtype=xp.float32)), edge_index=Tensor(both), y=Tensor(y),
                train_mask=Tensor(train_mask), test_mask=Tensor(~train_mask))


CORA_CLASSES = ("Case_Based", "Genetic_Algorithms", "Neural_Networks", "Probabilistic_Methods",
                "Reinforcement_Learning", "Rule_Learning", "Theory")
CORA_URLS = ["https://linqs-data.soe.ucsc.edu/public/lbc/cora.tgz"]
CORA_SHA256: str | None = None
"""No SHA-256 of ``cora.tgz`` is published, and this machine could not fetch it to compute one:
until it is pinned here (or passed as ``sha256=``), the download is checked by its content
instead: exactly 2,708 papers × 1,433 words, 7 classes, 5,429 citations, every one between
listed papers."""
CORA_SIZES = (2708, 1433, 5429)
_CORA_MAX = 16 << 20  # cora.content is 7.8 MB


def parse_cora(content: str, cites: str, sizes: tuple[int, int, int] | None = CORA_SIZES,
               source: str = "cora") -> Data:
    """``cora.content`` (``paper word_1 ... word_1433 class`` per line) and ``cora.cites``
    (``cited citing`` per line) → ``Data``: ``x`` ``(N, 1433)`` float32 0/1 bag of words,
    ``edge_index`` every citation in both directions without repeats or self loops (PyG's
    undirected Cora), ``y`` the class's index in :data:`CORA_CLASSES`, papers in file order.
    ``sizes`` (papers, words, citation lines) are checked unless None.

    Masks: Planetoid's split of Kipf & Welling is defined by the row order of its pickles, which
    wally does not read; instead ``train_mask`` holds the first 20 papers of each class in file
    order (140, as in Planetoid), ``val_mask`` the next 500 papers and ``test_mask`` the next
    1,000.
    """
    names, rows, labels = [], [], []
    for number, line in enumerate(content.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3 or parts[-1] not in CORA_CLASSES or any(p not in "01" for p in
                                                                   parts[1:-1]):
            raise ValueError(f"Cora: line {number} of {source}/cora.content is not 'paper 0/1 "
                             f"... class' with a class of {CORA_CLASSES}: {line[:60]!r}")
        names.append(parts[0])
        rows.append([p == "1" for p in parts[1:-1]])
        labels.append(CORA_CLASSES.index(parts[-1]))
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise ValueError(f"Cora: the rows of {source}/cora.content have {sorted(widths)} words")
    index = {name: i for i, name in enumerate(names)}
    if len(index) != len(names):
        raise ValueError(f"Cora: {source}/cora.content lists a paper twice")
    pairs = []
    lines = [line for line in cites.splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != 2 or parts[0] not in index or parts[1] not in index:
            raise ValueError(f"Cora: line {number} of {source}/cora.cites is not two papers of "
                             f"cora.content: {line[:60]!r}")
        pairs.append((index[parts[1]], index[parts[0]]))
    found = (len(names), widths.pop() if widths else 0, len(lines))
    if sizes is not None and found != tuple(sizes):
        raise ValueError(f"Cora: expected {sizes[0]} papers x {sizes[1]} words and {sizes[2]} "
                         f"citations, got {found[0]} x {found[1]} and {found[2]}")
    edges = xp.array(pairs, dtype=xp.int64).reshape(-1, 2).T
    both = xp.concatenate([edges, edges[::-1]], axis=1)
    both = xp.unique(both[:, both[0] != both[1]], axis=1)  # sorted by source, then target
    y = xp.array(labels, dtype=xp.int64)
    n = len(names)
    train = xp.zeros(n, dtype=bool)
    for c in range(len(CORA_CLASSES)):
        train[xp.flatnonzero(y == c)[:20]] = True
    rest = xp.flatnonzero(~train)
    val, test = xp.zeros(n, dtype=bool), xp.zeros(n, dtype=bool)
    val[rest[:500]], test[rest[500:1500]] = True, True
    x = xp.array(rows, dtype=xp.float32).reshape(n, -1)
    return Data(x=Tensor(x), edge_index=Tensor(both), y=Tensor(y), train_mask=Tensor(train),
                val_mask=Tensor(val), test_mask=Tensor(test))


def cora(root: Any = None, download_files: bool = False, sha256: str | None = None,
         mirrors: list[str] | None = None,
         sizes: tuple[int, int, int] | None = CORA_SIZES) -> Data:
    """Cora from ``<root>/Cora/cora.tgz`` (LINQS's text release, downloaded with
    ``download_files=True``): its two text files are read straight out of the archive (regular
    members only, bounded in size; nothing is extracted to disk) and parsed by
    :func:`parse_cora` (which checks ``sizes``).

    Why not Planetoid's ``ind.cora.*`` files, which PyG downloads: ``ind.cora.x``, ``graph`` and
    the rest are Python pickles, and unpickling runs whatever code the file names; wally never
    unpickles. LINQS's ``cora.content`` / ``cora.cites`` are the same 2,708 papers and 1,433
    words as plain text.

    Example::

        >>> cora(download_files=True)                # doctest: +SKIP
        Data(x=[2708, 1433], edge_index=[2, 10556], y=[2708], train_mask=[2708], ...)
    """
    import tarfile

    from wally.data.download import DOWNLOAD_HINT, dataset_folder, download, file_digest
    from wally.data.errors import ChecksumError, DatasetNotFoundError

    expected = sha256 if sha256 is not None else CORA_SHA256
    archive = dataset_folder("Cora", root) / "cora.tgz"
    if not archive.exists():
        if not download_files:
            raise DatasetNotFoundError(f"Cora: {archive} is missing; {DOWNLOAD_HINT}")
        download(CORA_URLS if mirrors is None else mirrors, archive, sha256=expected,
                 max_bytes=_CORA_MAX)
    if expected is not None:
        actual = file_digest(archive, "sha256", max_bytes=_CORA_MAX)
        if actual != expected.lower():
            raise ChecksumError(f"Cora: {archive} has sha256 {actual}, expected {expected}; "
                                f"delete it and download again")
    texts = {}
    try:
        with tarfile.open(archive, "r:gz") as bundle:
            for member in bundle.getmembers():
                name = member.name.rsplit("/", 1)[-1]
                if name in ("cora.content", "cora.cites") and member.isfile():
                    if member.size > _CORA_MAX:
                        raise ValueError(f"Cora: {member.name} in {archive} claims "
                                         f"{member.size:,} bytes")
                    stream = bundle.extractfile(member)
                    texts[name] = stream.read(_CORA_MAX + 1).decode("utf-8") if stream else ""
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ValueError(f"Cora: {archive} is not a readable .tgz ({error})") from None
    missing = {"cora.content", "cora.cites"} - set(texts)
    if missing:
        raise ValueError(f"Cora: {archive} has no {', '.join(sorted(missing))}")
    return parse_cora(texts["cora.content"], texts["cora.cites"], sizes, source=str(archive))
