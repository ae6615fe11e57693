"""The tokenizer and vocabulary: ids, <pad>/<unk>, JSON round trips (files and checkpoints),
and a malformed vocabulary refused by name."""

from __future__ import annotations

import json

import pytest

from wally.data.vocab import PAD, UNK, Vocab, normalize_text, tokenize


def test_build_orders_by_frequency_then_code_point():
    vocab = Vocab.build(["abba", "abc"], level="char")
    assert vocab.tokens == [PAD, UNK, "a", "b", "c"]  # a and b 3 times each, then c
    assert len(vocab) == 5 and vocab.pad_index == 0 and vocab.unk_index == 1


def test_characters_outside_the_vocabulary_are_unk():
    vocab = Vocab.build(["abba", "abc"])
    assert vocab.encode("cab!") == [4, 2, 3, 1]
    assert vocab.unknown("cab!?!") == ["!", "?"]
    assert vocab.encode("cab!", length=6) == [4, 2, 3, 1, 0, 0]
    assert vocab.encode("cabcab", length=3) == [4, 2, 3]
    assert vocab.decode([4, 2, 3, 0, 0]) == "cab"


def test_whitespace_runs_are_one_space_and_nfc():
    assert normalize_text("  a\n\tb  ") == "a b"
    assert tokenize("e\u0301") == ["\u00e9"]  # combining accent composed (NFC)
    assert tokenize("Don't stop!", level="word", lower=True) == ["don", "'", "t", "stop", "!"]


def test_min_freq_and_max_size():
    texts = ["aaab", "ab", "c"]
    assert Vocab.build(texts, min_freq=2).tokens == [PAD, UNK, "a", "b"]
    assert Vocab.build(texts, max_size=3).tokens == [PAD, UNK, "a"]


def test_word_level_encode():
    vocab = Vocab.build(["the cat", "the dog"], level="word")
    assert vocab.tokens[:3] == [PAD, UNK, "the"]
    assert vocab.encode("the cow") == [2, 1]
    assert vocab.decode(vocab.encode("the cat")) == "the cat"


def test_json_round_trip_file(tmp_path):
    vocab = Vocab.build(["Żółw", "жизнь"], lower=True)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert Vocab.load(path) == vocab
    assert Vocab.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab


def test_saved_with_the_checkpoint(tmp_path):
    import wally
    from wally.io import load_checkpoint, save_checkpoint

    vocab = Vocab.build(["hello", "world"])
    model = wally.models.textcnn(vocab_size=len(vocab), num_classes=2, embedding_dim=4,
                                 num_filters=2)
    save_checkpoint(tmp_path / "m.safetensors", model, extra={"vocab": vocab.to_dict()})
    checkpoint = load_checkpoint(tmp_path / "m.safetensors")
    assert Vocab.from_dict(checkpoint.extra["vocab"]) == vocab


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(format="other"), "not a wally vocabulary"),
    (lambda d: d.update(version=2), "not a wally vocabulary"),
    (lambda d: d.update(level="byte"), "level must be one of"),
    (lambda d: d.update(lower="yes"), "lower must be true or false"),
    (lambda d: d.update(tokens="abc"), "tokens must be a list of strings"),
    (lambda d: d.update(tokens=["a", "b"]), "must start with '<pad>'"),
    (lambda d: d["tokens"].append("a"), r"token 5 \('a'\) appears twice"),
    (lambda d: d["tokens"].append(7), "token 5 is '7', not a string"),
    (lambda d: d["tokens"].append(""), "not a string of 1 to"),
])
def test_malformed_vocabulary_refused(tmp_path, change, message):
    document = Vocab.build(["abc"]).to_dict()  # tokens <pad> <unk> a b c
    change(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=message) as info:
        Vocab.load(path)
    assert str(path) in str(info.value)


def test_not_json_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{tokens: [")
    with pytest.raises(ValueError, match="not valid JSON"):
        Vocab.load(path)


def test_bad_build_arguments():
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build(["a"], min_freq=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocab.build(["a"], max_size=1)
    with pytest.raises(TypeError, match="expected a str"):
        tokenize(b"bytes")
