"""The receptive field on a graph is the k-hop ball: k_hop_balls against networkx's distances,
against a gradient probe through GCNConv / SAGEConv / LGConv stacks on the real karate graph,
and as `wally summary` shows it for gcn and lightgcn."""

from __future__ import annotations

import json

import numpy as np
import pytest

import wally
from wally.cli import main
from wally.geometric.fields import graph_fields, k_hop_balls, probe_field

networkx = pytest.importorskip("networkx")

from wally.data.graphs import karate_club  # noqa: E402
from wally.models import gcn  # noqa: E402


def _distance_balls(hops):
    lengths = dict(networkx.all_pairs_shortest_path_length(networkx.karate_club_graph()))
    return np.array([[lengths[i].get(j, 99) <= hops for j in range(34)] for i in range(34)])


@pytest.mark.parametrize("hops", [0, 1, 2, 3, 5])
def test_k_hop_balls_are_networkx_distance_balls(hops):
    data = karate_club()
    np.testing.assert_array_equal(k_hop_balls(data.edge_index, 34, hops), _distance_balls(hops))


def test_k_hop_balls_follow_the_direction_messages_flow():
    # 0 → 1 → 2: node 2 hears from 1 after one hop and from 0 after two; 0 hears from nobody
    balls = k_hop_balls(np.array([[0, 1], [1, 2]]), 3, 2)
    assert balls.astype(int).tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    with pytest.raises(ValueError, match="k_hop_balls: hops must be a non-negative integer, "
                                         "got -1"):
        k_hop_balls(np.array([[0], [1]]), 2, -1)


@pytest.mark.parametrize("kind", ["gcn", "sage", "lgconv"])
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_the_gradient_probe_finds_exactly_the_k_hop_ball(kind, layers):
    data = karate_club()
    wally.manual_seed(layers)
    convs = {"gcn": lambda i: wally.nn.GCNConv(34 if i == 0 else 4, 4),
             "sage": lambda i: wally.nn.SAGEConv(34 if i == 0 else 4, 4),
             "lgconv": lambda i: wally.nn.LGConv()}[kind]
    stack = [convs(i) for i in range(layers)]

    def forward(x):
        out = total = x
        for conv in stack:
            out = conv(out, data.edge_index)
            if kind == "lgconv":
                total = total + out  # LightGCN sums every layer's embedding
        return total if kind == "lgconv" else out

    balls = k_hop_balls(data.edge_index, 34, layers)
    for node in (0, 16, 26, 33):
        assert probe_field(forward, data.x, node) == set(np.flatnonzero(balls[node]).tolist())


def test_graph_fields_lists_every_propagating_layer_with_its_ball_sizes():
    data = karate_club()
    fields = graph_fields(gcn(num_layers=3), data.edge_index, 34)
    assert [row[:2] for row in fields.rows] == [("convs.0: GCNConv", 1), ("convs.1: GCNConv", 2),
                                                ("convs.2: GCNConv", 3)]
    for (_, hops, lo, mean, hi) in fields.rows:
        sizes = _distance_balls(hops).sum(axis=1)
        assert (lo, hi) == (sizes.min(), sizes.max()) and mean == pytest.approx(sizes.mean())
    assert "convs.1: GCNConv             2         6      21.2      33" in str(fields)


def test_wally_summary_gcn_runs_on_karate_and_shows_the_k_hop_field(capsys):
    assert main(["summary", "gcn"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("on karate:")
    assert "--input-size" not in printed
    assert "MACs: 23,004 (Linear 19,584, SparseDenseProduct 3,420)" in printed
    assert "convs.0: GCNConv             1         2       5.6      18" in printed
    assert main(["summary", "gcn", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["graph"] == "karate"
    assert [r["hops"] for r in payload["graph_receptive_field"]["layers"]] == [1, 2]


def test_wally_summary_lightgcn_runs_on_the_debian_graph(capsys):
    assert main(["summary", "lightgcn", "--depth", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("on debian:")
    assert "Receptive field on the graph (3668 nodes)" in printed
    assert "convs.2: LGConv              3" in printed


@pytest.mark.parametrize("argv, message", [
    (["summary", "gcn", "--input-size", "1", "3", "32", "32"],
     "--input-size: gcn takes a graph, not an image"),
    (["summary", "gcn", "--dataset", "debian"], "--dataset debian: a GCN runs on karate"),
    (["summary", "lenet", "--dataset", "karate"], "--dataset karate: lenet is not a graph model"),
])
def test_wally_summary_refuses_graph_options_that_do_not_fit(argv, message, capsys):
    assert main(argv) != 0
    assert message in capsys.readouterr().err
