"""``add_graph``'s ``GraphDef``: wally's traced forward pass as the NodeDefs TensorBoard draws.

The trace is :func:`wally.onnx.trace.trace`'s (every autograd node of one forward pass, each
labelled with the innermost module that ran it). As torch's ``add_graph`` does, each node is
named by its module scope, ``LeNet/Conv2d[conv1]/ConvNd_0``, so the graph view folds the nodes
of one module into one box and opens it on a click; parameters are nodes of their module
(``.../weight``), the input and outputs are ``IO Node``\\ s, and every node carries its
``_output_shapes``. The ``RunMetadata`` beside it gives each node's output bytes, which the
graph view colours by ("Memory").
"""

from __future__ import annotations

from typing import Any

from wally.utils.tensorboard._summary import require_tensorboard

__all__ = ["graph"]


def _shape_proto(proto: Any, shape: tuple[int, ...]) -> Any:
    return proto.tensor_shape_pb2.TensorShapeProto(
        dim=[proto.tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in shape])


def _node(proto: Any, name: str, op: str, inputs: list[str], shape: tuple[int, ...] | None,
          description: str = "") -> Any:
    attr_pb2 = proto.attr_value_pb2
    attributes = {"attr": attr_pb2.AttrValue(s=description.encode("utf-8"))}
    if shape is not None:
        attributes["_output_shapes"] = attr_pb2.AttrValue(
            list=attr_pb2.AttrValue.ListValue(shape=[_shape_proto(proto, shape)]))
    return proto.node_def_pb2.NodeDef(name=name, op=op, input=inputs, attr=attributes)


def _scope_names(model: Any) -> dict[str, str]:
    """Module path → its scope in torch's form: ``Net/Sequential[features]/Conv2d[0]``."""
    root = type(model).__name__
    scopes = {"": root}
    for path, module in model.named_modules():
        if path:
            parent = path.rpartition(".")[0]
            scopes[path] = f"{scopes[parent]}/{type(module).__name__}[{path.rpartition('.')[2]}]"
    return scopes


def graph(model: Any, example: Any) -> tuple[Any, Any]:
    """The ``GraphDef`` and ``RunMetadata`` of ``model(example)``, traced in eval mode (the
    model's mode is put back)."""
    proto = require_tensorboard("SummaryWriter.add_graph")
    from tensorboard.compat.proto import step_stats_pb2

    from wally.onnx.trace import trace
    from wally.tensor import Tensor

    if not isinstance(example, Tensor):
        from wally.creation import as_tensor

        example = as_tensor(getattr(example, "array", example))
    # In eval mode: a training-mode pass would move batch norm's running statistics (and
    # refuse a batch of one) and draw dropout masks from the global RNG, so logging the graph
    # would change the model and the run.
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        traced = trace(model, example)
    finally:
        model.train(was_training)
    scopes = _scope_names(model)
    root = scopes[""]
    parameters = {id(p): name for name, p in model.named_parameters()}
    nodes: list[Any] = []
    names: dict[int, str] = {id(traced.input): "input/input.1"}  # tensor id → node name
    nodes.append(_node(proto, "input/input.1", "IO Node", [], tuple(traced.input.shape)))
    taken = {"input/input.1"}
    memory: list[tuple[str, int]] = []
    produced: dict[tuple[int, int], str] = {}  # (node id, output index) → node name
    outputs_of: dict[int, list[int]] = {}
    for fn_id, index in traced.results:
        outputs_of.setdefault(fn_id, []).append(index)
    for number, fn in enumerate(traced.nodes):
        path, _ = traced.scopes.get(id(fn), ("", type(model).__name__))
        scope = scopes.get(path, root)
        inputs = []
        for tensor in fn.inputs or ():
            if tensor is None:
                continue
            if tensor._ctx is not None:
                inputs.append(produced[(id(tensor._ctx), tensor._out_idx)])
            elif id(tensor) in names:
                inputs.append(names[id(tensor)])
            else:  # a parameter of its module, or a constant made in forward
                where, _, leaf = parameters.get(id(tensor), f"{path}.constant").rpartition(".")
                name = f"{scopes.get(where, root)}/{leaf}"
                if name in taken:
                    name = f"{name}_{len(nodes)}"
                taken.add(name)
                op = "Parameter" if id(tensor) in parameters else "Constant"
                nodes.append(_node(proto, name, op, [], tuple(tensor.shape)))
                names[id(tensor)] = name
                inputs.append(name)
        name = f"{scope}/{type(fn).__name__}_{number}"
        result = traced.results.get((id(fn), 0))
        shape = None if result is None else tuple(result.shape)
        nodes.append(_node(proto, name, f"wally::{type(fn).__name__}", inputs, shape,
                           f"{type(fn).__module__}.{type(fn).__qualname__}"))
        for index in outputs_of.get(id(fn), ()):
            produced[(id(fn), index)] = name
        if result is not None:
            memory.append((name, int(result.array.nbytes)))
    for index, output in enumerate(traced.outputs):
        source = (produced[(id(output._ctx), output._out_idx)] if output._ctx is not None
                  else names.get(id(output), "input/input.1"))
        nodes.append(_node(proto, f"output/output.{index + 1}", "IO Node", [source],
                           tuple(output.shape)))
    graph_def = proto.graph_pb2.GraphDef(
        node=nodes, versions=proto.versions_pb2.VersionDef(producer=22))
    stats = step_stats_pb2.StepStats(dev_stats=[step_stats_pb2.DeviceStepStats(
        device="/device:CPU:0",
        node_stats=[step_stats_pb2.NodeExecStats(
            node_name=name, all_start_micros=0, all_end_rel_micros=0,
            memory=[step_stats_pb2.AllocatorMemoryUsed(allocator_name="cpu",
                                                       total_bytes=nbytes)])
            for name, nbytes in memory])])
    run_metadata = proto.config_pb2.RunMetadata(step_stats=stats)
    return graph_def, run_metadata
