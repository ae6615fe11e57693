"""The effective receptive field (Luo et al. 2016): the gradient map against torch, the radius
against a naive loop, the share inside the analytic box, the √n law, the CLI and the plots."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally import nn
from wally.analysis.effective_field import (
    effective_field,
    effective_fields,
    gradient_map,
    radius_holding,
    reinitialised,
    stack_radii,
)
from wally.cli import main


# ----- the radius: a naive loop over pixels ---------------------------------------------------
def naive_radius(mass, centre, share, metric):
    """Pixels one by one: their distance, rings by distinct distance, a ring reaching d + ½,
    linear interpolation between the ring radii (0 mass at radius 0)."""
    rings: dict[float, float] = {}
    total = 0.0
    for index in np.ndindex(*mass.shape):
        offsets = [abs(i - c) for i, c in zip(index, centre)]
        d = max(offsets) if metric == "chebyshev" else math.sqrt(sum(o * o for o in offsets))
        d = round(d, 9)
        rings[d] = rings.get(d, 0.0) + float(mass[index])
        total += float(mass[index])
    previous_r, previous_m, running = 0.0, 0.0, 0.0
    for d in sorted(rings):
        running += rings[d] / total
        if running >= share - 1e-12:
            if running <= previous_m:
                return d + 0.5
            return previous_r + (share - previous_m) / (running - previous_m) * (
                d + 0.5 - previous_r)
        previous_r, previous_m = d + 0.5, running
    return previous_r


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(1, 7), w=st.integers(1, 7), seed=st.integers(0, 10**6),
    share=st.floats(0.05, 1.0), metric=st.sampled_from(["chebyshev", "euclidean"]),
    halves=st.tuples(st.booleans(), st.booleans()), sparse=st.booleans(),
)
def test_radius_matches_a_naive_loop(h, w, seed, share, metric, halves, sparse):
    rng = np.random.default_rng(seed)
    mass = rng.random((h, w))
    if sparse:
        mass *= rng.random((h, w)) < 0.4
        mass[rng.integers(h), rng.integers(w)] = 1.0
    centre = ((h - 1) // 2 + 0.5 * halves[0], (w - 1) // 2 + 0.5 * halves[1])
    assert radius_holding(mass, centre, share, metric) == pytest.approx(
        naive_radius(mass, centre, share, metric), abs=1e-9)


def test_radius_of_a_box_and_a_point():
    assert radius_holding(np.ones((5, 5)), (2, 2), 1.0) == 2.5  # the 5-pixel box's half-width
    assert radius_holding(np.ones((4, 4)), (1.5, 1.5), 1.0) == 2.0
    point = np.zeros((5, 5))
    point[2, 2] = 1
    assert radius_holding(point, (2, 2), 0.5) == pytest.approx(0.25)
    radii = [radius_holding(np.arange(1.0, 50).reshape(7, 7), (3, 3), s) for s in
             (0.2, 0.5, 0.9, 1.0)]
    assert radii == sorted(radii) and radii[0] < radii[-1]


# ----- the gradient map against torch ----------------------------------------------------------
def _pair(seed):
    wally.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(3, 4, 3, stride=2, padding=1, dilation=2), nn.Tanh())
    ref = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, dilation=2),
                              torch.nn.Tanh()).double()
    ref.load_state_dict({k: torch.tensor(np.asarray(v.array, dtype=np.float64))
                         for k, v in model.state_dict().items()})
    return model.to(wally.float64), ref


def _torch_map(ref, x, upto, unit, channel=None):
    xt = torch.tensor(x, requires_grad=True)
    out = ref[:upto](xt)
    picked = out[:, :, unit[0], unit[1]] if channel is None else out[:, channel, unit[0],
                                                                     unit[1]]
    picked.sum().backward()
    return xt.grad.abs().sum(dim=1).mean(dim=0).numpy()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), n=st.integers(1, 5), size=st.integers(9, 16),
       layer=st.sampled_from(["0", "3", "4"]), channel=st.sampled_from([None, 0, 2]),
       corner=st.booleans())
def test_gradient_map_matches_torch(seed, n, size, layer, channel, corner):
    model, ref = _pair(seed)
    x = np.random.default_rng(seed).standard_normal((n, 2, size, size))
    upto = int(layer) + 1
    shape = ref[:upto](torch.tensor(x)).shape[2:]
    unit = (0, shape[1] - 1) if corner else ((shape[0] - 1) // 2, (shape[1] - 1) // 2)
    G, used = gradient_map(model, x, layer, unit if corner else None, channel, chunk=2)
    assert used == unit
    np.testing.assert_allclose(G, _torch_map(ref, x, upto, unit, channel), rtol=1e-10,
                               atol=1e-12)


def test_the_model_is_left_as_it_was():
    model, _ = _pair(0)
    model.train()
    before = {k: np.array(v.array) for k, v in model.state_dict().items()}
    effective_field(model, (2, 12, 12), "3", images=3)
    assert model.training and all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.array, before[k])


def test_batch_average_is_the_mean_of_single_maps():
    model, _ = _pair(1)
    x = np.random.default_rng(2).standard_normal((4, 2, 12, 12))
    whole, _ = gradient_map(model, x, "3")
    singles = [gradient_map(model, x[i:i + 1], "3")[0] for i in range(4)]
    np.testing.assert_allclose(whole, np.mean(singles, axis=0), rtol=1e-12)


# ----- share inside the analytic box -----------------------------------------------------------
def test_all_mass_inside_a_tight_analytic_box():
    wally.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 2, 5, padding=2), nn.Conv2d(2, 2, 3, stride=2))
    f = effective_field(model, (1, 21, 21), None, images=4)
    assert f.share_inside == pytest.approx(1.0)
    # the box is tight: every edge of it carries mass, so a wrong box would lose some
    (r0, r1), (c0, c1) = f.box
    assert (r0, r1) == (c0, c1) and r1 - r0 + 1 == 5 + 2  # r = 5 + (3 − 1)·1
    G = f.map
    assert G[r0, c0:c1 + 1].sum() > 0 and G[r1, c0:c1 + 1].sum() > 0
    assert G[r0:r1 + 1, c0].sum() > 0 and G[r0:r1 + 1, c1].sum() > 0
    assert f.analytic_radius == 3.5 and 0 < f.radius < 3.5
    assert f.radius == pytest.approx(radius_holding(G, f.centre, 0.95))
    assert 0 < f.area_share < 1
    assert effective_field(model, (1, 21, 21), share=1.0, images=2).radius == 3.5


def test_lenet_trained_and_untrained_keys_and_inputs():
    model = wally.models.lenet()
    x = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    fields = effective_fields(model, (1, 28, 28), "5", x=x)
    assert set(fields) == {"trained", "untrained"}
    for f in fields.values():
        assert f.inputs == "given" and f.images == 3 and f.unit == (2, 2)
        assert f.box == ((6, 21), (6, 21)) and f.share_inside == pytest.approx(1.0)
    assert not np.allclose(fields["trained"].map, fields["untrained"].map)
    fresh = reinitialised(model, 1)
    assert not np.allclose(fresh[0].weight.array, model[0].weight.array)
    assert json.loads(json.dumps(fields["trained"].to_dict()))["layer"] == "5"


def test_bad_arguments_name_the_op_and_the_value():
    model, _ = _pair(0)
    with pytest.raises(ValueError, match=r"effective_field: share must be a number in \(0, 1\]"
                                         r", got 1.5"):
        effective_field(model, (2, 12, 12), share=1.5)
    with pytest.raises(ValueError, match="effective_field: metric must be one of .* got 'l1'"):
        effective_field(model, (2, 12, 12), metric="l1")
    with pytest.raises(ValueError, match=r"gradient_map: unit \(9, 9\) is not a position"):
        effective_field(model, (2, 12, 12), "3", unit=(9, 9))
    with pytest.raises(ValueError, match=r"gradient_map: expected an input .* got shape \(4, 4\)"):
        gradient_map(model, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="effective_field: the model has no layer named 'x'"):
        effective_field(model, (2, 12, 12), "x")
    with pytest.raises(ValueError, match="effective_field: images must be a positive int, got 0"):
        effective_field(model, (2, 12, 12), images=0)
    with pytest.raises(ValueError, match="give inputs x or an input_size"):
        effective_field(model)
    with pytest.raises(ValueError, match="radius_holding: the map must be non-negative"):
        radius_holding(np.zeros((3, 3)), (1, 1))
    with pytest.raises(ValueError, match="stack_radii: depth must be an int ≥ 2, got 1"):
        stack_radii(1)


# ----- the theory: √n against n ---------------------------------------------------------------
@pytest.mark.parametrize("relu", [False, True])
def test_effective_radius_grows_like_sqrt_n(relu):
    r = stack_radii(24, relu, seeds=6, seed=11)
    assert r.analytic == tuple(n + 0.5 for n in range(1, 25))
    assert r.analytic_exponent == pytest.approx(1.0, abs=0.06)
    assert r.effective_exponent == pytest.approx(0.5, abs=0.15)
    # the effective field fills a shrinking share of the box
    ratios = [e / a for e, a in zip(r.effective, r.analytic)]
    assert ratios[-1] < 0.75 * ratios[3]


# ----- the command line and the pictures -------------------------------------------------------
def test_cli_model_json_and_plot(capsys, tmp_path):
    out = tmp_path / "erf.png"
    assert main(["explain", "erf", "lenet", "--layer", "5", "--images", "2", "--json",
                 "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["inputs"] == "random normal inputs" and "trained" not in report
    assert report["untrained"]["box"] == [[6, 21], [6, 21]]
    assert report["untrained"]["share_inside_box"] == pytest.approx(1.0)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_checkpoint_uses_its_dataset_and_compares(capsys, tmp_path):
    path = tmp_path / "lenet.safetensors"
    from wally.io import save_checkpoint

    save_checkpoint(path, wally.models.lenet(), extra={"dataset": "synthetic"})
    assert main(["explain", "erf", str(path), "--layer", "2", "--images", "3"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("trained: layer 2") and "\nuntrained: layer 2" in text
    assert "synthetic test images" in text


def test_cli_stack_and_errors(capsys, tmp_path):
    out = tmp_path / "stack.png"
    assert main(["explain", "erf", "--stack", "6", "--seeds", "2", "--json",
                 "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["linear"]["depths"] == [1, 2, 3, 4, 5, 6] and report["relu"]["relu"]
    assert out.stat().st_size > 1000
    for argv, message in [
        (["explain", "erf"], "expected MODEL"),
        (["explain", "erf", "lenet", "--stack", "4"], "not both"),
        (["explain", "erf", "lenet", "--layer", "nope"], "no layer named 'nope'"),
        (["explain", "erf", "--stack", "1"], "N ≥ 2"),
    ]:
        assert main(argv) != 0
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_radius_follows_the_weights_trained_versus_fresh():
    """Weights concentrated on the kernels' centre taps (as if trained to look locally) give a
    smaller radius than the reinitialised copy, inside the same analytic box."""
    wally.manual_seed(5)
    model = nn.Sequential(*[nn.Conv2d(2, 2, 3, padding=1, bias=False) for _ in range(4)])
    for conv in model:
        conv.weight.array[...] *= 0.05
        conv.weight.array[:, :, 1, 1] += 1.0
    fields = effective_fields(model, (2, 15, 15), images=2)
    trained, fresh = fields["trained"], fields["untrained"]
    assert trained.box == fresh.box == ((3, 11), (3, 11))
    assert trained.analytic_radius == fresh.analytic_radius == 4.5
    assert trained.radius < 1.0 < 2.0 < fresh.radius < 4.5
