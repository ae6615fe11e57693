"""`wally explain graph`: a fully connected layer over N nodes against a GCN layer's shared
weights, measured on karate with wally's layers, by formula on Cora's sizes."""

from __future__ import annotations

import json

import pytest

from wally.cli import main

pytest.importorskip("networkx")

from wally.cli._explain_graph import karate_measured, layer_costs  # noqa: E402


def test_karate_counts_measured_with_wallys_layers_match_the_formulas():
    measured = karate_measured(hops=3)
    formula = layer_costs("karate", 34, 156, 34, 16)
    for key in ("fc_params", "fc_macs", "gcn_params", "gcn_macs"):
        assert measured[key] == formula[key], key
    assert (measured["gcn_params"], measured["gcn_macs"]) == (34 * 16 + 16,
                                                              34 * 34 * 16 + (156 + 34) * 16)
    assert measured["fc_params"] == (34 * 34) * (34 * 16) + 34 * 16
    assert [b["ball_max"] for b in measured["k_hop"]] == [18, 33, 34]


def test_sharing_is_permutation_equivariance_and_the_dense_layer_has_none():
    measured = karate_measured(hops=1)
    assert measured["gcn_permutation_error"] < 1e-5
    assert measured["fc_permutation_error"] > 0.5


def test_the_bigger_graph_follows_its_sizes():
    cora = layer_costs("cora", 2708, 10556, 1433, 16)
    assert cora["fc_params"] == 2708 * 1433 * 2708 * 16 + 2708 * 16
    assert cora["gcn_macs"] == 2708 * 1433 * 16 + (10556 + 2708) * 16
    assert round(cora["params_ratio"]) == 7_328_152


def test_wally_explain_graph_prints_both_graphs_and_the_field(capsys):
    assert main(["explain", "graph"]) == 0
    printed = capsys.readouterr().out
    assert "karate (measured)         34         156    34    16  fully connected" in printed
    assert "168,137,120,320" in printed and "22,944" in printed
    assert "         2         6    21.2    33" in printed
    assert main(["explain", "graph", "--nodes", "10", "--edges", "20", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["bigger"]["graph"] == "custom" and payload["bigger"]["nodes"] == 10
    assert payload["bigger"]["in_features"] == 1433
    assert main(["explain", "graph", "--edges", "-1"]) != 0
    assert "--edges: expected an integer ≥ 0, got -1" in capsys.readouterr().err
