"""Text datasets: the fortune-file parser, Fortunes' file rules, split and balance (on a folder
the test writes, and on Debian's installed packages when present), AG News's download with its
checksum and its strict CSV reader (small files the tests write; no network)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wally.data import DatasetFormatError, DatasetNotFoundError
from wally.data import download as download_module
from wally.data.errors import ChecksumError
from wally.data.text import (
    FORTUNES_ROOT,
    AGNews,
    Fortunes,
    TokenizedText,
    read_ag_news_csv,
    read_fortune_file,
    text_split,
)
from wally.data.vocab import Vocab


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# ----- fortune files -----------------------------------------------------------------------------
def test_fortune_file_is_percent_separated(tmp_path):
    path = write(tmp_path / "f", "First one\n  -- someone\n%\n%\nSecond\tone\n%\nThird\n")
    assert read_fortune_file(path) == ["First one -- someone", "Second one", "Third"]


def test_fortune_file_in_another_encoding_is_refused(tmp_path):
    path = write(tmp_path / "latin1", "Grüße\n%\n".encode("latin-1"))
    with pytest.raises(DatasetFormatError, match=r"latin1: not UTF-8 \(byte 2"):
        read_fortune_file(path)


def fake_fortunes(root: Path) -> Path:
    """A small tree laid out as Debian's: English at the top, Portuguese's one file, a folder
    per other language, an offensive folder, ASCII art, index files and links."""
    write(root / "fortunes", "The cat sat.\n%\nShared quote\n%\nHello world\n%\n")
    write(root / "computers", "Computers are fast.\n%\nThe cat sat.\n%\n")  # a repeat: once
    write(root / "art", "  /\\_/\\\n%\n")                        # ASCII art: left out
    write(root / "brasil", "Olá mundo\n%\nBom dia\n%\n")
    write(root / "off" / "fortunes", "offensive english\n%\n")  # offensive: left out
    write(root / "de" / "witze", "Guten Tag\n%\nShared quote\n%\nDer Hund\n%\n")
    write(root / "de" / "witze.dat", b"\x00\x01binary index")
    write(root / "de" / "witze.u8", "")
    write(root / "es" / "off" / "varios", "ofensivo\n%\n")
    write(root / "es" / "refranes.fortunes", "Hola mundo\n%\nBuenos días\n%\n")
    os.symlink(root / "de" / "witze", root / "es" / "link")     # a link: left out
    return root


def test_fortunes_file_rules_and_labels(tmp_path):
    root = fake_fortunes(tmp_path / "fortunes")
    every = {}
    for train in (True, False):
        dataset = Fortunes(root, train=train, languages=["de", "en", "es", "pt"])
        assert dataset.classes == ["de", "en", "es", "pt"]
        for text, label in (dataset[i] for i in range(len(dataset))):
            assert text_split(text) == ("train" if train else "test")
            every[text] = dataset.classes[label]
    assert every == {"The cat sat.": "en", "Hello world": "en", "Computers are fast.": "en",
                     "Olá mundo": "pt", "Bom dia": "pt", "Guten Tag": "de", "Der Hund": "de",
                     "Hola mundo": "es", "Buenos días": "es"}  # "Shared quote": in two, dropped


def test_split_is_the_hash_and_cap_is_the_lowest_hashes(tmp_path):
    lines = [f"sentence number {i}" for i in range(200)]
    write(tmp_path / "f" / "eo" / "proverbaro", "\n%\n".join(lines) + "\n")
    train = Fortunes(tmp_path / "f", train=True, languages=["eo"], max_per_class=100)
    test = Fortunes(tmp_path / "f", train=False, languages=["eo"], max_per_class=100)
    kept = sorted(lines, key=lambda t: hashlib.sha256(t.encode()).hexdigest())[:100]
    assert sorted(train.texts + test.texts) == sorted(kept)
    assert all(int(hashlib.sha256(t.encode()).hexdigest(), 16) % 5 == 0 for t in test.texts)
    assert 10 <= len(test) <= 30
    assert train.class_counts() == {"eo": len(train)}


def test_missing_folder_and_language_name_the_package(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="install the Debian packages"):
        Fortunes(tmp_path / "absent")
    write(tmp_path / "f" / "fortunes", "x\n%\n")
    with pytest.raises(DatasetNotFoundError, match="apt-get install fortunes-ru"):
        Fortunes(tmp_path / "f", languages=["en", "ru"])
    with pytest.raises(ValueError, match="languages must be some of"):
        Fortunes(tmp_path / "f", languages=["fr"])


@pytest.mark.skipif(not Path(FORTUNES_ROOT, "de").is_dir() or not Path(FORTUNES_ROOT,
                    "fortunes").is_file(), reason="Debian's fortunes packages are not "
                    "installed (apt-get install fortunes fortunes-de fortunes-it fortunes-es "
                    "fortunes-ru fortunes-pl fortunes-cs fortunes-br fortunes-eo)")
def test_installed_fortunes_are_balanced_and_disjoint():
    train, test = Fortunes(train=True), Fortunes(train=False)
    assert train.classes == ["cs", "de", "en", "eo", "es", "it", "pl", "pt", "ru"]
    assert not set(train.texts) & set(test.texts)
    for counts in (train.class_counts(), test.class_counts()):
        shares = np.array(list(counts.values())) / sum(counts.values())
        assert shares.max() < 0.13 and shares.min() > 0.09  # 2,000 per language, ~80/20
    assert len(train) + len(test) == 9 * 2000
    # the first texts of a split mix the languages (what --limit takes)
    assert len(set(train.targets[:100].tolist())) == 9


# ----- AG News ----------------------------------------------------------------------------------
AG_ROWS = ('"3","Wall St. Bears Claw Back","Reuters - Short-sellers are\\nseeing green again."\n'
           '"2","Win, again","The team won ""easily""."\n'
           '"4","New chip","Faster, cheaper."\n')


def test_ag_news_csv(tmp_path):
    texts, labels = read_ag_news_csv(write(tmp_path / "train.csv", AG_ROWS))
    assert texts == ["Wall St. Bears Claw Back Reuters - Short-sellers are seeing green again.",
                     'Win, again The team won "easily".', "New chip Faster, cheaper."]
    assert labels.tolist() == [2, 1, 3] and labels.dtype == np.int64


@pytest.mark.parametrize(("rows", "message"), [
    ('"1","a"\n', r"line 1: expected 3 fields"),
    ('"1","a","b"\n"5","a","b"\n', r"line 2: the class is '5', expected 1 to 4"),
    ('"1","a","b"\n"x","a","b"\n', r"line 2: the class is 'x'"),
    ('"1","a","b\n', "malformed CSV"),
    ("", "no rows"),
])
def test_ag_news_csv_malformed(tmp_path, rows, message):
    with pytest.raises(DatasetFormatError, match=message):
        read_ag_news_csv(write(tmp_path / "bad.csv", rows))


class FakeResponse:
    def __init__(self, data: bytes) -> None:
        self.data, self.sent = data, False

    def read(self, size: int = -1) -> bytes:
        if self.sent:
            return b""
        self.sent = True
        return self.data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_ag_news_download_verifies_the_md5(tmp_path, monkeypatch):
    data = AG_ROWS.encode()
    asked = []

    def fake_urlopen(url, timeout):
        asked.append(url)
        return FakeResponse(data)

    monkeypatch.setattr(download_module, "urlopen", fake_urlopen)
    monkeypatch.setattr(AGNews, "md5", {"test.csv": hashlib.md5(data).hexdigest()})
    with pytest.raises(DatasetNotFoundError, match="pass download=True"):
        AGNews(tmp_path, train=False)
    dataset = AGNews(tmp_path, train=False, download=True)
    assert asked == [AGNews.mirrors[0] + "test.csv"]
    assert len(dataset) == 3 and dataset[1] == ('Win, again The team won "easily".', 1)
    assert (tmp_path / "AGNews" / "test.csv").read_bytes() == data
    AGNews(tmp_path, train=False, download=True)  # present: nothing fetched again
    assert len(asked) == 1

    monkeypatch.setattr(AGNews, "md5", {"train.csv": "0" * 32})
    with pytest.raises(ChecksumError, match="checksum mismatch for train.csv"):
        AGNews(tmp_path, train=True, download=True)
    assert not (tmp_path / "AGNews" / "train.csv").exists()


def test_ag_news_published_checksums():
    # torchtext's AG_NEWS: the same mirror and MD5s
    assert AGNews.md5 == {"train.csv": "b1a00f826fdfbd249f79597b59e1dc12",
                          "test.csv": "d52ea96a97a2d943681189a97654912d"}
    assert AGNews.classes == ["World", "Sports", "Business", "Sci/Tech"]


# ----- tokenized batches ------------------------------------------------------------------------
def test_tokenized_text_batches_cut_the_shared_padding():
    from wally.data import DataLoader

    vocab = Vocab.build(["abcdef"])
    dataset = TokenizedText(["ab", "abcdefabcdef", "", "c"], [0, 1, 0, 1], vocab, length=8)
    ids, label = dataset[0]
    assert ids.tolist() == [2, 3, 0, 0, 0, 0, 0, 0] and label == 0
    batches = [(x.shape, y.tolist()) for x, y in DataLoader(dataset, batch_size=2)]
    assert batches == [((2, 8), [0, 1]), ((2, 1), [0, 1])]


def naive_ids(vocab, text, length, start=0):
    """The reference: the text's ids from ``start``, at most ``length`` of them (None: all)."""
    ids = vocab.encode(text)
    return ids[start:] if length is None else ids[start:start + length]


