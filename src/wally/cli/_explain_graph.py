r"""``wally explain graph``: the study note's argument for convolution, on a graph.

A fully connected layer over the features of all :math:`N` nodes at once maps
:math:`N F_{in}` numbers to :math:`N F_{out}` with its own weight for every pair,
:math:`N F_{in} \times N F_{out}` of them, and costs as many multiply-adds; it ties each output
to every node (no locality) and to the order the nodes happen to be numbered in (no sharing).
A GCN layer (Kipf & Welling 2017), :math:`X' = \hat A X W + b` with
:math:`\hat A = D^{-1/2}(A + I)D^{-1/2}`, shares one :math:`F_{in} \times F_{out}` matrix
across all nodes (the graph's translation invariance is permutation equivariance) and mixes
only neighbours (the window of half-width Δ becomes the 1-hop ball, k layers the k-hop ball).
Its cost is :math:`N F_{in} F_{out}` for the shared transform plus one multiply-add per
non-zero of :math:`\hat A` (E edges and N self loops) and output feature.

For Zachary's karate club everything is measured on the real graph with wally's own layers
(parameters counted, the propagation's non-zeros counted, permutation equivariance checked);
for the bigger graph the numbers follow from its sizes (Cora's by default: 2,708 papers,
10,556 directed citation edges, 1,433 words, 16 hidden units, as Kipf & Welling use it).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from wally.cli import CommandError
from wally.cli.summary import _positive_int

CORA: dict[str, Any] = {"name": "cora (sizes)", "nodes": 2708, "edges": 10556,
                        "in_features": 1433, "out_features": 16}


def register_topic(topics: Any) -> None:
    """Add the ``graph`` topic to ``wally explain``'s sub-parsers."""
    parser = topics.add_parser(
        "graph", help="a fully connected layer over N nodes vs a GCN layer's shared weights",
        description="The note's argument on a graph: parameters and multiply-adds of a fully "
                    "connected layer over all N nodes' features (N·F_in × N·F_out weights, "
                    "nothing shared) beside a GCN layer's shared F_in × F_out weights, for "
                    "Zachary's karate club (measured) and a bigger graph (Cora's sizes, or "
                    "--nodes/--edges/--in-features/--out-features); then the k-hop receptive "
                    "field on karate and a permutation test.",
    )
    parser.add_argument("--nodes", type=_positive_int, default=None, metavar="N",
                        help="the bigger graph's node count (default Cora's 2708)")
    parser.add_argument("--edges", type=int, default=None, metavar="E",
                        help="its directed edge count (default Cora's 10556)")
    parser.add_argument("--in-features", type=_positive_int, default=None, metavar="F")
    parser.add_argument("--out-features", type=_positive_int, default=None, metavar="F")
    parser.add_argument("--hops", type=_positive_int, default=3, metavar="K",
                        help="show the k-hop field up to K layers (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run_graph)


def layer_costs(name: str, nodes: int, edges: int, in_features: int,
                out_features: int) -> dict[str, Any]:
    """The two layers' parameters and multiply-adds on a graph of these sizes (formulas in the
    module docs); biases counted, MACs for one forward pass over the whole graph."""
    fc_params = nodes * in_features * nodes * out_features + nodes * out_features
    fc_macs = nodes * in_features * nodes * out_features
    gcn_params = in_features * out_features + out_features
    nnz = edges + nodes
    gcn_macs = nodes * in_features * out_features + nnz * out_features
    return {"graph": name, "nodes": nodes, "edges": edges, "in_features": in_features,
            "out_features": out_features, "fc_params": fc_params, "fc_macs": fc_macs,
            "gcn_params": gcn_params, "gcn_macs": gcn_macs, "propagation_nnz": nnz,
            "params_ratio": fc_params / gcn_params, "macs_ratio": fc_macs / gcn_macs}


def karate_measured(hops: int) -> dict[str, Any]:
    """Karate's row, counted from wally's real layers and graph: GCNConv(34, 16)'s parameters,
    wally.summary's MACs, nn.Linear(34·34, 34·16)'s parameters; the k-hop balls; and how far
    each layer's output moves when the members are renumbered (GCN: rounding; FC: all of it)."""
    import wally
    from wally import nn
    from wally.analysis import summary
    from wally.autograd import no_grad
    from wally.backend import xp
    from wally.data.graphs import karate_club
    from wally.geometric.fields import k_hop_balls
    from wally.tensor import Tensor

    data = karate_club()
    n, f_in, f_out = data.num_nodes, data.num_node_features, 16
    wally.manual_seed(0)
    conv, dense = nn.GCNConv(f_in, f_out), nn.Linear(n * f_in, n * f_out)
    row = layer_costs("karate (measured)", n, data.num_edges, f_in, f_out)
    counted = summary(conv, input_data=(data.x, data.edge_index), verbose=0)
    row["gcn_params"] = sum(p.numel() for p in conv.parameters())
    row["gcn_macs"] = counted.total_mult_adds
    row["fc_params"] = sum(p.numel() for p in dense.parameters())
    row["fc_macs"] = summary(dense, input_data=(data.x.reshape(1, -1),), verbose=0
                             ).total_mult_adds
    # renumber the members: a layer is permutation equivariant when f(P x) = P f(x)
    rng = xp.random.default_rng(0)
    x = Tensor(rng.standard_normal((n, f_in)).astype(xp.float32))
    order = rng.permutation(n)
    inverse = xp.argsort(order)
    index = data.edge_index.array
    permuted_index = Tensor(inverse[index])  # node order[i] becomes node i
    with no_grad():
        gcn_out = conv(x, data.edge_index).array
        gcn_perm = conv(Tensor(x.array[order]), permuted_index).array
        fc_out = dense(x.reshape(1, -1)).array.reshape(n, f_out)
        fc_perm = dense(Tensor(x.array[order].reshape(1, -1))).array.reshape(n, f_out)
    scale = float(xp.abs(gcn_out).max())
    row["gcn_permutation_error"] = float(xp.abs(gcn_perm - gcn_out[order]).max()) / scale
    row["fc_permutation_error"] = float(xp.abs(fc_perm - fc_out[order]).max()) / float(
        xp.abs(fc_out).max())
    balls = []
    for k in range(1, hops + 1):
        sizes = k_hop_balls(data.edge_index, n, k).sum(axis=1)
        balls.append({"hops": k, "ball_min": int(sizes.min()), "ball_mean": float(sizes.mean()),
                      "ball_max": int(sizes.max())})
    row["k_hop"] = balls
    return row


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'graph':18}{'N':>10}{'E':>12}{'F_in':>6}{'F_out':>6}  {'layer':16}"
             f"{'params':>22}{'MACs':>22}"]
    for r in rows:
        head = f"{r['graph']:18}{r['nodes']:10,}{r['edges']:12,}{r['in_features']:6}" \
               f"{r['out_features']:6}"
        lines.append(f"{head}  {'fully connected':16}{r['fc_params']:22,}{r['fc_macs']:22,}")
        lines.append(f"{'':52}  {'GCN (shared W)':16}{r['gcn_params']:22,}{r['gcn_macs']:22,}")
        lines.append(f"{'':52}  {'ratio FC / GCN':16}{r['fc_params'] / r['gcn_params']:22,.0f}"
                     f"{r['fc_macs'] / r['gcn_macs']:22,.0f}")
    return "\n".join(lines)


