"""Input-size bounds follow the rank of a model's input: a series' length is not an image's side.

``check_input_size`` once read an int as a square side for every model, so a series model with
more than 2,048 steps (``5000² > 4 Mi``) or more than 4,096 steps was refused when its
checkpoint was loaded or summarised. A series (and a text) is now bounded by its value count.
"""

from __future__ import annotations

import json

import pytest

import wally
from wally.cli import main
from wally.models import get_model
from wally.models.registry import (
    MAX_INPUT_SIDE,
    MAX_INPUT_VALUES,
    check_config,
    check_input_size,
    input_spatial_dims,
)

pytest.importorskip("safetensors", reason="checkpoints need safetensors")
import safetensors.numpy as stnp  # noqa: E402
from safetensors import safe_open  # noqa: E402

LONG = 5000  # past MAX_INPUT_SIDE, and 5000² is past MAX_INPUT_VALUES


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def rewrite_config(source, dest, **kwargs):
    """A copy of checkpoint ``source`` whose model config has ``kwargs`` changed."""
    arrays = stnp.load_file(str(source))
    with safe_open(str(source), "np") as handle:
        metadata = dict(handle.metadata())
    payload = json.loads(metadata["wally"])
    payload["model_config"]["kwargs"].update(kwargs)
    metadata["wally"] = json.dumps(payload)
    stnp.save_file(arrays, str(dest), metadata=metadata)
    return dest


def test_the_rank_of_the_input_decides_what_an_int_means():
    assert LONG > MAX_INPUT_SIDE and LONG**2 > MAX_INPUT_VALUES
    assert check_input_size(LONG, spatial_dims=1) == (LONG,)
    assert check_input_size([12, LONG], spatial_dims=1) == (12, LONG)
    assert check_input_size(MAX_INPUT_VALUES, spatial_dims=1) == (MAX_INPUT_VALUES,)
    assert check_input_size(2000) == (2000, 2000)  # an image: a square side, as before
    assert check_input_size([3, 1024, 1024]) == (3, 1024, 1024)
    with pytest.raises(ValueError, match=r"x: every size must be from 1 to 4,096, got 5000"):
        check_input_size(LONG, "x")  # an image side is still bounded
    with pytest.raises(ValueError, match=r"2048\] is 8,388,608 values.*limit of 4,194,304"):
        check_input_size([2, 2048, 2048])
    with pytest.raises(ValueError, match=r"2049 is 4,198,401 values per input"):
        check_input_size(2049)  # the square of a side counts


@pytest.mark.parametrize("size, words", [
    (MAX_INPUT_VALUES + 1, "the length must be from 1 to 4,194,304 steps, got 4194305"),
    ([2, MAX_INPUT_VALUES // 2 + 1], "values per input, over wally's limit of 4,194,304"),
    ([5000, 10], "expected 1 to 4,096 channels, got [5000, 10]"),
    ([1, 2, 3], "expected 1 or 2 integers (C T or the length T), got [1, 2, 3]"),
    (0, "the length must be from 1"),
    (True, "expected 1 or 2 integers"),
])
def test_a_series_too_large_is_refused_with_the_limit(size, words):
    with pytest.raises(ValueError) as info:
        check_input_size(size, "tcn's input_size", spatial_dims=1)
    assert str(info.value).startswith("tcn's input_size: ") and words in str(info.value)


def test_models_register_their_input_rank():
    assert [input_spatial_dims(n) for n in ("tcn", "fcn1d", "textcnn")] == [1, 1, 1]
    assert [input_spatial_dims(n) for n in ("lenet", "nin", "resnet", "wally_finder")] == [2] * 4
    assert input_spatial_dims(get_model("tcn", channels=[4])) == 1
    assert input_spatial_dims(get_model("lenet")) == 2
    assert input_spatial_dims(wally.nn.Linear(2, 2)) == 2  # not from the zoo: an image model
    with pytest.raises(ValueError, match="spatial_dims must be 1 or 2, got 3"):
        from wally.models.registry import register_model
        register_model(spatial_dims=3)


def test_check_config_bounds_a_series_by_its_values():
    check_config({"name": "tcn", "kwargs": {"in_channels": 12, "input_size": LONG}})
    check_config({"name": "fcn1d", "kwargs": {"input_size": [LONG]}})
    with pytest.raises(ValueError, match=r"input_size is 400000 with 12 input channels: "
                                         r"4,800,000 values per input"):
        check_config({"name": "tcn", "kwargs": {"in_channels": 12, "input_size": 400_000}})
    with pytest.raises(ValueError, match=r"input_size 4194305: the length must be"):
        check_config({"name": "fcn1d", "kwargs": {"input_size": MAX_INPUT_VALUES + 1}})
    with pytest.raises(ValueError, match=r"input_size 5000: every size must be from 1 to 4,096"):
        check_config({"name": "lenet", "kwargs": {"input_size": LONG}})


@pytest.mark.parametrize("name, kwargs", [
    ("tcn", {"channels": [8, 8], "kernel_size": 3}),
    ("fcn1d", {}),
])
def test_a_long_series_model_builds_saves_loads_and_summarises(name, kwargs, tmp_path, capsys):
    from wally.analysis import summary
    from wally.io import load_checkpoint, save_checkpoint

    wally.manual_seed(0)
    model = get_model(name, in_channels=2, num_classes=3, input_size=LONG, **kwargs)
    assert model.input_size == (2, LONG)
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(path, model, extra={"input_size": [2, LONG]})
    loaded = load_checkpoint(path).model
    assert loaded.input_size == (2, LONG)
    for key, value in model.state_dict().items():
        assert (loaded.state_dict()[key].numpy() == value.numpy()).all(), key

    result = summary(loaded, (1, 2, LONG), verbose=0)
    assert result.total_params == sum(p.numel() for p in loaded.parameters())
    assert result.summary_list[-1].output_shape == [(1, 3)]
    code, out, err = run_cli(capsys, "summary", path, "--depth", "1")
    assert code == 0, err
    assert "input (1, 2, 5000) float32" in out
    code, out, err = run_cli(capsys, "summary", name, "--input-size", "1", "2", LONG,
                             "--depth", "1")
    assert code == 0, err
    assert "input (1, 2, 5000) float32" in out


def test_a_checkpoint_asking_for_too_long_a_series_is_refused(tmp_path, capsys):
    from wally.io import CheckpointError, load_checkpoint, save_checkpoint

    path = tmp_path / "tcn.safetensors"
    save_checkpoint(path, get_model("tcn", channels=[4], input_size=LONG))
    huge = rewrite_config(path, tmp_path / "huge.safetensors", input_size=MAX_INPUT_VALUES + 1)
    with pytest.raises(CheckpointError, match=r"huge.safetensors: its model config input_size "
                                              r"4194305: the length must be from 1 to "
                                              r"4,194,304 steps"):
        load_checkpoint(huge)
    code, _, err = run_cli(capsys, "summary", "tcn", "--input-size", "1", "1",
                           MAX_INPUT_VALUES + 1)
    assert code == 1
    assert "--input-size: the length must be from 1 to 4,194,304 steps, got [1, 4194305]" in err
