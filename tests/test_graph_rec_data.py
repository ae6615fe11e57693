"""Recommendation and benchmark graphs: Debian's package relations (the parser, the k-core, the
shipped snapshot, the held-out split), MovieLens-100K and Cora loaders on small files written
here, downloaded through file:// mirrors and checked by SHA-256 (no network)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zipfile

import numpy as np
import pytest

from wally.data import recsys
from wally.data.errors import ChecksumError, DatasetNotFoundError
from wally.data.graphs import CORA_CLASSES, cora, parse_cora
from wally.data.recsys import (
    Interactions,
    debian_depends,
    movielens_100k,
    parse_debian_packages,
    write_debian_snapshot,
)

PACKAGES = """Package: vim
Version: 2:9.0
Depends: vim-common (= 2:9.0), libc6 (>= 2.34), libgpm2 (>= 1.20.7) | libncurses6,
 libselinux1:any
Pre-Depends: libacl1

Package: vim
Depends: libsodium23

Package: fonts-x
Depends: fonts-dejavu-core | ttf-dejavu-core

Package: tool
Depends: libc6, libacl1, libgpm2
"""


def test_parse_debian_packages_takes_lib_dependencies_first_alternatives_and_continuations():
    relations = parse_debian_packages(PACKAGES)
    assert relations == {"vim": {"libc6", "libgpm2", "libselinux1", "libacl1", "libsodium23"},
                         "fonts-x": set(), "tool": {"libc6", "libacl1", "libgpm2"}}


def test_snapshot_is_the_core_and_byte_for_byte_reproducible(tmp_path):
    first, second = tmp_path / "a.txt.gz", tmp_path / "b.txt.gz"
    sizes = write_debian_snapshot(PACKAGES, first, min_user=2, min_item=2)
    write_debian_snapshot(PACKAGES, second, min_user=2, min_item=2)
    assert first.read_bytes() == second.read_bytes()
    # libselinux1 and libsodium23 have one user each: dropped; fonts-x needs no library
    assert gzip.decompress(first.read_bytes()).decode() == (
        "tool\tlibacl1 libc6 libgpm2\nvim\tlibacl1 libc6 libgpm2\n")
    assert sizes == (2, 3, 6)
    data = debian_depends(first)
    assert (data.user_names, data.item_names) == (["tool", "vim"], ["libacl1", "libc6", "libgpm2"])
    assert data.pairs.tolist() == [[0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2]]


def test_the_shipped_snapshot_is_the_documented_core():
    data = debian_depends()
    assert (data.num_users, data.num_items, data.pairs.shape[1]) == (3221, 447, 41817)
    per_user = np.bincount(data.pairs[0], minlength=data.num_users)
    per_item = np.bincount(data.pairs[1], minlength=data.num_items)
    assert per_user.min() >= 8 and per_item.min() >= 20
    assert all(name.startswith("lib") for name in data.item_names)
    assert "libc6" in data.item_names and "libqt5widgets5" in data.item_names


def test_a_broken_snapshot_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(gzip.compress(b"vim libc6\n"))
    with pytest.raises(ValueError, match="debian: line 1 of .*bad.txt.gz is not 'package<TAB>"):
        debian_depends(bad)
    (tmp_path / "plain").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="debian_depends: cannot read"):
        debian_depends(tmp_path / "plain")


def test_split_is_deterministic_disjoint_and_per_user():
    rng = np.random.default_rng(3)
    pairs = np.unique(np.stack([rng.integers(0, 30, 400), rng.integers(0, 50, 400)]), axis=1)
    pairs = np.concatenate([pairs, [[30], [7]]], axis=1)  # user 30 has a single item
    data = Interactions(pairs, [str(u) for u in range(31)], [str(i) for i in range(50)])
    train, test = data.split(0.25, seed=5)
    again = data.split(0.25, seed=5)
    np.testing.assert_array_equal(train, again[0])
    np.testing.assert_array_equal(test, again[1])
    assert not (set(map(tuple, train.T)) & set(map(tuple, test.T)))
    assert set(map(tuple, train.T)) | set(map(tuple, test.T)) == set(map(tuple, pairs.T))
    for user in range(31):
        n = int((pairs[0] == user).sum())
        held = int((test[0] == user).sum())
        assert held == (0 if n < 2 else max(1, round(0.25 * n))), user
    assert not (data.split(0.25, seed=6)[1].shape == test.shape
                and (data.split(0.25, seed=6)[1] == test).all())
    # the edges of the rule: one item stays in training, two give one to test at any fraction
    small = Interactions(np.array([[0, 1, 1], [0, 0, 1]]), ["a", "b"], ["x", "y"])
    for fraction in (0.2, 0.6):
        train_small, test_small = small.split(fraction)
        assert test_small.shape == (2, 1) and test_small[0].tolist() == [1], fraction
        assert train_small[:, 0].tolist() == [0, 0]
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\), got 1.0"):
        data.split(1.0)


U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n" \
         "196\t377\t5\t881250950\n"


def _zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("ml-100k/u.data", text)
        bundle.writestr("ml-100k/README", "MovieLens")
    return buffer.getvalue()


def _mirror(tmp_path, name, data):
    path = tmp_path / "mirror" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return [path.as_uri()]


def test_movielens_downloads_checks_and_reads_u_data(tmp_path, monkeypatch):
    archive = _zip(U_DATA)
    monkeypatch.setattr(recsys, "ML100K_SHA256", hashlib.sha256(archive).hexdigest())
    with pytest.raises(DatasetNotFoundError, match="MovieLens-100K: .*ml-100k.zip is missing"):
        movielens_100k(tmp_path / "data")
    mirror = _mirror(tmp_path, "ml-100k.zip", archive)
    data = movielens_100k(tmp_path / "data", download_files=True, mirrors=mirror)
    assert (tmp_path / "data" / "MovieLens100K" / "ml-100k.zip").read_bytes() == archive
    assert (data.user_names, data.item_names) == (["22", "186", "196"], ["242", "302", "377"])
    assert sorted(map(tuple, data.pairs.T.tolist())) == [(0, 2), (1, 1), (2, 0), (2, 2)]
    liked = movielens_100k(tmp_path / "data", min_rating=3)
    assert liked.pairs.shape == (2, 3) and liked.user_names == ["186", "196"]


def test_movielens_refuses_a_wrong_checksum_and_a_bad_line(tmp_path, monkeypatch):
    archive = _zip(U_DATA)
    mirror = _mirror(tmp_path, "ml-100k.zip", archive)
    with pytest.raises(ChecksumError, match="checksum mismatch for ml-100k.zip"):
        movielens_100k(tmp_path / "d", download_files=True, mirrors=mirror)
    assert not (tmp_path / "d" / "MovieLens100K" / "ml-100k.zip").exists()
    # a file already there is checked too
    target = tmp_path / "e" / "MovieLens100K" / "ml-100k.zip"
    target.parent.mkdir(parents=True)
    target.write_bytes(archive)
    with pytest.raises(ChecksumError, match="MovieLens-100K: .* has sha256 "):
        movielens_100k(tmp_path / "e")
    bad = _zip("196\t242\tthree\t881250949\n")
    target.write_bytes(bad)
    monkeypatch.setattr(recsys, "ML100K_SHA256", hashlib.sha256(bad).hexdigest())
    with pytest.raises(ValueError, match=r"MovieLens-100K: line 1 of .*u.data is not 'user<TAB>"):
        movielens_100k(tmp_path / "e")


def _content(papers):
    return "".join(f"{name} {' '.join(words)} {label}\n" for name, words, label in papers)


PAPERS = [("31336", "0110", "Neural_Networks"), ("1061127", "1000", "Rule_Learning"),
          ("1106406", "0011", "Neural_Networks"), ("13195", "0000", "Theory")]
CITES = "31336\t1061127\n1061127\t31336\n1106406\t31336\n13195\t13195\n"


def _tgz(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, text in members.items():
            if text is None:  # a symbolic link where a file should be
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                bundle.addfile(info)
                continue
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_parse_cora_builds_the_undirected_graph_and_masks():
    data = parse_cora(_content(PAPERS), CITES, sizes=(4, 4, 4))
    assert data.x.shape == (4, 4) and data.x.numpy()[1].tolist() == [1, 0, 0, 0]
    assert data.y.numpy().tolist() == [CORA_CLASSES.index(c) for _, _, c in PAPERS]
    # 31336<->1061127 cited both ways is one edge; the self citation is dropped
    assert data.edge_index.numpy().tolist() == [[0, 0, 1, 2], [1, 2, 0, 0]]
    assert data.train_mask.numpy().all()  # fewer than 20 papers per class: all train
    with pytest.raises(ValueError, match=r"Cora: expected 2708 papers x 1433 words and 5429 "
                                         r"citations, got 4 x 4 and 4"):
        parse_cora(_content(PAPERS), CITES)


def test_parse_cora_masks_take_twenty_per_class_then_500_then_1000():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 1700)
    papers = [(str(i), "01", CORA_CLASSES[c]) for i, c in enumerate(labels)]
    data = parse_cora(_content(papers), "0 1\n", sizes=None)
    train, val, test = (data.train_mask.numpy(), data.val_mask.numpy(), data.test_mask.numpy())
    assert np.bincount(labels[train], minlength=7).tolist() == [20] * 7
    assert (val.sum(), test.sum()) == (500, 1000)
    assert not (train & val).any() and not (train & test).any() and not (val & test).any()
    first_val = np.flatnonzero(~train)[:500]
    assert np.flatnonzero(val).tolist() == first_val.tolist()


def test_parse_cora_refuses_bad_lines():
    with pytest.raises(ValueError, match="Cora: line 1 of cora/cora.content is not 'paper 0/1"):
        parse_cora("1 0 1 Astrology\n", "", sizes=None)
    with pytest.raises(ValueError, match="Cora: line 2 of cora/cora.cites is not two papers"):
        parse_cora(_content(PAPERS), "31336 13195\n31336 999\n", sizes=None)


def test_cora_reads_the_tgz_checks_sha256_and_ignores_links(tmp_path):
    archive = _tgz({"cora/README": "Cora", "cora/cora.content": _content(PAPERS),
                    "cora/cora.cites": CITES})
    mirror = _mirror(tmp_path, "cora.tgz", archive)
    with pytest.raises(DatasetNotFoundError, match="Cora: .*cora.tgz is missing"):
        cora(tmp_path / "data")
    digest = hashlib.sha256(archive).hexdigest()
    data = cora(tmp_path / "data", download_files=True, sha256=digest, mirrors=mirror,
                sizes=(4, 4, 4))
    assert data.num_nodes == 4 and data.num_edges == 4
    with pytest.raises(ChecksumError, match="Cora: .* has sha256 .*, expected 00"):
        cora(tmp_path / "data", sha256="00" * 32, sizes=(4, 4, 4))
    with pytest.raises(ChecksumError, match="checksum mismatch for cora.tgz"):
        cora(tmp_path / "other", download_files=True, sha256="00" * 32, mirrors=mirror)
    linked = _tgz({"cora/cora.content": None, "cora/cora.cites": CITES})
    folder = tmp_path / "linked" / "Cora"
    folder.mkdir(parents=True)
    (folder / "cora.tgz").write_bytes(linked)
    with pytest.raises(ValueError, match="Cora: .*cora.tgz has no cora.content"):
        cora(tmp_path / "linked")
    (folder / "cora.tgz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="Cora: .*cora.tgz is not a readable .tgz"):
        cora(tmp_path / "linked")
    assert os.listdir(folder) == ["cora.tgz"]  # nothing extracted


def test_wally_train_and_eval_gcn_on_cora_from_a_tgz_written_here(tmp_path, monkeypatch,
                                                                  capsys):
    import json

    from wally.cli import main
    from wally.data import graphs

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 7, 1700)
    papers = [(str(i), "".join("1" if (c + j) % 3 == 0 else "0" for j in range(6)),
               CORA_CLASSES[c]) for i, c in enumerate(labels)]
    cites = "".join(f"{rng.integers(0, 1700)}\t{i}\n" for i in range(1700))
    folder = tmp_path / "data" / "Cora"
    folder.mkdir(parents=True)
    (folder / "cora.tgz").write_bytes(_tgz({"cora/cora.content": _content(papers),
                                           "cora/cora.cites": cites}))
    monkeypatch.setattr(graphs, "CORA_SIZES", (1700, 6, 1700))
    out = tmp_path / "run"
    assert main(["train", "gcn", "--dataset", "cora", "--data-dir", str(tmp_path / "data"),
                 "--epochs", "20", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labelled"] == 140
    assert f"/1000 test papers right (test accuracy {metrics['test_accuracy']:.4f})" in printed
    assert main(["eval", str(out / "checkpoint.safetensors"), "--dataset", "cora",
                 "--data-dir", str(tmp_path / "data"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == metrics["test_accuracy"]
    monkeypatch.setattr(graphs, "CORA_SIZES", (2708, 1433, 5429))
    assert main(["eval", str(out / "checkpoint.safetensors"), "--dataset", "cora",
                 "--data-dir", str(tmp_path / "data")]) != 0
    assert "Cora: expected 2708 papers x 1433 words" in capsys.readouterr().err


def test_wally_train_lightgcn_on_movielens_from_a_zip_written_here(tmp_path, monkeypatch,
                                                                   capsys):
    from wally.cli import main

    rng = np.random.default_rng(2)
    rows = {(int(u), int(i)) for u, i in zip(rng.integers(1, 41, 600), rng.integers(1, 31, 600))}
    text = "".join(f"{u}\t{i}\t{1 + (u * i) % 5}\t88{u:04d}{i:04d}\n" for u, i in sorted(rows))
    archive = _zip(text)
    monkeypatch.setattr(recsys, "ML100K_SHA256", hashlib.sha256(archive).hexdigest())
    folder = tmp_path / "data" / "MovieLens100K"
    folder.mkdir(parents=True)
    (folder / "ml-100k.zip").write_bytes(archive)
    out = tmp_path / "run"
    assert main(["train", "lightgcn", "--dataset", "movielens-100k", "--data-dir",
                 str(tmp_path / "data"), "--epochs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("movielens-100k: 40 users x 30 items, ")
    assert "most-popular" in printed and "bpr-mf" in printed and "lightgcn" in printed
    assert main(["eval", str(out / "checkpoint.safetensors"), "--dataset", "movielens-100k",
                 "--data-dir", str(tmp_path / "data")]) == 0
    assert capsys.readouterr().out.startswith("Recall@20 ")
