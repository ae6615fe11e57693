"""``wally.explore``: CNN Explainer (Wang et al., IEEE VIS 2020) for any wally model, in a browser.

The page shows the network as columns of layers, each unit's activation map drawn on a canvas,
with the shapes, parameters and MACs of :func:`wally.summary`; a click on a unit draws its
receptive field on the input (the analytic box and the effective field, the gradient of that
unit on this input) and fills in its equation with the real numbers, e.g. for a convolution::

    [H]d,i,j = [b]d + Σc Σa Σb [V]d,c,a,b · [X]c, s·i+δ·a, s·j+δ·b

giving the value wally computed (to float32 rounding); for pooling, which input won. A
convolution's kernel can be slid over its input step by step, with the stride and padding
drawn. The prediction shows as class probabilities, or the finder's heatmap; a new input comes
by upload or by drawing a digit.

The server is Python's ``http.server`` on 127.0.0.1 with a random token in its address
(:mod:`wally.explore._server` says what it refuses).

>>> handle = wally.explore(wally.models.lenet(), open_browser=False)
>>> handle.url
'http://127.0.0.1:53817/?token=...'
>>> handle.close()
"""

from __future__ import annotations

import sys
import types
from typing import Any

from wally.explore._model import MAX_SIDE, Explorer
from wally.explore._server import MAX_UPLOAD_BYTES, ExploreServer, Handle

__all__ = ["explore", "Explorer", "Handle", "MAX_UPLOAD_BYTES", "MAX_SIDE"]


def explore(model: Any, image: Any = None, port: int = 0, open_browser: bool = True, *,
            classes: list[str] | None = None) -> Handle:
    """Start the explorer for ``model`` on ``http://127.0.0.1:port`` (0: any free port) and
    return its :class:`Handle` (``.url`` with the token, ``.close()``).

    Args:
        model: a :class:`wally.nn.Module` taking ``(1, C, H, W)`` images (it is put in
            evaluation mode).
        image: the first input, a uint8 array ``(H, W)`` or ``(H, W, 3)``, or the path of an
            image file; default a ``synthetic`` test image (a model with a fixed input size)
            or a generated crowd scene (a fully convolutional RGB model such as the finder).
        port: the port to listen on.
        open_browser: open the address with :mod:`webbrowser` (never a shell).
        classes: the class names of the model's outputs, for the prediction.

    Example::

        >>> with wally.explore(wally.models.lenet(), open_browser=False) as h:
        ...     print(h.url)
    """
    from wally.nn.module import Module

    if not isinstance(model, Module):
        raise TypeError(f"explore: model must be a wally.nn.Module, got {type(model).__name__}")
    model.eval()
    explorer = Explorer(model, classes=classes)
    if isinstance(image, str) or hasattr(image, "__fspath__"):
        from wally.io.images import read_image

        image = read_image(image)
    explorer.set_image(explorer.default_image() if image is None else image)
    handle = Handle(ExploreServer(explorer, port))
    if open_browser:
        import webbrowser

        webbrowser.open(handle.url)
    return handle


class _CallableModule(types.ModuleType):
    """``wally.explore`` is this package and its function at once: ``wally.explore(model)``
    calls :func:`explore`, ``wally.explore.Explorer`` is the class (importing the package
    would otherwise hide a function of the same name on ``wally``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Handle:
        return explore(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