ALPHABET = "abcdé ű"


@given(texts=st.lists(st.text(ALPHABET, max_size=30), min_size=1, max_size=8),
       length=st.one_of(st.none(), st.integers(1, 12)), seed=st.integers(0, 2**32 - 1))
def test_tokenized_text_reads_whole_first_or_random_windows(texts, length, seed):
    """Every batch row is the text's ids (whole, first ``length``, or a window of ``length`` at
    some offset), padded with 0 to the batch's longest; the loop in naive_ids is the reference."""
    from wally.data._random import using_generator

    vocab = Vocab.build(texts + ["abc"])
    indices = np.arange(len(texts))
    for crop in ("start", "random"):
        dataset = TokenizedText(texts, [0] * len(texts), vocab, length, crop=crop)
        with using_generator(np.random.default_rng(seed)):
            batch = dataset.ids_of(indices)
        kept = [len(naive_ids(vocab, t, length)) for t in texts]
        assert batch.shape == (len(texts), max(1, *kept)) and batch.dtype == np.int64
        for row, text, n in zip(batch, texts, kept):
            whole = vocab.encode(text)
            starts = [0] if crop == "start" else range(len(whole) - n + 1)
            assert any(row[:n].tolist() == naive_ids(vocab, text, length, s) for s in starts)
            assert not row[n:].any()
        ids, label = dataset[len(texts) - 1]
        assert ids.shape == ((length,) if length is not None else (max(1, kept[-1]),))


