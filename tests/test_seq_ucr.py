"""wally.data.UCR and its strict .ts parser, on files the tests write and on aeon's real ones."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest

import wally
from _seq_data import HEADER, MULTI, ROWS, aeon_root, write_ucr
from wally.data import UCR, ChecksumError, DataLoader, DatasetFormatError, pad_collate
from wally.data import download as download_module
from wally.data import ucr as ucr_module
from wally.data.errors import DatasetNotFoundError
from wally.data.ucr import read_ts, ucr_folder


def test_univariate_items_classes_and_layout(tmp_path):
    root = write_ucr(tmp_path)
    data = UCR("Toy", root=root)
    assert len(data) == 3 and data.classes == ["up", "down"]
    assert data.class_to_idx == {"up": 0, "down": 1}
    x, y = data[1]
    assert isinstance(x, wally.Tensor) and x.dtype == wally.float32 and tuple(x.shape) == (1, 4)
    assert y == 1 and isinstance(y, int)
    np.testing.assert_array_equal(x.numpy(), [[4, 3, 2, 1]])
    assert data.targets.tolist() == [0, 1, 0]
    assert "Dataset UCR Toy (train)" in repr(data)


def test_multivariate_unequal_length(tmp_path):
    root = write_ucr(tmp_path, "Multi", MULTI)
    data = UCR("Multi", root=root, train=False)
    assert data.num_channels == 2 and not data.equal_length
    assert [tuple(data[i][0].shape) for i in range(3)] == [(2, 3), (2, 2), (2, 5)]
    assert [data[i][1] for i in range(3)] == [1, 0, 2]
    np.testing.assert_array_equal(data[1][0].numpy(), [[7, 8], [9, 10]])
    (x, lengths), y = next(iter(DataLoader(data, batch_size=3, collate_fn=pad_collate)))
    assert tuple(x.shape) == (3, 2, 5) and lengths.tolist() == [3, 2, 5]
    assert lengths.dtype == wally.int64 and y.tolist() == [1, 0, 2]
    np.testing.assert_array_equal(x.numpy()[1, :, 2:], 0)  # right padding with zeros


def test_missing_values_read_as_nan_only_when_declared(tmp_path):
    text = HEADER.replace("@missing false", "@missing true") + "1,?,3,4:up\n"
    path = tmp_path / "m.ts"
    path.write_text(text)
    series = read_ts(path).series[0]
    assert np.isnan(series[0, 1]) and series[0, 3] == 4
    path.write_text(HEADER + "1,?,3,4:up\n")
    with pytest.raises(DatasetFormatError, match=r"m\.ts, line 10: .*'\?' \(missing\)"):
        read_ts(path)


# Each malformed file is refused with its file, its line number and what is wrong.
BAD = [
    (HEADER + "1,2,3:up\n", 10, r"length 3, expected 4 \(@seriesLength\)"),
    (HEADER + "1,2,x,4:up\n", 10, r"value 2: expected a number, got 'x'"),
    (HEADER + "1,2,inf,4:up\n", 10, r"expected a finite number"),
    (HEADER + "1,2,3,4:sideways\n", 10, r"class label 'sideways' is not one of"),
    (HEADER + "1,2,3,4:5,6,7,8:up\n", 10, r"2 dimensions, expected 1"),
    (HEADER + "1,2,,4:up\n", 10, r"expected a number, got ''"),
    (HEADER + ":up\n", 10, r"dimension 0 is empty"),
    (HEADER + ROWS + "@data\n", 13, r"header or comment line after @data"),
    (HEADER.replace("@seriesLength 4", "@seriesLength four"), 7, r"positive integer"),
    (HEADER.replace("@missing false", "@missing maybe"), 4, r"'true' or 'false'"),
    (HEADER.replace("@missing false", "@colour blue"), 4, r"unknown header tag @colour"),
    (HEADER.replace("@missing false", "@univariate true"), 5, r"given twice \(first on line 4"),
    (HEADER.replace("@data\n", "") + ROWS, 9, r"expected a header line"),
    (HEADER.replace("@data\n", ""), 8, r"no @data line"),
    (HEADER.replace("@classLabel true up down", "@classLabel true"), 8, r"declares no labels"),
    (HEADER.replace("@classLabel true up down", "@classLabel true up up"), 8, r"repeats"),
    (HEADER.replace("@classLabel true up down\n", ""), 8, r"no @classLabel"),
    (HEADER.replace("@timeStamps false", "@timeStamps true") + ROWS, 3, r"time-stamped"),
    (HEADER.replace("@classLabel true up down", "@classLabel false") + ROWS, 8, r"no class"),
    (HEADER.replace("@univariate true", "@univariate true\n@dimensions 2"), 6,
     r"@univariate true but @dimensions 2"),
    (HEADER, 9, r"no cases after @data"),
    (MULTI.replace("7,8:9,10:a", "7,8:9,10,11:a"), 10, r"different lengths \[2, 3\]"),
    (MULTI.replace("7,8:9,10:a", "7,8:a"), 10, r"1 dimensions, expected 2"),
    (HEADER.replace("@equalLength true", "@equalLength false"), 7,
     r"@seriesLength given but @equalLength false"),
    (HEADER.replace("@seriesLength 4\n", "") + "1,2,3,4:up\n1,2:down\n", 10,
     r"length 2, expected 4 like case 0"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_malformed_files_refused_with_line(tmp_path, text, line, message):
    path = tmp_path / "Bad_TRAIN.ts"
    path.write_text(text)
    with pytest.raises(DatasetFormatError, match=rf"Bad_TRAIN\.ts, line {line}: .*{message}"):
        read_ts(path)


def test_not_utf8_and_not_a_regular_file(tmp_path):
    path = tmp_path / "b.ts"
    path.write_bytes(HEADER.encode() + b"1,2,3,4:\xff\n")
    with pytest.raises(DatasetFormatError, match=r"line 10: not UTF-8"):
        read_ts(path)
    with pytest.raises(ValueError, match="directory"):
        read_ts(tmp_path)


def test_missing_files_message_and_archive_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"Nope_TRAIN\.ts not found.*download"):
        UCR("Nope", root=tmp_path)
    with pytest.raises(ValueError, match="expected a dataset name"):
        UCR("../etc", root=tmp_path)
    # the archive's own layout <root>/<Name>/ (aeon's datasets/data) is accepted too
    (tmp_path / "Toy").mkdir()
    (tmp_path / "Toy" / "Toy_TRAIN.ts").write_text(HEADER + ROWS)
    assert ucr_folder("Toy", tmp_path) == tmp_path / "Toy"
    assert len(UCR("Toy", root=tmp_path)) == 3
    # ... but wally's layout wins when both exist
    write_ucr(tmp_path, "Toy", HEADER + ROWS[:11])
    assert ucr_folder("Toy", tmp_path) == tmp_path / "UCR" / "Toy"
    assert len(UCR("Toy", root=tmp_path)) == 1


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


class _Response(io.BytesIO):
    pass


def _serve(monkeypatch, payload: bytes, seen: list[str]) -> None:
    def fake(url, timeout):
        seen.append(url)
        return _Response(payload)

    monkeypatch.setattr(download_module, "urlopen", fake)


def test_download_extracts_and_checks_sha256(tmp_path, monkeypatch):
    train, test = HEADER + ROWS, HEADER + ROWS[:11]
    payload = _zip({"Toy/Toy_TRAIN.ts": train, "Toy/Toy_TEST.ts": test,
                    "Toy/Toy_TRAIN.arff": "ignored"})
    seen: list[str] = []
    _serve(monkeypatch, payload, seen)
    monkeypatch.setitem(ucr_module.SHA256, "Toy_TRAIN.ts",
                        hashlib.sha256(train.encode()).hexdigest())
    monkeypatch.setitem(ucr_module.SHA256, "Toy_TEST.ts",
                        hashlib.sha256(test.encode()).hexdigest())
    data = UCR("Toy", root=tmp_path, train=False, download=True)
    assert seen == ["https://timeseriesclassification.com/aeon-toolkit/Toy.zip"]
    assert len(data) == 1
    assert sorted(p.name for p in (tmp_path / "UCR" / "Toy").iterdir()) == [
        "Toy.zip", "Toy_TEST.ts", "Toy_TRAIN.ts"]
    UCR("Toy", root=tmp_path, download=True)  # present now: no second download
    assert len(seen) == 1


def test_download_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    payload = _zip({"Toy_TRAIN.ts": HEADER + ROWS, "Toy_TEST.ts": HEADER + ROWS})
    _serve(monkeypatch, payload, [])
    monkeypatch.setitem(ucr_module.SHA256, "Toy_TEST.ts", "0" * 64)
    monkeypatch.setitem(ucr_module.SHA256, "Toy_TRAIN.ts", "0" * 64)
    with pytest.raises(ChecksumError, match=r"Toy_TEST\.ts.*expected sha256 0000"):
        UCR("Toy", root=tmp_path, download=True)
    left = sorted(p.name for p in (tmp_path / "UCR" / "Toy").iterdir())
    assert left == ["Toy.zip"]  # no .ts file, no temporary file


def test_download_unknown_checksum_warns_and_bad_zip_refused(tmp_path, monkeypatch):
    _serve(monkeypatch, _zip({"Odd_TRAIN.ts": HEADER + ROWS, "Odd_TEST.ts": HEADER + ROWS}),
           [])
    with pytest.warns(UserWarning, match=r"no SHA-256 is known for Odd_"):
        assert len(UCR("Odd", root=tmp_path, download=True)) == 3
    _serve(monkeypatch, _zip({"Half_TRAIN.ts": HEADER + ROWS}), [])
    with pytest.raises(DatasetFormatError, match=r"holds no Half_TEST\.ts"):
        UCR("Half", root=tmp_path, download=True)
    _serve(monkeypatch, b"not a zip", [])
    with pytest.raises(DatasetFormatError, match="not a zip archive"):
        UCR("Junk", root=tmp_path, download=True)


def test_aeon_files_have_the_recorded_checksums():
    root = aeon_root("GunPoint", "JapaneseVowels")
    for name in ("GunPoint", "JapaneseVowels"):
        for split in ("TRAIN", "TEST"):
            path = root / name / f"{name}_{split}.ts"
            assert ucr_module.file_sha256(path) == ucr_module.SHA256[path.name]


def test_real_gunpoint_and_japanese_vowels():
    root = aeon_root("GunPoint", "JapaneseVowels", "BasicMotions")
    train, test = UCR("GunPoint", root=root), UCR("GunPoint", root=root, train=False)
    assert (len(train), len(test), train.classes) == (50, 150, ["1", "2"])
    assert tuple(train[0][0].shape) == (1, 150)
    vowels = UCR("JapaneseVowels", root=root, train=False)
    assert len(vowels) == 370 and vowels.num_channels == 12 and len(vowels.classes) == 9
    assert (int(vowels.lengths.min()), int(vowels.lengths.max())) == (7, 29)
    motions = UCR("BasicMotions", root=root)
    assert motions.classes == ["Standing", "Running", "Walking", "Badminton"]
    assert tuple(motions[0][0].shape) == (6, 100)
