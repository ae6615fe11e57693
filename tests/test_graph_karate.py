"""Zachary's karate club, semi-supervised as in Kipf & Welling (one labelled member per faction):
the data, the GCN model (PyG's keys), the accuracy target, the command line and the picture."""

from __future__ import annotations

import json

import numpy as np
import pytest

import wally
from wally.cli import main

networkx = pytest.importorskip("networkx", reason="the karate club graph: pip install networkx")

from wally.data.graphs import KARATE_LABELLED, karate_club  # noqa: E402
from wally.geometric.train import train_node_classifier  # noqa: E402
from wally.models import gcn  # noqa: E402


def test_karate_data_is_networkx_graph_with_faction_labels():
    data = karate_club()
    assert repr(data) == "Data(x=[34, 34], edge_index=[2, 156], y=[34], train_mask=[34], " \
                         "test_mask=[34])"
    graph = networkx.karate_club_graph()
    pairs = {tuple(sorted(p)) for p in data.edge_index.numpy().T.tolist()}
    assert pairs == {tuple(sorted(e)) for e in graph.edges()}
    assert data.edge_index.dtype == wally.int64 and data.num_edges == 2 * graph.number_of_edges()
    clubs = [graph.nodes[i]["club"] for i in range(34)]
    assert data.y.tolist() == [0 if c == "Mr. Hi" else 1 for c in clubs]
    assert data.y.numpy().sum() == 17
    assert np.flatnonzero(data.train_mask.numpy()).tolist() == list(KARATE_LABELLED) == [0, 33]
    assert data.test_mask.numpy().sum() == 32
    assert data.y[0].item() == 0 and data.y[33].item() == 1


def test_gcn_on_karate_gets_at_least_95_percent_of_the_unlabelled_members():
    wally.manual_seed(0)
    result = train_node_classifier(gcn(), karate_club(), epochs=200)
    assert result.test_accuracy >= 0.95  # 31 of 32 at seed 0: member 8 sits between factions
    assert result.losses[-1] < result.losses[0]


def test_gcn_model_moves_to_pyg_and_back(torch):
    pyg = pytest.importorskip("torch_geometric")
    data = karate_club()
    ours = gcn(hidden_channels=8)
    theirs = pyg.nn.models.GCN(34, 8, num_layers=2, out_channels=2)
    assert repr(ours) == repr(theirs) == "GCN(34, 2, num_layers=2)"
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    ours.eval()
    theirs.eval()
    out = ours(data.x, data.edge_index).detach().numpy()
    expected = theirs(torch.tensor(data.x.numpy()), torch.tensor(data.edge_index.numpy()))
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_summary_counts_the_sparse_product_by_its_non_zeros():
    data = karate_club()
    result = wally.summary(gcn(), input_data=(data.x, data.edge_index), verbose=0)
    # 156 edges + 34 self loops = 190 non-zeros, times 16 then 2 features, plus the two GEMMs
    assert result.total_mult_adds == 34 * 34 * 16 + 34 * 16 * 2 + 190 * (16 + 2)


def test_wally_train_gcn_on_karate(tmp_path, capsys):
    pytest.importorskip("safetensors")
    out = tmp_path / "run"
    assert main(["train", "gcn", "--dataset", "karate", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gcn on karate: 31/32 unlabelled members right" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.95 and metrics["epochs"] == 200
    assert (out / "checkpoint.safetensors").is_file()
    if (out / "graph.png").exists():
        from wally.viz import read_image

        assert read_image(out / "graph.png").shape[:2] == (600, 640)


def test_wally_train_refuses_an_image_model_on_a_graph(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "lenet", "--dataset", "karate"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("argument MODEL: 'lenet' is not a graph model; with --dataset "
                            "karate choose from gcn, lightgcn")


def test_plot_graph_rings_the_wrong_nodes(tmp_path):
    pytest.importorskip("matplotlib")
    from wally.viz.graph import plot_graph

    data = karate_club()
    predicted = data.y.numpy().copy()
    predicted[[8, 20]] = 1 - predicted[[8, 20]]
    picture = plot_graph(data.edge_index, predicted, tmp_path / "g.png", labels=data.y,
                         labelled=KARATE_LABELLED)
    assert picture.info["wrong"] == [8, 20]
    colours = picture.info["colours"]
    assert colours[0] != colours[33] and colours[8] == colours[33]
    # 6 pixels left of node 5's centre (past its number) is its fill colour (Mr. Hi's faction)
    from wally.viz import read_image

    image = read_image(picture.path)
    column, row = picture.panels["graph"].to_pixel(*picture.info["positions"][5])
    assert image[row, column - 6, :3].tolist() == [0x1F, 0x77, 0xB4]


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_receptive_field_of_k_layers_is_the_k_hop_ball(layers):
    """Locality on a graph: after k layers a node's output depends on exactly the members
    within k hops (a gradient probe on the real graph, against networkx's distances)."""
    data = karate_club()
    convs = [wally.nn.GCNConv(34 if i == 0 else 4, 4) for i in range(layers)]
    x = wally.tensor(data.x.numpy(), requires_grad=True)
    node = 16  # a member on the edge of the club: its balls grow slowly
    out = x
    for conv in convs:
        out = conv(out, data.edge_index)
    out[node].sum().backward()
    reached = set(np.flatnonzero(np.abs(x.grad.numpy()).sum(axis=1) > 0).tolist())
    distances = networkx.single_source_shortest_path_length(networkx.karate_club_graph(), node)
    assert reached == {v for v, d in distances.items() if d <= layers}