def test_random_windows_reach_every_offset_and_follow_the_loader_seed():
    from wally.data import DataLoader

    vocab = Vocab.build(["abcdefghij"])
    dataset = TokenizedText(["abcdefghij", "ab"], [0, 1], vocab, 4, crop="random")
    firsts = set()
    for seed in range(60):
        loader = DataLoader(dataset, batch_size=2, generator=seed)
        (ids, _), = list(loader)
        assert ids.shape == (2, 4) and ids[1].tolist() == [2, 3, 0, 0]  # it fits: whole
        firsts.add(int(ids[0, 0]))
        again, = list(DataLoader(dataset, batch_size=2, generator=seed))
        assert again[0].tolist() == ids.tolist()  # the loader's seed fixes the windows
    assert firsts == {2, 3, 4, 5, 6, 7, 8}  # 'a' to 'g': all 7 offsets of a window of 4 in 10


@given(texts=st.lists(st.text(ALPHABET, max_size=30), min_size=1, max_size=8),
       bounds=st.integers(1, 12).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
       seed=st.integers(0, 2**32 - 1))
def test_random_length_windows_are_consecutive_ids_between_the_bounds(texts, bounds, seed):
    """With min_length, each row is a window of between min_length and length consecutive
    ids (a shorter text whole or in part), padded with 0; naive_ids is the reference."""
    from wally.data._random import using_generator

    shortest, length = bounds
    vocab = Vocab.build(texts + ["abc"])
    dataset = TokenizedText(texts, [0] * len(texts), vocab, length, crop="random",
                            min_length=shortest)
    with using_generator(np.random.default_rng(seed)):
        batch = dataset.ids_of(np.arange(len(texts)))
    for row, text in zip(batch, texts):
        whole = vocab.encode(text)
        n = int((row != 0).sum())  # ids are >= 1 (no text holds <pad>)
        assert n == len(whole) or shortest <= n <= length
        assert not row[n:].any()
        assert any(row[:n].tolist() == naive_ids(vocab, text, n, s)
                   for s in range(len(whole) - n + 1))