def run_graph(args: argparse.Namespace) -> int:
    if args.edges is not None and args.edges < 0:
        raise CommandError(f"--edges: expected an integer ≥ 0, got {args.edges}")
    try:
        karate = karate_measured(args.hops)
    except ImportError as error:
        raise CommandError(f"{error}") from None
    big = {key: value for key, value in CORA.items()}
    for key, value in (("nodes", args.nodes), ("edges", args.edges),
                       ("in_features", args.in_features), ("out_features", args.out_features)):
        if value is not None:
            big[key] = value
            big["name"] = "custom"
    bigger = layer_costs(big["name"], big["nodes"], big["edges"], big["in_features"],
                         big["out_features"])
    if args.json:
        print(json.dumps({"karate": karate, "bigger": bigger}, indent=2))
        return 0
    print("One layer from F_in to F_out features per node. Fully connected over all N nodes:\n"
          "N·F_in × N·F_out weights, each output sees every node. GCN: X' = Â X W + b, one\n"
          "F_in × F_out W shared by every node, each output sees its 1-hop ball; MACs\n"
          "N·F_in·F_out + (E + N)·F_out (Â's non-zeros: the edges and a self loop each).\n")
    print(_table([karate, bigger]))
    print("\nSharing is permutation equivariance: renumber karate's members and the GCN "
          "output is renumbered the same way\n"
          f"(largest change {karate['gcn_permutation_error']:.1e} of the output's size, "
          "rounding); the fully connected layer's output changes by "
          f"{karate['fc_permutation_error']:.0%}.")
    print("\nLocality is the k-hop ball: after k GCN layers a member's output depends on "
          "exactly the members within k hops")
    print(f"{'layers k':>10}{'ball min':>10}{'mean':>8}{'max':>6}   (of 34; a fully "
          "connected layer: 34 at k = 1)")
    for b in karate["k_hop"]:
        print(f"{b['hops']:10}{b['ball_min']:10}{b['ball_mean']:8.1f}{b['ball_max']:6}")
    return 0
