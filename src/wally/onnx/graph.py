"""The ONNX graph being built: unique names, nodes, initializers, and the final model.

Converters never touch ``onnx`` directly: they call :meth:`GraphBuilder.node` and
:meth:`GraphBuilder.constant`, so ``onnx`` is imported in one place, and only when an export
actually runs (it is an optional dependency of wally).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wally.backend import ndarray, xp

__all__ = ["GraphBuilder", "Value"]


@dataclass
class Value:
    """One tensor of the graph: its ONNX name and the value it had in the traced forward pass.

    ``batched`` says that axis 0 is the batch axis, which a dynamic-batch export leaves free.
    """

    name: str
    array: ndarray
    batched: bool

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> Any:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return int(self.array.ndim)


class GraphBuilder:
    """Collects the nodes and initializers of one ONNX graph for ``opset`` of the default domain."""

    def __init__(self, opset: int, state_names: dict[int, str] | None = None) -> None:
        """``state_names`` maps ``id(array)`` of the model's parameters and buffers to their
        ``state_dict`` keys, which their initializers are named after."""
        import onnx

        self.onnx = onnx
        self.opset = opset
        self.scope = ""
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._state_names = dict(state_names or {})
        self._taken: set[str] = set(self._state_names.values())
        self._node_names: set[str] = set()
        self._counts: dict[str, int] = {}
        self._arrays: dict[int, tuple[Any, str]] = {}

    # ----- names ------------------------------------------------------------------------------
    def fresh(self, hint: str, taken: set[str] | None = None) -> str:
        """A name built from ``hint`` that no other value or initializer of this graph has (or
        nothing in ``taken``: node names are a namespace of their own)."""
        taken = self._taken if taken is None else taken
        base = hint or "value"
        name = base
        while name in taken:
            self._counts[base] = self._counts.get(base, 0) + 1
            name = f"{base}_{self._counts[base]}"
        taken.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Claim ``name`` exactly (graph inputs and outputs, parameters): it must be free."""
        if name in self._taken:
            raise ValueError(f"wally.onnx.export: the name {name!r} is used twice in the graph")
        self._taken.add(name)
        return name

    # ----- initializers -------------------------------------------------------------------------
    def array(self, array: Any, hint: str, dtype: Any = None) -> str:
        """The initializer holding ``array``: named after its ``state_dict`` key when it is a
        parameter or buffer of the model, else a fresh constant; made once per array."""
        made = self._arrays.get(id(array))
        if made is not None:
            return made[1]
        value = xp.ascontiguousarray(array if dtype is None else xp.asarray(array, dtype=dtype))
        name = self._state_names.get(id(array))
        if name is None:
            name = self.constant(value, hint)
        else:
            self.initializers.append(self.onnx.numpy_helper.from_array(value, name))
        # Holding the array keeps its id from being reused by another one.
        self._arrays[id(array)] = (array, name)
        return name

    def constant(self, array: Any, hint: str = "const", dtype: Any = None) -> str:
        """A constant tensor, stored as an initializer under a fresh name."""
        value = xp.asarray(array, dtype=dtype)
        name = self.fresh(f"{self.scope}.{hint}" if self.scope else hint)
        self.initializers.append(
            self.onnx.numpy_helper.from_array(xp.ascontiguousarray(value), name)
        )
        return name

    def named_constant(self, array: Any, name: str) -> str:
        """A constant stored as an initializer named ``name`` (made unique), without the
        scope prefix :meth:`constant` adds."""
        name = self.fresh(name)
        self.initializers.append(
            self.onnx.numpy_helper.from_array(xp.ascontiguousarray(array), name))
        return name

    def int64s(self, values: Sequence[int], hint: str) -> str:
        """A 1-D int64 constant: the shapes, pads, axes and slice bounds ONNX takes as inputs."""
        return self.constant(xp.asarray(list(values), dtype=xp.int64), hint)

    # ----- nodes ------------------------------------------------------------------------------
    def node(
        self,
        op_type: str,
        inputs: Sequence[str],
        outputs: Sequence[str] | str | None = None,
        **attributes: Any,
    ) -> str:
        """Append one node; returns the name of its (first) output.

        ``outputs`` defaults to one fresh name; ``""`` in ``inputs`` is an omitted optional
        input, as ONNX spells it. Attributes that are ``None`` are left out.
        """
        if outputs is None:
            outputs = [self.fresh(f"{self.scope}.{op_type}" if self.scope else op_type)]
        elif isinstance(outputs, str):
            outputs = [outputs]
        name = self.fresh(f"{self.scope}.{op_type}" if self.scope else op_type, self._node_names)
        kept = {key: value for key, value in attributes.items() if value is not None}
        self.nodes.append(
            self.onnx.helper.make_node(op_type, list(inputs), list(outputs), name=name, **kept)
        )
        return outputs[0]

    def tensor_type(self, dtype: Any) -> int:
        """The ``onnx.TensorProto`` element type of a NumPy dtype."""
        return int(self.onnx.helper.np_dtype_to_tensor_dtype(xp.dtype(dtype)))

    # ----- the model ---------------------------------------------------------------------------
    def value_info(self, name: str, dtype: Any, shape: Sequence[int | str]) -> Any:
        return self.onnx.helper.make_tensor_value_info(name, self.tensor_type(dtype), list(shape))

    def model(
        self, inputs: Sequence[Any], outputs: Sequence[Any], graph_name: str, doc: str
    ) -> Any:
        helper = self.onnx.helper
        graph = helper.make_graph(
            self.nodes, graph_name, list(inputs), list(outputs), self.initializers, doc_string=doc
        )
        opsets = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="wally")
        # The oldest IR version that carries this opset, so older runtimes read the file too.
        model.ir_version = helper.find_min_ir_version_for(opsets)
        return model