def test_random_length_windows_reach_every_length_and_offset_and_follow_the_seed():
    from wally.data import DataLoader

    vocab = Vocab.build(["abcdefghij"])
    dataset = TokenizedText(["abcdefghij", "ab"], [0, 1], vocab, 4, crop="random",
                            min_length=2)
    seen = set()
    for seed in range(200):
        (ids, _), = list(DataLoader(dataset, batch_size=2, generator=seed))
        n = int((ids[0] != 0).sum())
        seen.add((n, int(ids[0, 0])))
        assert ids[1].tolist()[:2] == [2, 3] and not ids[1][2:].any()  # never under 2: whole
        again, = list(DataLoader(dataset, batch_size=2, generator=seed))
        assert again[0].tolist() == ids.tolist()
    # windows of 2, 3 and 4 at each of their 9, 8 and 7 offsets in a text of 10
    assert seen == {(n, 2 + s) for n in (2, 3, 4) for s in range(11 - n)}


def test_batches_by_length_sort_a_permutation():
    vocab = Vocab.build(["abc"])
    texts = ["a" * n for n in (5, 1, 9, 0, 3, 7, 2)]
    for length, expected in ((None, [3, 1, 6, 4, 0, 5, 2]), (4, [3, 1, 6, 4, 0, 2, 5])):
        dataset = TokenizedText(texts, [0] * 7, vocab, length)
        batches = dataset.batches_by_length(3)
        assert [len(b) for b in batches] == [3, 3, 1]
        assert [i for b in batches for i in b] == expected  # stable among equal cut lengths
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        dataset.batches_by_length(0)


@pytest.mark.parametrize("kwargs, message", [
    ({"length": 0}, "length must be a positive integer or None, got 0"),
    ({"length": 4, "crop": "middle"}, "crop must be one of ('start', 'random'), got 'middle'"),
    ({"length": 4, "labels": [0]}, "2 texts but 1 labels"),
    ({"length": 4, "min_length": 2}, "min_length needs crop='random' and a length, got "
                                     "crop='start', length=4"),
    ({"length": 4, "crop": "random", "min_length": 5},
     "min_length must be an integer from 1 to the length 4, got 5"),
    ({"length": 4, "crop": "random", "min_length": 0},
     "min_length must be an integer from 1 to the length 4, got 0"),
])
def test_tokenized_text_bad_arguments(kwargs, message):
    arguments = {"texts": ["ab", "c"], "labels": [0, 1], "vocab": Vocab.build(["abc"]),
                 **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        TokenizedText(**arguments)
