"""The ``Summary`` protocol buffers that TensorBoard reads, built as torch.utils.tensorboard
builds them (``torch/utils/tensorboard/summary.py``), from wally tensors, arrays or numbers.

Each function returns one ``tensorboard.compat.proto.summary_pb2.Summary``; the writer wraps
it in an ``Event`` with the step and the wall time. The protos and the plugin metadata are the
``tensorboard`` package's own, the very ones TensorBoard parses.
"""

from __future__ import annotations

import io
from typing import Any

from wally.backend import ndarray, xp

EXTRA = "wally-cnn[tensorboard]"


def require_tensorboard(feature: str) -> Any:
    """``tensorboard.compat.proto``, or an ImportError saying what to install."""
    try:
        from tensorboard.compat import proto
    except ImportError as error:
        raise ImportError(
            f"{feature} writes TensorBoard event files with the tensorboard package, which is "
            f"not installed: pip install tensorboard  (or pip install '{EXTRA}')"
        ) from error
    return proto


def make_np(value: Any, what: str) -> ndarray:
    """A wally tensor, NumPy array, Python number or (nested) list as a NumPy array."""
    array = getattr(value, "array", value)
    if isinstance(array, str):
        raise TypeError(f"SummaryWriter.{what}: expected a tensor, an array or a number, got "
                        f"the string {array[:40]!r} (Caffe2 blob names are not supported)")
    try:
        result = xp.asarray(array)
    except (TypeError, ValueError) as error:
        raise TypeError(f"SummaryWriter.{what}: expected a tensor, an array or a number, got "
                        f"{type(value).__name__} ({error})") from None
    if result.dtype.kind not in "biuf":
        raise TypeError(f"SummaryWriter.{what}: expected real numbers, got an array of "
                        f"{result.dtype}")
    return result


def scalar(tag: str, value: Any, new_style: bool = False,
           double_precision: bool = False) -> Any:
    """One number: ``simple_value`` (old style, torch's default) or a scalar tensor with the
    ``scalars`` plugin's metadata (``new_style``)."""
    summary_pb2 = require_tensorboard("SummaryWriter.add_scalar").summary_pb2
    from tensorboard.compat.proto.tensor_pb2 import TensorProto

    array = make_np(value, "add_scalar").squeeze()
    if array.ndim != 0:
        raise ValueError(f"SummaryWriter.add_scalar({tag!r}): expected one number, got "
                         f"{array.size} values of shape {tuple(array.shape)}")
    number = float(array)
    Summary = summary_pb2.Summary  # noqa: N806 - the proto's class name
    if not new_style:
        return Summary(value=[Summary.Value(tag=tag, simple_value=number)])
    tensor = (TensorProto(double_val=[number], dtype="DT_DOUBLE") if double_precision
              else TensorProto(float_val=[number], dtype="DT_FLOAT"))
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    return Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=metadata)])


def tensorflow_bins() -> list[float]:
    """TensorBoard's default bucket limits: ±1e-12·1.1^k up to 1e20, and 0 (as torch's)."""
    limits, value = [], 1e-12
    while value < 1e20:
        limits.append(value)
        value *= 1.1
    return [-v for v in reversed(limits)] + [0.0] + limits


def histogram(tag: str, values: Any, bins: Any, max_bins: int | None = None) -> Any:
    """A ``HistogramProto`` of ``values`` over ``bins`` (anything ``numpy.histogram`` takes),
    with the empty buckets at both ends trimmed as TensorFlow's ``histogram.cc`` does."""
    summary_pb2 = require_tensorboard("SummaryWriter.add_histogram").summary_pb2
    array = make_np(values, "add_histogram").astype(xp.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"SummaryWriter.add_histogram({tag!r}): the values are empty")
    if not xp.isfinite(array).all():
        raise ValueError(f"SummaryWriter.add_histogram({tag!r}): the values hold "
                         f"{int((~xp.isfinite(array)).sum())} NaN or infinite numbers")
    counts, limits = xp.histogram(array, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        group = len(counts) // max_bins
        if len(counts) % group:
            counts = xp.pad(counts, [0, group - len(counts) % group])
        counts = counts.reshape(-1, group).sum(axis=-1)
        limits = xp.concatenate([limits[:-1:group], limits[-1:]])
    # Keep one empty bucket before the first full one; drop the empty ones after the last.
    filled = xp.flatnonzero(counts)
    if filled.size == 0:
        raise ValueError(f"SummaryWriter.add_histogram({tag!r}): no value lies within the bins "
                         f"({float(limits[0]):g} to {float(limits[-1]):g})")
    first, last = int(filled[0]), int(filled[-1])
    counts = (counts[first - 1:last + 1] if first > 0
              else xp.concatenate([[0], counts[:last + 1]]))
    limits = limits[first:last + 2]
    histo = summary_pb2.HistogramProto(
        min=float(array.min()), max=float(array.max()), num=int(array.size),
        sum=float(array.sum()), sum_squares=float(array.dot(array)),
        bucket_limit=limits.tolist(), bucket=counts.tolist())
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, histo=histo)])


