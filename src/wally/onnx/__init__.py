"""Export to ONNX, the format that onnxruntime, TensorRT, OpenVINO and most runtimes read.

``wally.onnx.export(model, example_input, "model.onnx")`` traces one forward pass and writes
it as an ONNX graph whose initializers carry the model's ``state_dict`` keys. The ``onnx``
package (and ``onnxruntime`` to run the file) are optional dependencies, imported only when
an export runs: ``import wally.onnx`` works without them.
"""

from wally.onnx.dispatch import supported_operators
from wally.onnx.errors import UnsupportedOperatorError
from wally.onnx.exporter import DEFAULT_OPSET, MIN_OPSET, export

__all__ = ["export", "UnsupportedOperatorError", "supported_operators", "DEFAULT_OPSET",
           "MIN_OPSET"]
