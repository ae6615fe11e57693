"""The notebooks in notebooks/ run end to end in a real IPython kernel (nbclient), and their
outputs hold what they promise: HTML summary tables with a row per layer, pictures as
image/png, tensors printed as PyTorch prints them.

The kernel is a kernel spec made in a temporary JUPYTER_PATH that runs this very interpreter
with this checkout's ``src`` first on the path, so nothing is installed globally."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL.Image")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "wally-notebook-test"


@pytest.fixture(scope="module")
def kernel_home(tmp_path_factory):
    """A JUPYTER_PATH holding one kernel spec: this Python, this checkout's wally."""
    home = tmp_path_factory.mktemp("jupyter")
    spec = home / "kernels" / KERNEL
    spec.mkdir(parents=True)
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "MPLBACKEND": "Agg", "IPYTHONDIR": str(home / "ipython")}
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "wally (tests)", "language": "python", "env": env}))
    return home


def execute(name, kernel_home, workdir, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_home))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(kernel_home / "runtime"))  # connection files
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=KERNEL, timeout=300,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()  # raises CellExecutionError, with the traceback, if any cell fails
    return notebook


def outputs(notebook, kind):
    """Every output of ``kind`` ("text/html", "image/png", "text/plain", "stream")."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if kind == "stream" and output["output_type"] == "stream":
                found.append(output["text"])
            elif kind in output.get("data", {}):
                found.append(output["data"][kind])
    return found


def assert_png(data, min_side=100):
    picture = PIL.open(io.BytesIO(base64.b64decode(data)))
    assert picture.format == "PNG" and min(picture.size) >= min_side
    colours = picture.convert("L").getextrema()
    assert colours[1] - colours[0] > 50  # something is drawn


def table_rows(html):
    return re.findall(r"<tr>(.*?)</tr>", html)


def test_the_notebooks_are_stored_without_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), path


def test_lenet_notebook(kernel_home, tmp_path, monkeypatch):
    notebook = execute("lenet_fashion_mnist", kernel_home, tmp_path, monkeypatch)
    html, explorer = outputs(notebook, "text/html")
    # wally.explore(model) shows the explorer's page in the notebook, and its server answered
    assert re.search(r'<iframe src="http://127\.0\.0\.1:\d+/\?token=[\w-]+"', explorer)
    assert any("200 text/html" in text for text in outputs(notebook, "stream"))
    rows = table_rows(html)
    # the header and the model's row, then lenet_modern's sixteen layers, Conv2d first
    assert len(rows) == 1 + 1 + 16
    assert "Output shape" in rows[0] and "Conv2d" in rows[2] and "(1, 6, 24, 24)" in rows[2]
    assert "BatchNorm2d" in rows[3] and "MaxPool2d" in rows[5]
    plain = outputs(notebook, "text/plain")
    (kernel,) = [p for p in plain if p.startswith("tensor(")]
    # PyTorch's layout: 'tensor([[' then rows aligned under the first, 4 decimals
    lines = kernel.splitlines()
    assert len(lines) == 5 and lines[0].startswith("tensor([[") and lines[-1].endswith("]])")
    assert all(line.startswith("        [") for line in lines[1:])
    assert all(re.fullmatch(r"-?\d\.\d{4}", n.strip(" []tensor(),"))
               for line in lines for n in line.split(",") if n.strip(" []tensor(),"))
    pngs = outputs(notebook, "image/png")
    assert len(pngs) == 2  # the curves and the kernels
    for data in pngs:
        assert_png(data)
    (result,) = [p for p in plain if p.startswith("{'loss'")]
    accuracy = float(re.search(r"'accuracy': ([0-9.]+)", result).group(1))
    assert accuracy > 0.5  # it learned (chance is 0.1); 0.92 on the digits fallback here
    events = list((tmp_path / "runs" / "lenet_notebook").glob("events.out.tfevents.*"))
    assert len(events) == 1


def test_wally_finder_notebook(kernel_home, tmp_path, monkeypatch):
    notebook = execute("wally_finder", kernel_home, tmp_path, monkeypatch)
    (html,) = outputs(notebook, "text/html")
    assert "RF" in table_rows(html)[0] and "Conv2d" in html
    (png,) = outputs(notebook, "image/png")
    assert_png(png)
    assert any("found at" in text for text in outputs(notebook, "stream"))


def test_receptive_fields_notebook(kernel_home, tmp_path, monkeypatch):
    notebook = execute("receptive_fields", kernel_home, tmp_path, monkeypatch)
    printed = "".join(outputs(notebook, "stream"))
    assert "after layer 3 (Conv2d): size (14, 14), jump (2, 2)" in printed
    (html,) = outputs(notebook, "text/html")
    rows = table_rows(html)
    assert len(rows) == 1 + 1 + 12 and "Kernel shape" in rows[0]
    (png,) = outputs(notebook, "image/png")
    assert_png(png)


# ----- the rich displays themselves, without a kernel --------------------------------------------
def test_a_summary_shows_as_an_html_table_of_its_rows():
    import html as html_module

    import wally

    summary = wally.summary(wally.models.lenet(), input_size=(1, 1, 28, 28), verbose=0)
    html = summary._repr_html_()
    rows = table_rows(html)
    assert len(rows) == 1 + len(summary.layers)
    header = re.findall(r"<th[^>]*>(.*?)</th>", rows[0])
    assert header == summary._headers()
    text_rows = str(summary).splitlines()
    for row, layer in zip(rows[1:], summary.layers, strict=True):
        cells = [html_module.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        assert cells[0] == layer.label
        assert any(cells[1] in line and layer.label in line for line in text_rows)
    assert 'padding-left' in rows[2] and 'padding-left' not in rows[1]  # nested rows indented
    assert "61,706" in html and "<script" not in html


def test_a_summary_escapes_what_it_shows():
    import wally
    from wally import nn

    class Odd(nn.Module):  # a class name is shown as it is: it must not become markup
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x)

    Odd.__name__ = "<b>Odd</b>"
    html = wally.summary(Odd(), input_size=(1, 2), verbose=0)._repr_html_()
    assert "<b>" not in html and "&lt;b&gt;Odd&lt;/b&gt;" in html


def test_a_picture_shows_its_png_inline(tmp_path):
    import wally
    from wally.viz import plot_kernels

    picture = plot_kernels(wally.models.lenet(), "0", tmp_path / "k.png")
    data = picture._repr_png_()
    assert data == (tmp_path / "k.png").read_bytes() and data[:8] == b"\x89PNG\r\n\x1a\n"