def _grid(batch: ndarray, columns: int = 8) -> ndarray:
    """``(N, C, H, W)`` images side by side, ``columns`` to a row, as one ``(3, H', W')``
    image (torch's own tensorboard grid: no padding, one channel made grey RGB)."""
    if batch.shape[1] == 1:
        batch = xp.concatenate([batch] * 3, axis=1)
    count, channels, height, width = batch.shape
    if channels != 3:
        raise ValueError(f"SummaryWriter.add_images: expected 1 or 3 channels, got {channels}")
    columns = min(count, columns)
    rows = -(-count // columns)
    canvas = xp.zeros((3, height * rows, width * columns), dtype=batch.dtype)
    for k in range(count):
        r, c = divmod(k, columns)
        canvas[:, r * height:(r + 1) * height, c * width:(c + 1) * width] = batch[k]
    return canvas


def to_hwc(array: ndarray, dataformats: str) -> ndarray:
    """An image or a batch in ``dataformats`` (``"CHW"``, ``"HWC"``, ``"HW"``, ``"NCHW"``, ...)
    as one ``(H, W, 3)`` (or ``4`` for RGBA) image; a batch becomes a grid."""
    layout = dataformats.upper()
    if len(set(layout)) != len(layout) or not set(layout) <= set("NCHW") or \
            not {"H", "W"} <= set(layout) or ("N" in layout and "C" not in layout):
        raise ValueError(f"SummaryWriter: dataformats must be one of NCHW, NHWC, CHW, HWC, HW "
                         f"(any order), got {dataformats!r}")
    if array.ndim != len(layout):
        raise ValueError(f"SummaryWriter: an image of dataformats {dataformats!r} has "
                         f"{len(layout)} axes, got shape {tuple(array.shape)}")
    if len(layout) == 4:
        grid = _grid(array.transpose([layout.index(c) for c in "NCHW"]))
        return grid.transpose(1, 2, 0)
    if len(layout) == 3:
        hwc = array.transpose([layout.index(c) for c in "HWC"])
        return xp.concatenate([hwc] * 3, axis=2) if hwc.shape[2] == 1 else hwc
    return xp.stack([array.transpose([layout.index(c) for c in "HW"])] * 3, axis=2)


def encode_png(hwc: ndarray) -> bytes:
    """``(H, W, C)`` uint8 pixels as PNG bytes (Pillow)."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("SummaryWriter.add_image encodes PNG with Pillow, which is not "
                          "installed: pip install pillow") from None
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[hwc.shape[2]]
    buffer = io.BytesIO()
    Image.fromarray(xp.ascontiguousarray(hwc if mode != "L" else hwc[..., 0]), mode).save(
        buffer, format="PNG")
    return buffer.getvalue()


def image(tag: str, value: Any, dataformats: str = "NCHW") -> Any:
    """An image as a PNG: floats are taken in [0, 1] (times 255), uint8 as they are; values
    outside [0, 255] are clipped."""
    summary_pb2 = require_tensorboard("SummaryWriter.add_image").summary_pb2
    hwc = to_hwc(make_np(value, "add_image"), dataformats)
    if hwc.shape[2] not in (1, 3, 4):
        raise ValueError(f"SummaryWriter.add_image({tag!r}): expected 1, 3 or 4 channels, got "
                         f"{hwc.shape[2]}")
    scale = 1 if hwc.dtype == xp.uint8 else 255
    pixels = (hwc.astype(xp.float32) * scale).clip(0, 255).astype(xp.uint8)
    height, width, channels = pixels.shape
    picture = summary_pb2.Summary.Image(height=height, width=width, colorspace=channels,
                                        encoded_image_string=encode_png(pixels))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=picture)])


def figure_to_image(figures: Any, close: bool = True) -> ndarray:
    """A matplotlib figure (or a list of them) rendered by Agg as ``(3, H, W)`` uint8 pixels
    (``(N, 3, H, W)`` for a list). ``close`` closes pyplot figures, as torch's does."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def render(figure: Any) -> ndarray:
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        rgba = xp.asarray(canvas.buffer_rgba())
        if close:
            import sys

            pyplot = sys.modules.get("matplotlib.pyplot")  # never imported by wally itself
            if pyplot is not None:
                pyplot.close(figure)
        return xp.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1))

    if isinstance(figures, list):
        return xp.stack([render(f) for f in figures])
    return render(figures)


