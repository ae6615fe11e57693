"""The explorer's web server: Python's own ``http.server``, bound to 127.0.0.1, behind a token.

Why the standard library: the page needs a handful of JSON requests and four static files,
for one user on one machine; ``http.server.ThreadingHTTPServer`` parses HTTP for us (no
hand-written parsing here), ships with every Python and adds no dependency (tornado, what
Jupyter uses, would be a new required package for this one command).

Routes (every one needs the token):

* ``GET /`` the page; ``GET /static/NAME`` its script and style sheet;
* ``GET /api/state``: the input, every layer's maps (bytes scaled to the layer's range, base64),
  shapes, parameters and MACs, and the prediction;
* ``GET /api/unit?layer=K&c=D&i=I&j=J``: unit ``(D, I, J)`` of layer ``K`` (``(D,)`` of a
  vector): its value, its equation with the numbers, its receptive field and effective field;
* ``GET /api/slide?layer=K&d=D&c=C``: convolution ``K``'s kernel ``(D, C)`` sliding over input
  channel ``C``, padded, with each position's share of the output;
* ``POST /api/image``: a new input; answers as ``/api/state``.

What it refuses, as Jupyter's server does:

* any request without the token (``?token=…`` in the address, or the cookie the first page
  sets, ``HttpOnly`` and ``SameSite=Strict``, or an ``Authorization: token …`` header):
  **403**, static files and API alike;
* a ``Host`` other than ``127.0.0.1:PORT`` or ``localhost:PORT`` (a DNS-rebinding page): 403;
* a path that is not ``/``, ``/static/NAME`` for a file that was in the static folder when the
  server started, or an API route: 404; one that holds ``..``, a backslash, a NUL or an absolute
  path after decoding: 403. No file is opened by a name taken from a request;
* an upload (``POST /api/image``, the file's bytes as the body; ``?invert=1`` inverts its grey
  levels) over :data:`MAX_UPLOAD_BYTES`: 413, before its body is read; it is decoded by
  :func:`wally.io.images.read_image` (its format allow-list and pixel cap), never unpickled.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import tempfile
import threading
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from wally.explore._model import Explorer

MAX_UPLOAD_BYTES = 8 << 20
"""The largest image upload accepted (8 MiB); larger ones are refused with 413 unread."""
COOKIE = "wally_explore_token"
"""The cookie's name, followed by ``_PORT``: browsers keep cookies per host, not per port, so
two explorers on 127.0.0.1 each need their own."""
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'self' http://localhost:* http://127.0.0.1:*")


def static_files() -> dict[str, tuple[bytes, str]]:
    """Every file of the package's ``static`` folder, read once: name → (bytes, type)."""
    folder = resources.files("wally.explore") / "static"
    files = {}
    for entry in folder.iterdir():
        suffix = os.path.splitext(entry.name)[1]
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


