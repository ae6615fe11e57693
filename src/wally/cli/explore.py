"""``wally explore MODEL|CHECKPOINT``: CNN Explainer for a wally model, in the browser."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

from wally.cli import CommandError, printable


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explore", help="open a model in the browser: every layer's maps, click a unit",
        description="Start a local explorer for a model on 127.0.0.1 (a random token in its "
                    "address) and open it in the browser: every layer's activation maps, a "
                    "unit's receptive field and its equation with the real numbers, the "
                    "kernel sliding over its input, the prediction; upload an image or draw "
                    "a digit. Ctrl-C stops it.",
    )
    parser.add_argument("model", metavar="MODEL|CHECKPOINT",
                        help="a model name from the registry (lenet, wally_finder, ...; fresh "
                             "weights) or a .safetensors checkpoint")
    parser.add_argument("--image", metavar="FILE",
                        help="the first input (default: a synthetic test image, or a crowd "
                             "scene for the finder)")
    parser.add_argument("--port", type=_port, default=0,
                        help="the port to listen on (default: any free port)")
    parser.add_argument("--no-browser", action="store_true",
                        help="print the address only; don't open a browser")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of a fresh model's initial weights (0)")
    parser.set_defaults(func=run)


def _load(name: str, seed: int) -> tuple[Any, list[str] | None]:
    from wally.cli._model_source import load_model

    if Path(name).exists() and not Path(name).is_dir():
        from wally.cli.evaluate import classes_of
        from wally.cli.evaluate import load_model as load_checkpoint_model

        model, checkpoint = load_checkpoint_model(name)
        recorded = checkpoint.extra.get("classes")
        return model, (None if recorded is None else classes_of(checkpoint, 0))
    if name.endswith(".safetensors"):
        raise CommandError(f"no checkpoint at {name}")
    return load_model(None, name, seed), None


def run(args: argparse.Namespace) -> int:
    import webbrowser

    from wally.cli._model_source import read_image
    from wally.explore import Explorer
    from wally.explore._server import ExploreServer

    model, classes = _load(args.model, args.seed)
    explorer = Explorer(model, classes=classes)
    image = read_image(args.image) if args.image is not None else explorer.default_image()
    try:
        explorer.set_image(image)
    except ValueError as error:
        source = args.image or "the default image"
        raise CommandError(f"{printable(source)}: {error}") from None
    try:
        server = ExploreServer(explorer, args.port)
    except OSError as error:
        raise CommandError(f"cannot listen on 127.0.0.1:{args.port}: "
                           f"{error.strerror or error}") from None
    print(f"wally explore: serving {explorer_name(model)} at {server.url}", flush=True)
    print("  (Ctrl-C stops it)", flush=True)
    if not args.no_browser:
        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("wally explore: stopped", flush=True)
    finally:
        server.server_close()
    return 0


def explorer_name(model: Any) -> str:
    from wally.explore._model import _model_name

    return _model_name(model)