def text(tag: str, text_string: str) -> Any:
    """A string for the text plugin (markdown), under ``tag + "/text_summary"`` as torch's."""
    proto = require_tensorboard("SummaryWriter.add_text")
    from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

    if not isinstance(text_string, str):
        raise TypeError(f"SummaryWriter.add_text({tag!r}): expected a str, got "
                        f"{type(text_string).__name__}")
    summary_pb2 = proto.summary_pb2
    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
        plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
    tensor = proto.tensor_pb2.TensorProto(
        dtype="DT_STRING", string_val=[text_string.encode("utf-8")],
        tensor_shape=proto.tensor_shape_pb2.TensorShapeProto(
            dim=[proto.tensor_shape_pb2.TensorShapeProto.Dim(size=1)]))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag + "/text_summary", metadata=metadata, tensor=tensor)])


def hparams(hparam_dict: dict[str, Any], metric_dict: dict[str, Any],
            hparam_domain_discrete: dict[str, list[Any]] | None = None) -> tuple[Any, Any, Any]:
    """The hparams plugin's three summaries: the experiment (the names of the
    hyper-parameters and metrics), the session start (their values) and the session end."""
    summary_pb2 = require_tensorboard("SummaryWriter.add_hparams").summary_pb2
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    if type(hparam_dict) is not dict or type(metric_dict) is not dict:
        raise TypeError(f"SummaryWriter.add_hparams: hparam_dict and metric_dict must be "
                        f"dicts, got {type(hparam_dict).__name__} and "
                        f"{type(metric_dict).__name__}")
    discrete = hparam_domain_discrete or {}
    if not isinstance(discrete, dict):
        raise TypeError("SummaryWriter.add_hparams: hparam_domain_discrete must be a dict, got "
                        f"{type(discrete).__name__}")
    for key, domain in discrete.items():
        if key not in hparam_dict or not isinstance(domain, list) or not all(
                isinstance(d, type(hparam_dict[key])) for d in domain):
            raise TypeError(f"SummaryWriter.add_hparams: hparam_domain_discrete[{key!r}] must "
                            f"be a list of values of the type of hparam_dict[{key!r}]")
    start = plugin_data_pb2.SessionStartInfo()
    infos = []
    for key, value in hparam_dict.items():
        if value is None:
            continue
        if hasattr(value, "array"):  # a wally tensor holds one number
            value = float(make_np(value, "add_hparams").reshape(-1)[0])
        # bool before number: True is an int, and torch's order would file it as a number.
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
            kind, field = "DATA_TYPE_BOOL", "bool_value"
        elif isinstance(value, (int, float)):
            start.hparams[key].number_value = value
            kind, field = "DATA_TYPE_FLOAT64", "number_value"
        elif isinstance(value, str):
            start.hparams[key].string_value = value
            kind, field = "DATA_TYPE_STRING", "string_value"
        else:
            raise ValueError(f"SummaryWriter.add_hparams: hparam_dict[{key!r}] must be an int, "
                             f"float, str, bool or a one-number tensor, got "
                             f"{type(value).__name__}")
        domain_values = None
        if key in discrete:
            domain_values = struct_pb2.ListValue(
                values=[struct_pb2.Value(**{field: d}) for d in discrete[key]])
        infos.append(api_pb2.HParamInfo(name=key, type=api_pb2.DataType.Value(kind),
                                        domain_discrete=domain_values))

    def summary(tag: str, **content: Any) -> Any:
        data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **content)
        meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString()))
        return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta)])

    experiment = api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=k)) for k in metric_dict])
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"))
    return (summary(metadata.EXPERIMENT_TAG, experiment=experiment),
            summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
            summary(metadata.SESSION_END_INFO_TAG, session_end_info=end))
