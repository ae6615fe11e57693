"""``SummaryWriter``: torch.utils.tensorboard's writer for wally, writing real event files.

The files are written by the ``tensorboard`` package's own ``EventFileWriter`` (a queue and a
thread that append length-prefixed, CRC-checked ``Event`` records to
``events.out.tfevents.TIME.HOST.PID.N``), the writer torch.utils.tensorboard uses, so that
what TensorBoard reads is exactly what it reads from a PyTorch run.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime
from typing import Any

from wally.utils.tensorboard import _summary
from wally.utils.tensorboard._summary import require_tensorboard

__all__ = ["FileWriter", "SummaryWriter"]


class FileWriter:
    """One event file in ``log_dir``: wraps each ``Summary`` in an ``Event`` with its step and
    wall time (torch's ``FileWriter``)."""

    def __init__(self, log_dir: str | os.PathLike[str], max_queue: int = 10,
                 flush_secs: float = 120, filename_suffix: str = "") -> None:
        require_tensorboard("SummaryWriter")
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.event_writer = EventFileWriter(str(log_dir), max_queue, flush_secs,
                                            filename_suffix)

    def get_logdir(self) -> str:
        return str(self.event_writer.get_logdir())

    def add_event(self, event: Any, step: int | None = None,
                  walltime: float | None = None) -> None:
        event.wall_time = time.time() if walltime is None else walltime
        if step is not None:
            event.step = int(step)
        self.event_writer.add_event(event)

    def add_summary(self, summary: Any, global_step: int | None = None,
                    walltime: float | None = None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self.add_event(Event(summary=summary), global_step, walltime)

    def add_graph(self, graph_profile: tuple[Any, Any], walltime: float | None = None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event, TaggedRunMetadata

        graph_def, run_metadata = graph_profile
        self.add_event(Event(graph_def=graph_def.SerializeToString()), None, walltime)
        tagged = TaggedRunMetadata(tag="step1", run_metadata=run_metadata.SerializeToString())
        self.add_event(Event(tagged_run_metadata=tagged), None, walltime)

    def flush(self) -> None:
        self.event_writer.flush()

    def close(self) -> None:
        self.event_writer.close()


class SummaryWriter:
    """Write scalars, histograms, images, text, hyper-parameters and the model's graph to
    TensorBoard event files in ``log_dir``, as ``torch.utils.tensorboard.SummaryWriter``.

    ``log_dir`` defaults to ``runs/CURRENT_DATETIME_HOSTNAME`` + ``comment``; ``purge_step``
    hides, in TensorBoard, the events of an earlier crashed run at or after that step (the
    run resumed from there); up to ``max_queue`` events wait in memory and they are written
    at least every ``flush_secs`` seconds. Tensor arguments may be wally tensors, NumPy arrays
    or Python numbers.

    Example::

        >>> from wally.utils.tensorboard import SummaryWriter
        >>> with SummaryWriter("runs/exp1") as writer:
        ...     for step in range(100):
        ...         writer.add_scalar("loss", 1 / (step + 1), step)
        ...     writer.add_histogram("conv1.weight", model[0].weight, step)
        ...     writer.add_graph(model, wally.randn(1, 1, 28, 28))
        $ tensorboard --logdir runs
    """

    def __init__(self, log_dir: str | os.PathLike[str] | None = None, comment: str = "",
                 purge_step: int | None = None, max_queue: int = 10, flush_secs: float = 120,
                 filename_suffix: str = "") -> None:
        require_tensorboard("SummaryWriter")
        if not log_dir:
            now = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", now + "_" + socket.gethostname() + comment)
        self.log_dir = str(log_dir)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer: FileWriter | None = None
        self.all_writers: dict[str, FileWriter] | None = None
        self.default_bins = _summary.tensorflow_bins()
        self._get_file_writer()

    def _get_file_writer(self) -> FileWriter:
        """The writer of ``log_dir``'s event file, made again after :meth:`close`."""
        if self.all_writers is None or self.file_writer is None:
            from tensorboard.compat.proto.event_pb2 import Event, SessionLog

            self.file_writer = FileWriter(self.log_dir, self.max_queue, self.flush_secs,
                                          self.filename_suffix)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
            if self.purge_step is not None:
                # A START session log at step T tells TensorBoard to drop events at or after T.
                step = self.purge_step
                self.file_writer.add_event(Event(step=step, file_version="brain.Event:2"))
                self.file_writer.add_event(Event(step=step, session_log=SessionLog(
                    status=SessionLog.START)))
                self.purge_step = None
        return self.file_writer

    def get_logdir(self) -> str:
        """The folder the event files are written to."""
        return self.log_dir

    # ----- scalars ---------------------------------------------------------------------------
    def add_scalar(self, tag: str, scalar_value: Any, global_step: int | None = None,
                   walltime: float | None = None, new_style: bool = False,
                   double_precision: bool = False) -> None:
        """One number of the series ``tag`` at ``global_step``."""
        summary = _summary.scalar(tag, scalar_value, new_style, double_precision)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict[str, Any],
                    global_step: int | None = None, walltime: float | None = None) -> None:
        """Several series in one chart: each key goes to its own run,
        ``log_dir/MAINTAG_KEY``, under the tag ``main_tag`` (as torch's)."""
        walltime = time.time() if walltime is None else walltime
        root = self._get_file_writer().get_logdir()
        assert self.all_writers is not None
        for tag, value in tag_scalar_dict.items():
            folder = root + "/" + main_tag.replace("/", "_") + "_" + tag
            if folder not in self.all_writers:
                self.all_writers[folder] = FileWriter(folder, self.max_queue, self.flush_secs,
                                                      self.filename_suffix)
            self.all_writers[folder].add_summary(_summary.scalar(main_tag, value), global_step,
                                                 walltime)

    # ----- distributions -----------------------------------------------------------------------
    def add_histogram(self, tag: str, values: Any, global_step: int | None = None,
                      bins: Any = "tensorflow", walltime: float | None = None,
                      max_bins: int | None = None) -> None:
        """A histogram of ``values``; ``bins`` is ``"tensorflow"`` (TensorBoard's exponential
        buckets) or anything ``numpy.histogram`` takes (``"auto"``, ``"fd"``, a count, edges)."""
        if isinstance(bins, str) and bins == "tensorflow":
            bins = self.default_bins
        summary = _summary.histogram(tag, values, bins, max_bins=max_bins)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    # ----- images ------------------------------------------------------------------------------
    def add_image(self, tag: str, img_tensor: Any, global_step: int | None = None,
                  walltime: float | None = None, dataformats: str = "CHW") -> None:
        """One image, written as a PNG (needs Pillow).

        Shape:
            ``img_tensor`` is ``(3, H, W)`` by default; ``(1, H, W)``, ``(H, W)`` or
            ``(H, W, 3)`` with ``dataformats`` ``"CHW"``, ``"HW"`` or ``"HWC"``. Floats are
            read in [0, 1], uint8 in [0, 255].
        """
        summary = _summary.image(tag, img_tensor, dataformats=dataformats)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_images(self, tag: str, img_tensor: Any, global_step: int | None = None,
                   walltime: float | None = None, dataformats: str = "NCHW") -> None:
        """A batch of images, tiled 8 to a row into one PNG.

        Shape:
            ``img_tensor`` is ``(N, 3, H, W)`` (or ``(N, 1, H, W)``) by default, or as
            ``dataformats`` says (``"NHWC"``).
        """
        summary = _summary.image(tag, img_tensor, dataformats=dataformats)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_figure(self, tag: str, figure: Any, global_step: int | None = None,
                   close: bool = True, walltime: float | None = None) -> None:
        """A matplotlib figure (or a list of them) rendered as an image (needs matplotlib)."""
        image = _summary.figure_to_image(figure, close)
        self.add_image(tag, image, global_step, walltime,
                       dataformats="NCHW" if isinstance(figure, list) else "CHW")

    # ----- text, hyper-parameters, graph -----------------------------------------------------
    def add_text(self, tag: str, text_string: str, global_step: int | None = None,
                 walltime: float | None = None) -> None:
        """A string, shown as markdown in TensorBoard's text tab."""
        self._get_file_writer().add_summary(_summary.text(tag, text_string), global_step,
                                            walltime)

    def add_hparams(self, hparam_dict: dict[str, Any], metric_dict: dict[str, Any],
                    hparam_domain_discrete: dict[str, list[Any]] | None = None,
                    run_name: str | None = None, global_step: int | None = None) -> None:
        """One row of the hparams tab: the hyper-parameters and the metrics they gave,
        written to the run ``log_dir/run_name`` (default: the current time), as torch's."""
        experiment, start, end = _summary.hparams(hparam_dict, metric_dict,
                                                  hparam_domain_discrete)
        if not run_name:
            run_name = str(time.time())
        folder = os.path.join(self._get_file_writer().get_logdir(), run_name)
        with SummaryWriter(log_dir=folder) as writer:
            file_writer = writer._get_file_writer()
            for summary in (experiment, start, end):
                file_writer.add_summary(summary, global_step)
            for key, value in metric_dict.items():
                writer.add_scalar(key, value, global_step)

    def add_graph(self, model: Any, input_to_model: Any = None, verbose: bool = False,
                  use_strict_trace: bool = True) -> None:
        """The graph of ``model(input_to_model)``, traced by wally, for the graph tab: a box
        per module, opened on a click, with every op's output shape.

        Unlike torch's, the model is traced in eval mode (its mode is put back), so that
        logging the graph leaves batch norm's running statistics and the random state as they
        were, and a batch of one works; dropout is then the identity and has no node.
        ``use_strict_trace`` is accepted for torch's signature; wally's trace has no strict
        mode. ``verbose`` prints the nodes.
        """
        from wally.utils.tensorboard._graph import graph

        if input_to_model is None:
            raise ValueError(f"SummaryWriter.add_graph: input_to_model is needed to trace "
                             f"{type(model).__name__} (an example input tensor)")
        if isinstance(input_to_model, (list, tuple)):
            if len(input_to_model) != 1:
                raise ValueError(f"SummaryWriter.add_graph: wally traces models of one input; "
                                 f"got {len(input_to_model)} inputs")
            input_to_model = input_to_model[0]
        profile = graph(model, input_to_model)
        if verbose:
            for node in profile[0].node:
                print(node.name, node.op, list(node.input))
        self._get_file_writer().add_graph(profile)

    # ----- files -------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every pending event to disk."""
        for writer in (self.all_writers or {}).values():
            writer.flush()

    def close(self) -> None:
        """Flush and close the event files (a later ``add_*`` opens a new file)."""
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.flush()
            writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