class ExploreServer(ThreadingHTTPServer):
    """The HTTP server, holding the explorer, the token and the static files."""

    daemon_threads = True

    def __init__(self, explorer: Explorer, port: int = 0, token: str | None = None) -> None:
        self.explorer = explorer
        self.token = token or secrets.token_urlsafe(32)
        self.files = static_files()
        super().__init__(("127.0.0.1", port), Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"


class Handler(BaseHTTPRequestHandler):
    server: ExploreServer
    server_version = "wally-explore"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet, as a notebook wants
        pass

    # ----- answers ---------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value: Any, status: int = 200) -> None:
        body = json.dumps(value, allow_nan=False).encode()
        self._send(status, body, "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    # ----- checks ----------------------------------------------------------------------------
    def _token_ok(self, query: dict[str, list[str]]) -> tuple[bool, bool]:
        """Whether the request carries the token, and whether it came in the query."""
        expected = self.server.token.encode()
        given = query.get("token", [""])[-1]
        if given and hmac.compare_digest(given.encode(), expected):
            return True, True
        header = self.headers.get("Authorization", "")
        if header.startswith("token ") and hmac.compare_digest(header[6:].encode(), expected):
            return True, False
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie", ""))
        except Exception:  # a malformed cookie header carries no token
            return False, False
        morsel = cookie.get(f"{COOKIE}_{self.server.port}")
        return (morsel is not None and hmac.compare_digest(morsel.value.encode(), expected),
                False)

    def _host_ok(self) -> bool:
        host = self.headers.get("Host", "")
        return host in (f"127.0.0.1:{self.server.port}", f"localhost:{self.server.port}")

    def _route(self) -> tuple[str, dict[str, list[str]], bool] | None:
        """The decoded path and query of an allowed request, or None once refused."""
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        if not self._host_ok():
            self._error(HTTPStatus.FORBIDDEN, "explore: requests must be addressed to "
                        f"127.0.0.1:{self.server.port}")
            return None
        ok, in_query = self._token_ok(query)
        if not ok:
            self._error(HTTPStatus.FORBIDDEN, "explore: this address needs the token that "
                        "`wally explore` printed (.../?token=...)")
            return None
        if ".." in path or "\\" in path or "\x00" in path or "//" in path \
                or not path.startswith("/"):
            self._error(HTTPStatus.FORBIDDEN, "explore: path refused")
            return None
        return path, query, in_query

    # ----- methods ---------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        route = self._route()
        if route is None:
            return
        path, query, in_query = route
        try:
            if path in ("/", "/index.html"):
                body, kind = self.server.files["index.html"]
                headers = {}
                if in_query:  # as Jupyter: the token from the address becomes a cookie
                    headers["Set-Cookie"] = (f"{COOKIE}_{self.server.port}="
                                             f"{self.server.token}; HttpOnly; "
                                             "SameSite=Strict; Path=/")
                self._send(200, body, kind, headers)
            elif path.startswith("/static/"):
                name = path[len("/static/"):]
                if name not in self.server.files:
                    self._error(HTTPStatus.NOT_FOUND, f"explore: no static file {name!r}")
                    return
                body, kind = self.server.files[name]
                self._send(200, body, kind)
            elif path == "/api/state":
                self._json(self.server.explorer.state())
            elif path == "/api/unit":
                self._json(self.server.explorer.unit(
                    _int(query, "layer"), _int(query, "c"), _int(query, "i", 0),
                    _int(query, "j", 0)))
            elif path == "/api/slide":
                self._json(self.server.explorer.slide(
                    _int(query, "layer"), _int(query, "d"), _int(query, "c")))
            else:
                self._error(HTTPStatus.NOT_FOUND, f"explore: nothing at {path!r}")
        except (ValueError, TypeError) as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))

    def do_POST(self) -> None:
        route = self._route()
        if route is None:
            return
        path, query = route[0], route[1]
        if path != "/api/image":
            self._error(HTTPStatus.NOT_FOUND, f"explore: nothing to post at {path!r}")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(HTTPStatus.LENGTH_REQUIRED, "explore: an upload needs a Content-Length")
            return
        if not 0 < length <= MAX_UPLOAD_BYTES:
            self.close_connection = True  # its body is left unread
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > 0
                        else HTTPStatus.BAD_REQUEST,
                        f"explore: an image upload must be 1 to {MAX_UPLOAD_BYTES:,} bytes, "
                        f"got {length:,}")
            return
        data = self.rfile.read(length)
        try:
            image = read_upload(data)
            if query.get("invert", ["0"])[-1] == "1":  # dark digits on white paper, for MNIST
                image = 255 - image
            self.server.explorer.set_image(image)
        except ImportError as error:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(error))
            return
        except (OSError, ValueError, TypeError) as error:
            self._error(HTTPStatus.BAD_REQUEST, f"explore: cannot use the upload: {error}")
            return
        self._json(self.server.explorer.state())


def _int(query: dict[str, list[str]], key: str, default: int | None = None) -> int:
    values = query.get(key)
    if not values:
        if default is None:
            raise ValueError(f"explore: the request needs {key}=N")
        return default
    text = values[-1]
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 9:
        raise ValueError(f"explore: {key} must be an integer, got {text[:20]!r}")
    return int(text)


def read_upload(data: bytes) -> Any:
    """An uploaded file's bytes as uint8 ``(H, W, 3)``, decoded by wally's safe image reader
    (:func:`wally.io.images.read_image`) from a private temporary file."""
    from wally.io.images import read_image

    folder = tempfile.mkdtemp(prefix="wally-explore-")
    path = os.path.join(folder, "upload")
    try:
        with open(path, "xb") as file:
            file.write(data)
        try:
            return read_image(path)
        except (OSError, ValueError) as error:  # name the upload, not the temporary file
            raise ValueError(str(error).replace(f"{path}: ", "")) from None
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.rmdir(folder)


class Handle:
    """A running explorer: ``url`` (with the token), ``close()``; in a notebook it shows itself
    as the page in an iframe."""

    def __init__(self, server: ExploreServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="wally-explore",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def token(self) -> str:
        return self._server.token

    @property
    def explorer(self) -> Explorer:
        return self._server.explorer

    def close(self) -> None:
        """Stop the server (waits for the request in progress) and free its port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self._thread.is_alive() else "closed"
        return f"Explorer({self.url}, {state})"

    def _repr_html_(self) -> str:
        from html import escape

        return (f'<iframe src="{escape(self.url)}" width="100%" height="720" '
                'style="border: 1px solid #ccc"></iframe>')
