"""Pictures of what a network learned and sees, as PNG files (matplotlib, imported on first use).

* :func:`plot_kernels` — the kernels of a convolution layer, as a grid;
* :func:`plot_feature_maps` — a layer's feature maps and activation maps for one image;
* :func:`plot_receptive_field` — one unit's analytic receptive field beside its effective one;
* :func:`plot_curves` — loss and accuracy per epoch from a run's ``metrics.jsonl``;
* :func:`plot_detection` — where the Wally finder found him: box, heatmap, close-up;
* :func:`matplotlib_figure` and :func:`save_figure` — what they are drawn with, for a picture
  of your own: a figure on an Agg canvas, and its PNG written atomically.

Every function writes its PNG atomically (a temporary file, then ``os.replace``) and returns a
:class:`Picture`: the path, the size in pixels, and for each panel how data coordinates map to
PNG pixels, so that what is drawn where can be checked. matplotlib is needed
(``pip install matplotlib``, or the ``wally-cnn[train]`` extra); pyplot is never used, so the
pictures don't disturb a notebook's backend.

>>> from wally.viz import plot_kernels
>>> plot_kernels(model, "conv1", "kernels.png").info["grid"]
(4, 4)
"""

from wally.viz._output import Panel, Picture, matplotlib_figure, read_image, save_figure
from wally.viz.curves import plot_curves, read_metrics
from wally.viz.feature_maps import plot_feature_maps
from wally.viz.kernels import plot_kernels
from wally.viz.receptive_field import plot_receptive_field
from wally.viz.scene import plot_detection

__all__ = [
    "Picture",
    "Panel",
    "plot_kernels",
    "plot_feature_maps",
    "plot_receptive_field",
    "plot_curves",
    "read_metrics",
    "plot_detection",
    "read_image",
    "matplotlib_figure",
    "save_figure",
]
