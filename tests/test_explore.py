"""``wally explore`` without a browser: the token, the refused paths, the upload bound, and the
numbers the page shows equal to wally's activations (and torch's)."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wally
from wally.explore import MAX_UPLOAD_BYTES

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _lenet():
    wally.manual_seed(0)
    return wally.models.lenet()


def _finder():
    wally.manual_seed(0)
    return wally.models.wally_finder()


@pytest.fixture(scope="module")
def lenet_server():
    handle = wally.explore(_lenet(), open_browser=False)
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def finder_server():
    handle = wally.explore(_finder(), open_browser=False)
    yield handle
    handle.close()


def request(handle, path, method="GET", body=None, headers=None, host=None):
    connection = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=60)
    sent = dict(headers or {})
    if host is not None:
        sent["Host"] = host
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data, response


def get_json(handle, path):
    status, data, _ = request(handle, path)
    assert status == 200, data
    return json.loads(data)


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


# ----- the token and the host ------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/index.html", "/static/app.js", "/static/style.css",
                                  "/api/state", "/api/unit?layer=0&c=0", "/nothing"])
def test_every_request_without_the_token_is_refused(lenet_server, path):
    status, data, _ = request(lenet_server, path)
    assert status == 403
    assert b"token" in data
    wrong = path + ("&" if "?" in path else "?") + "token=" + "x" * len(lenet_server.token)
    assert request(lenet_server, wrong)[0] == 403


def test_an_upload_without_the_token_is_refused(lenet_server):
    status, _, _ = request(lenet_server, "/api/image", "POST", png(np.zeros((28, 28), np.uint8)))
    assert status == 403


def test_the_token_opens_the_page_and_becomes_a_cookie(lenet_server):
    token = lenet_server.token
    status, data, response = request(lenet_server, f"/?token={token}")
    assert status == 200 and b"<canvas" in data
    cookie = response.getheader("Set-Cookie")
    name = f"wally_explore_token_{lenet_server.port}"
    assert f"{name}={token}" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # the cookie alone, or the Authorization header, opens the rest
    assert request(lenet_server, "/static/app.js",
                   headers={"Cookie": f"{name}={token}"})[0] == 200
    assert request(lenet_server, "/api/state",
                   headers={"Authorization": f"token {token}"})[0] == 200
    assert request(lenet_server, "/static/app.js",
                   headers={"Cookie": f"{name}=nope"})[0] == 403
    other = f"wally_explore_token_{lenet_server.port + 1}"  # another explorer's cookie
    assert request(lenet_server, "/static/app.js",
                   headers={"Cookie": f"{other}={token}"})[0] == 403


def test_a_foreign_host_is_refused(lenet_server):
    token = lenet_server.token
    assert request(lenet_server, f"/?token={token}", host="evil.example:80")[0] == 403
    assert request(lenet_server, f"/?token={token}",
                   host=f"localhost:{lenet_server.port}")[0] == 200


def test_the_address_is_local_with_a_long_random_token(lenet_server):
    assert lenet_server.url.startswith(f"http://127.0.0.1:{lenet_server.port}/?token=")
    assert len(lenet_server.token) >= 40
    assert lenet_server._server.server_address[0] == "127.0.0.1"
    other = wally.explore(_lenet(), open_browser=False)
    try:
        assert other.token != lenet_server.token
    finally:
        other.close()


# ----- paths -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/static/../_server.py", "/static/%2e%2e/_server.py", "/static/%2E%2E/__init__.py",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f_server.py", "/static/%2e%2e%5c_model.py",
    "/static//etc/passwd", "/static/%2fetc%2fpasswd", "//etc/passwd", "/static/app.js%00.png",
    "/etc/passwd", "/static/", "/static/_server.py", "/_server.py", "/static/static",
    "/api/../static/app.js",
])
def test_paths_outside_the_page_are_refused(lenet_server, path):
    sep = "&" if "?" in path else "?"
    status, data, _ = request(lenet_server, f"{path}{sep}token={lenet_server.token}")
    assert status in (403, 404), (path, status)
    assert b"import" not in data and b"root:" not in data


def test_only_the_static_folder_is_served(lenet_server):
    folder = Path(wally.explore.__file__).parent / "static"
    for name in sorted(os.listdir(folder)):
        status, data, response = request(lenet_server,
                                         f"/static/{name}?token={lenet_server.token}")
        assert status == 200 and data == (folder / name).read_bytes()
        assert response.getheader("X-Content-Type-Options") == "nosniff"


# ----- uploads ---------------------------------------------------------------------------------
def test_an_upload_over_the_bound_is_refused_unread(lenet_server):
    # a server that waited for the body would time out here: the test fails, not hangs
    connection = http.client.HTTPConnection("127.0.0.1", lenet_server.port, timeout=10)
    connection.putrequest("POST", f"/api/image?token={lenet_server.token}")
    connection.putheader("Content-Length", str(MAX_UPLOAD_BYTES + 1))
    connection.endheaders()  # no body sent: the answer comes before it would be read
    response = connection.getresponse()
    assert response.status == 413
    assert f"{MAX_UPLOAD_BYTES:,}".encode() in response.read()
    connection.close()


@pytest.mark.parametrize("body, words", [
    (b"%!PS-Adobe-3.0\n%%EOF\n", "PostScript"),
    (b"\x80\x04\x95pickle", "not an image"),
    (b"", "1 to"),
])
def test_uploads_that_are_not_images_are_refused_by_the_safe_reader(lenet_server, body, words):
    before = get_json(lenet_server, f"/api/state?token={lenet_server.token}")
    status, data, _ = request(lenet_server, f"/api/image?token={lenet_server.token}", "POST",
                              body)
    assert status in (400, 413)
    message = json.loads(data)["error"]
    assert words in message and "/tmp" not in message
    assert get_json(lenet_server, f"/api/state?token={lenet_server.token}") == before


def test_an_upload_becomes_the_input(lenet_server):
    token = lenet_server.token
    rng = np.random.default_rng(3)
    picture = (rng.random((40, 30, 3)) * 255).astype(np.uint8)
    status, data, _ = request(lenet_server, f"/api/image?token={token}", "POST", png(picture))
    assert status == 200
    state = json.loads(data)
    assert [state["image"]["height"], state["image"]["width"]] == [28, 28]  # what LeNet sees
    model = lenet_server.explorer.model
    from wally.cli._model_source import image_for_model

    x = image_for_model(model, picture)
    with wally.no_grad():
        expected = wally.softmax(model(wally.from_numpy(x)), dim=1).numpy()[0]
    np.testing.assert_allclose(state["prediction"]["probabilities"], expected, atol=1e-6)


# ----- the numbers -----------------------------------------------------------------------------
def _decoded(layer):
    lo, hi = layer["min"], layer["max"]
    maps = [np.frombuffer(base64.b64decode(m), np.uint8) for m in layer["maps"]]
    return np.stack(maps).astype(np.float64) / 255 * (hi - lo) + lo, (hi - lo) / 255


def _activations(model, x):
    """Every leaf layer's output, by running the Sequential's first k layers (not the hooks)."""
    out, outputs = wally.from_numpy(x), []
    with wally.no_grad():
        for layer in model:
            out = layer(out)
            outputs.append(out.numpy()[0])
    return outputs


@pytest.mark.parametrize("server", ["lenet_server", "finder_server"])
def test_every_layers_maps_are_wallys_activations(server, request):
    handle = request.getfixturevalue(server)
    state = get_json(handle, f"/api/state?token={handle.token}")
    model, x = handle.explorer.model, handle.explorer.x
    expected = _activations(model, x)
    assert [layer["name"] for layer in state["layers"]] == [n for n, _ in model.named_children()]
    for layer, activation in zip(state["layers"], expected, strict=True):
        maps, step = _decoded(layer)
        assert layer["output_shape"][1:] == list(activation.shape)
        np.testing.assert_allclose(maps.reshape(activation.shape), activation,
                                   atol=step / 2 + 1e-6)
    assert state["layers"][0]["params"] == sum(p.numel() for p in model[0].parameters())


def _torch_conv(module, x):
    weight = torch.from_numpy(module.weight.array.astype(np.float64))
    bias = torch.from_numpy(module.bias.array.astype(np.float64))
    return torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64))[None], weight,
                                      bias, module.stride, module.padding, module.dilation,
                                      module.groups)[0].numpy()


@pytest.mark.parametrize("server", ["lenet_server", "finder_server"])
def test_a_convolution_units_equation_gives_wallys_activation(server, request):
    handle = request.getfixturevalue(server)
    explorer = handle.explorer
    expected = _activations(explorer.model, explorer.x)
    convs = [k for k, layer in enumerate(explorer.layers) if layer.type == "Conv2d"]
    assert len(convs) >= 2
    for k in convs:
        out = expected[k]
        d, h, w = out.shape
        reference = _torch_conv(explorer.layers[k].module, explorer.layers[k].input[0])
        for c, i, j in [(0, 0, 0), (d - 1, h - 1, w - 1), (d // 2, h // 2, w // 3)]:
            unit = get_json(handle, f"/api/unit?token={handle.token}&layer={k}&c={c}&i={i}&j={j}")
            assert unit["kind"] == "conv"
            assert unit["value"] == pytest.approx(float(out[c, i, j]), abs=1e-7)
            assert abs(unit["computed"] - unit["value"]) <= 1e-5
            assert unit["computed"] == pytest.approx(reference[c, i, j], abs=1e-9)
            # the equation's own terms: Σc Σa Σb window · kernel + bias
            window, kernel = np.array(unit["window"]), np.array(unit["kernel"])
            assert (window * kernel).sum() + unit["bias"] == pytest.approx(unit["computed"])
            np.testing.assert_array_equal(kernel, explorer.layers[k].module.weight.array[c])


def test_lenets_padded_corner_window_holds_the_padding(lenet_server):
    unit = get_json(lenet_server, f"/api/unit?token={lenet_server.token}&layer=0&c=0&i=0&j=0")
    assert unit["padding"] == [2, 2] and unit["rows"] == [-2, -1, 0, 1, 2]
    window = np.array(unit["window"])
    assert (window[:, :2, :] == 0).all() and (window[:, :, :2] == 0).all()
    x = lenet_server.explorer.x[0]
    np.testing.assert_allclose(window[0, 2:, 2:], x[0, :3, :3])


def test_max_pooling_names_the_winner(finder_server):
    explorer = finder_server.explorer
    k = next(k for k, layer in enumerate(explorer.layers) if layer.type == "MaxPool2d")
    layer = explorer.layers[k]
    values, indices = torch.nn.functional.max_pool2d(torch.from_numpy(layer.input), 2,
                                                     return_indices=True)
    width = layer.input.shape[3]
    positive = np.argwhere(values[0].numpy() > 0)  # after the ReLU: no ties at 0
    assert len(positive) > 100
    for c, i, j in positive[:: len(positive) // 5][:5]:
        unit = get_json(finder_server, f"/api/unit?token={finder_server.token}&layer={k}"
                                       f"&c={c}&i={i}&j={j}")
        assert unit["kind"] == "maxpool"
        assert unit["computed"] == unit["value"] == pytest.approx(float(values[0, c, i, j]))
        flat = int(indices[0, c, i, j])
        assert unit["winner_input"] == [flat // width, flat % width]
        a, b = unit["winner"]
        assert unit["window"][a][b] == unit["value"]


@pytest.mark.parametrize("server", ["lenet_server", "finder_server"])
def test_every_layer_kind_explains_its_units(server, request):
    handle = request.getfixturevalue(server)
    for k, layer in enumerate(handle.explorer.layers):
        out = layer.output[0]
        position = (out.shape[0] - 1, out.shape[1] // 2, out.shape[2] - 1) if out.ndim == 3 \
            else (out.shape[0] // 2, 0, 0)
        c, i, j = position
        unit = get_json(handle, f"/api/unit?token={handle.token}&layer={k}&c={c}&i={i}&j={j}")
        assert unit["kind"] != "other", layer.type
        assert abs(unit["computed"] - unit["value"]) <= 1e-5, (layer.type, unit)


def test_the_sliding_kernels_shares_add_up_to_the_map(lenet_server):
    explorer = lenet_server.explorer
    k = 3  # LeNet's second convolution: 6 input channels
    module = explorer.layers[k].module
    total = 0
    for c in range(6):
        slide = get_json(lenet_server, f"/api/slide?token={lenet_server.token}&layer={k}"
                                       f"&d=5&c={c}")
        assert slide["stride"] == [1, 1] and slide["kernel_size"] == [5, 5]
        total = total + np.array(slide["partial"])
    total += float(module.bias.array[5])
    np.testing.assert_allclose(total, explorer.layers[k].output[0, 5], atol=1e-5)
    first = get_json(lenet_server, f"/api/slide?token={lenet_server.token}&layer=0&d=0&c=0")
    assert np.array(first["input"]).shape == (32, 32)  # 28 + 2 · padding 2


@pytest.mark.parametrize("query, words", [
    ("layer=99&c=0", "no layer 99"), ("layer=0&c=6", "not in layer"),
    ("layer=0&c=0&i=28", "not in layer"), ("layer=zero&c=0", "must be an integer"),
    ("c=0", "needs layer"), ("layer=-1&c=0", "no layer -1"),
])
def test_bad_unit_requests_get_one_clear_error(lenet_server, query, words):
    status, data, _ = request(lenet_server, f"/api/unit?token={lenet_server.token}&{query}")
    assert status == 400 and words in json.loads(data)["error"]


def test_the_finders_prediction_is_its_heatmap(finder_server):
    state = get_json(finder_server, f"/api/state?token={finder_server.token}")
    prediction = state["prediction"]
    assert prediction["kind"] == "heatmap"
    out = finder_server.explorer.output[0, 0]
    assert [prediction["height"], prediction["width"]] == list(out.shape)
    row, col = prediction["best"]
    assert out[row, col] == out.max()
    assert prediction["confidence"] == pytest.approx(1 / (1 + np.exp(-out.max())), abs=1e-6)
    x0, y0, x1, y1 = prediction["box"]
    assert (x1 - x0, y1 - y0) == (30, 30) and (x0, y0) == (4 * col, 4 * row)


def test_a_unit_has_its_receptive_field_on_the_input(lenet_server):
    unit = get_json(lenet_server, f"/api/unit?token={lenet_server.token}&layer=3&c=0&i=4&j=6")
    field = unit["field"]
    # conv2 of LeNet: 14×14 field, jump 2, start −2 (summary's receptive_field column)
    assert field["analytic"]["size"] == [14, 14] and field["analytic"]["jump"] == [2, 2]
    assert field["box"] == [[6, 19], [10, 23]]
    effective = np.frombuffer(base64.b64decode(field["effective"]), np.uint8).reshape(28, 28)
    inside = np.zeros_like(effective, dtype=bool)
    inside[6:20, 10:24] = True
    assert effective[~inside].max() == 0 and effective[inside].max() == 255


# ----- the Python API and the command line -----------------------------------------------------
def test_import_wally_does_not_import_the_explorer():
    code = "import sys, wally; print('wally.explore' in sys.modules, callable(wally.explore))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC}, check=True).stdout.split()
    assert out == ["False", "True"]


def test_the_handle_shows_as_an_iframe_and_closes():
    handle = wally.explore(_lenet(), open_browser=False)
    assert f'src="{handle.url}"' in handle._repr_html_().replace("&amp;", "&")
    assert "running" in repr(handle)
    port = handle.port
    handle.close()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=5).request("GET", "/")
    assert "closed" in repr(handle)


def test_explore_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="wally.nn.Module"):
        wally.explore("lenet", open_browser=False)


def _cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "wally", "explore", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": SRC})


def test_the_command_serves_until_ctrl_c(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "wally", "explore", "lenet",
                                "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": SRC})
    try:
        line = process.stdout.readline()
        assert line.startswith("wally explore: serving lenet at http://127.0.0.1:")
        url = line.split(" at ", 1)[1].strip()
        port = int(url.split(":")[2].split("/")[0])
        token = url.split("token=")[1]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", f"/api/state?token={token}")
        assert json.loads(connection.getresponse().read())["model"] == "lenet"
        connection.request("GET", "/api/state")
        assert connection.getresponse().status == 403
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0 and "stopped" in out and err == ""
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("args, words", [
    (["nosuchmodel", "--no-browser"], "unknown model 'nosuchmodel'"),
    (["missing.safetensors", "--no-browser"], "no checkpoint at missing.safetensors"),
    (["lenet", "--image", "missing.png", "--no-browser"], "no image at missing.png"),
    (["lenet", "--port", "70000"], "port from 0 to 65535"),
])
def test_the_command_reports_bad_input_in_one_line(args, words):
    result = _cli(*args)
    assert result.returncode in (1, 2)
    assert words in result.stderr and "Traceback" not in result.stderr
    if result.returncode == 1:
        assert len(result.stderr.strip().splitlines()) == 1


def test_the_command_refuses_an_image_too_small_for_the_finder(tmp_path):
    path = tmp_path / "tiny.png"
    path.write_bytes(png(np.zeros((8, 8, 3), np.uint8)))
    result = _cli("wally_finder", "--image", str(path), "--no-browser")
    assert result.returncode == 1 and "tiny.png" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name, expected", [
    ("lenet_modern", {"conv", "batchnorm", "maxpool", "linear", "flatten", "elementwise"}),
    ("resnet18_cifar", {"conv", "batchnorm", "adaptive", "linear", "elementwise", "flatten"}),
])
def test_other_models_explain_every_layer(name, expected):
    """Batch norm on vectors, max pooling, adaptive pooling, a residual network's layers (not a
    Sequential: the hooks find them): every unit's equation gives wally's value (the equation
    alone: a receptive field per layer of ResNet would take a minute)."""
    from wally.explore import Explorer
    from wally.explore._model import explain

    wally.manual_seed(0)
    explorer = Explorer(wally.models.get_model(name).eval())
    explorer.set_image(explorer.default_image())
    kinds = set()
    for layer in explorer.layers:
        out = layer.output[0]
        position = (out.shape[0] // 2, out.shape[1] // 2, out.shape[2] // 2) if out.ndim == 3 \
            else (out.shape[0] // 2,)
        unit = explain(layer, position)
        kinds.add(unit["kind"])
        assert unit["kind"] != "other", layer.type
        assert abs(unit["computed"] - float(out[position])) <= 1e-5, (layer.name, layer.type)
    assert kinds == expected


def test_the_command_opens_a_checkpoint_with_its_class_names(tmp_path):
    from wally.io import save_checkpoint

    model = _lenet()
    path = tmp_path / "lenet.safetensors"
    names = [f"class {k}" for k in range(10)]
    save_checkpoint(path, model, extra={"classes": names})
    process = subprocess.Popen([sys.executable, "-m", "wally", "explore", str(path),
                                "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": SRC})
    try:
        line = process.stdout.readline()
        assert " at http://127.0.0.1:" in line, process.stderr.read() if not line else line
        url = line.split(" at ", 1)[1].strip()
        port, token = int(url.split(":")[2].split("/")[0]), url.split("token=")[1]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", f"/api/state?token={token}")
        prediction = json.loads(connection.getresponse().read())["prediction"]
        assert prediction["classes"] == names
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


def test_an_upload_can_be_inverted(lenet_server):
    token = lenet_server.token
    white = np.full((28, 28), 255, np.uint8)
    status, data, _ = request(lenet_server, f"/api/image?token={token}&invert=1", "POST",
                              png(white))
    assert status == 200 and float(lenet_server.explorer.x.max()) == 0.0
    status, data, _ = request(lenet_server, f"/api/image?token={token}", "POST", png(white))
    assert status == 200 and float(lenet_server.explorer.x.min()) == 1.0


def test_a_hand_built_model_without_an_input_size():
    """No ``input_size``: its first convolution's one input channel makes the input grey."""
    from wally import nn
    from wally.explore import Explorer

    wally.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)).eval()
    explorer = Explorer(model)
    explorer.set_image(explorer.default_image())
    assert explorer.x.shape == (1, 1, 32, 32)
    unit = explorer.unit(0, 1, 5, 6)
    assert abs(unit["computed"] - unit["value"]) <= 1e-5
    assert explorer.state()["prediction"]["kind"] == "output"


@pytest.mark.parametrize("padding, kernel, dilation", [("same", 4, 1), ("same", 3, 2), (2, 3, 1)])
def test_a_units_equation_reads_padding_as_the_layer_does(padding, kernel, dilation):
    """``padding='same'`` (asymmetric for an even kernel) and numbers alike: the equation of
    every corner and centre unit gives the layer's value, the window's first row and column
    where the layer's padding puts them."""
    from wally import nn
    from wally.explore import Explorer
    from wally.explore._model import explain

    wally.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, kernel, padding=padding, dilation=dilation),
                          nn.MaxPool2d(3, stride=2, padding=1))
    explorer = Explorer(model.eval())
    image = np.random.default_rng(0).integers(0, 256, (20, 20), dtype=np.uint8)
    explorer.set_image(image)
    conv = explorer.layers[0]
    out = conv.output[0]
    rows, cols = out.shape[1:]
    before = (dilation * (kernel - 1)) // 2 if padding == "same" else padding
    for i, j in ((0, 0), (rows - 1, cols - 1), (rows // 2, cols // 2), (0, cols - 1)):
        unit = explain(conv, (1, i, j))
        assert abs(unit["computed"] - float(out[1, i, j])) <= 1e-5, (i, j, unit["padding"])
        assert unit["rows"][0] == i - before and unit["cols"][0] == j - before
    pool = explorer.layers[1]
    value = pool.output[0]
    unit = explain(pool, (0, value.shape[1] - 1, value.shape[2] - 1))
    assert unit["computed"] == pytest.approx(float(value[0, -1, -1]))
