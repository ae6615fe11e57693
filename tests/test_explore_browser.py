"""``wally explore`` in a real browser: Debian's Chromium, headless, driven by Selenium.

Skipped with the reason when selenium, chromium or chromedriver is missing (CI installs
``chromium`` and ``chromium-driver``). Screenshots of each state are written to
``$WALLY_ARTIFACTS/explore`` (else a pytest temporary folder), whose path is printed.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import wally

webdriver = pytest.importorskip("selenium.webdriver",
                                reason="needs selenium (pip install selenium)")
Image = pytest.importorskip("PIL.Image")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "",
                             shutil.which("chromium-browser") or "") if p and os.path.exists(p)),
                None)
DRIVER = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver") or "")
               if p and os.path.exists(p)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="needs Debian's chromium and chromium-driver "
                                       "(apt-get install chromium chromium-driver)")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1800")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = os.environ.get("WALLY_ARTIFACTS")
    folder = Path(root) / "explore" if root else tmp_path_factory.mktemp("explore-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nexplore screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="wally-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _probe_lenet(default, other):
    """LeNet whose last layer is set (not trained) to tell ``default`` (class 0) from ``other``
    (class 1): the two images' 84 features ``f_a``, ``f_b``, ``Δ = f_b − f_a``; row 1 is
    ``k·Δ`` with bias ``−k·Δ·(f_a + f_b)/2``, row 0 its negative, the rest zero."""
    from wally.cli._model_source import image_for_model

    wally.manual_seed(0)
    model = wally.models.lenet().eval()
    features = []
    with wally.no_grad():
        for image in (default, other):
            rgb = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image
            x = wally.from_numpy(image_for_model(model, rgb))
            features.append(model[:11](x).numpy()[0].astype(np.float64))
    fa, fb = features
    delta = fb - fa
    k = 20.0 / float(delta @ delta)
    weight = np.zeros((10, 84), np.float32)
    bias = np.zeros(10, np.float32)
    weight[1], bias[1] = k * delta, -k * delta @ (fa + fb) / 2
    weight[0], bias[0] = -weight[1], -bias[1]
    model[11].weight.array[...] = weight
    model[11].bias.array[...] = bias
    return model


def _wait_ready(driver, timeout=60):
    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element(By.ID, "status").text == "ready"
        or "error" in d.find_element(By.ID, "status").get_attribute("class"))
    assert driver.find_element(By.ID, "status").text == "ready", \
        driver.find_element(By.ID, "status").text


def _canvas_report(driver):
    """Per map canvas: layer, channel, whether every pixel is drawn (opaque), distinct colours."""
    return driver.execute_script("""
        return [...document.querySelectorAll('canvas.map')].map((c) => {
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let opaque = true; const colours = new Set();
          for (let k = 0; k < d.length; k += 4) {
            if (d[k + 3] !== 255) opaque = false;
            if (colours.size < 3) colours.add((d[k] << 16) | (d[k + 1] << 8) | d[k + 2]);
          }
          return [Number(c.dataset.layer), Number(c.dataset.channel), opaque, colours.size];
        });""")


def _drawn_pixels(driver, element_id):
    return driver.execute_script(f"""
        const c = document.getElementById('{element_id}');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let k = 3; k < d.length; k += 4) if (d[k] > 0) n++;
        return n;""")


def _best(driver):
    """The class the page shows as predicted (read in one go: the page may be redrawing)."""
    return driver.execute_script(
        "const b = document.querySelector('#prediction .best'); return b && b.dataset.best;")


def _activations(model, x):
    out, outputs = wally.from_numpy(x), []
    with wally.no_grad():
        for layer in model:
            out = layer(out)
            outputs.append(out.numpy()[0])
    return outputs


def _check_every_layer_drawn(driver, handle):
    layers = handle.explorer.layers
    report = _canvas_report(driver)
    expected = sum(layer.output.shape[1] if layer.output.ndim == 4 else 1 for layer in layers)
    assert len(report) == expected
    assert all(opaque for _, _, opaque, _ in report)
    for k, layer in enumerate(layers):
        colours = max(n for layer_index, _, _, n in report if layer_index == k)
        if float(layer.output.max()) > float(layer.output.min()):
            assert colours >= 2, f"layer {layer.name} is drawn blank"
    assert _drawn_pixels(driver, "input-canvas") > 0


def _click_unit(driver, handle, layer, channel):
    """Click the middle of a map; the unit's numbers, and wally's activation there."""
    canvas = driver.find_element(By.CSS_SELECTOR,
                                 f'canvas.map[data-layer="{layer}"][data-channel="{channel}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    previous = driver.execute_script("return explore.selected")
    canvas.click()
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return explore.selected") != previous
        and d.find_element(By.ID, "status").text == "ready")
    unit = driver.execute_script("return explore.selected.unit")
    computed = float(driver.find_element(By.ID, "unit-computed").text)
    shown = float(driver.find_element(By.ID, "unit-value").text)
    activation = _activations(handle.explorer.model, handle.explorer.x)[layer][tuple(unit)]
    return unit, computed, shown, float(activation)


def test_lenet_page_draws_every_layer_and_explains_a_unit(browser, artifacts):
    from wally.cli._images import synthetic

    handle = wally.explore(_probe_lenet(synthetic(False)[0][0],
                                        np.zeros((28, 28), np.uint8)), open_browser=False)
    try:
        browser.get(handle.url)
        _wait_ready(browser)
        assert browser.find_element(By.ID, "model-name").text == "lenet"
        _check_every_layer_drawn(browser, handle)
        browser.save_screenshot(str(artifacts / "lenet-page.png"))

        for layer, channel in [(0, 2), (3, 7), (2, 1), (7, 0), (11, 0)]:
            unit, computed, shown, activation = _click_unit(browser, handle, layer, channel)
            assert abs(computed - activation) <= 1e-5, (layer, unit)
            assert shown == pytest.approx(activation, abs=1e-7)
        # the last click: LeNet's conv1 (padding 2) again, for the box and the sliding kernel
        unit, computed, _, activation = _click_unit(browser, handle, 0, 4)
        assert abs(computed - activation) <= 1e-5
        assert unit[0] == 4 and _drawn_pixels(browser, "overlay-canvas") > 0
        assert browser.find_element(By.ID, "unit-body").get_attribute("data-kind") == "conv"
        slide = browser.find_element(By.ID, "slide")
        assert slide.is_displayed()
        before = browser.find_element(By.ID, "slide-text").text
        browser.find_element(By.ID, "slide-step").click()
        after = browser.find_element(By.ID, "slide-text").text
        assert before != after
        assert "stride 1×1, padding 2×2" in browser.find_element(By.ID, "slide-title").text
        browser.save_screenshot(str(artifacts / "lenet-unit.png"))
        browser.execute_script("document.getElementById('slide').scrollIntoView()")
        browser.save_screenshot(str(artifacts / "lenet-slide.png"))
    finally:
        handle.close()


def test_uploading_or_drawing_an_image_changes_the_prediction(browser, artifacts, tmp_path):
    from wally.cli._images import synthetic

    default, other = synthetic(False)[0][0], np.zeros((28, 28), np.uint8)
    handle = wally.explore(_probe_lenet(default, other), image=default, open_browser=False)
    try:
        browser.get(handle.url)
        _wait_ready(browser)
        assert _best(browser) == "0"
        path = tmp_path / "black.png"
        buffer = io.BytesIO()
        Image.fromarray(other).save(buffer, "PNG")
        path.write_bytes(buffer.getvalue())
        browser.find_element(By.ID, "upload").send_keys(str(path))
        WebDriverWait(browser, 60).until(lambda d: _best(d) == "1")
        _wait_ready(browser)
        assert float(handle.explorer.x.max()) == 0.0  # the server's input is the upload
        browser.save_screenshot(str(artifacts / "lenet-upload.png"))

        # draw a stroke on the digit pad and use it: the page shows wally's prediction for it
        pad = browser.find_element(By.ID, "draw-canvas")
        ActionChains(browser).move_to_element_with_offset(pad, -40, -40).click_and_hold() \
            .move_by_offset(40, 40).move_by_offset(30, -20).release().perform()
        browser.find_element(By.ID, "draw-use").click()
        WebDriverWait(browser, 60).until(lambda d: float(handle.explorer.x.max()) > 0)
        _wait_ready(browser)
        time.sleep(0.3)
        with wally.no_grad():
            logits = handle.explorer.model(wally.from_numpy(handle.explorer.x)).numpy()[0]
        assert _best(browser) == str(int(np.argmax(logits)))
        browser.save_screenshot(str(artifacts / "lenet-drawn.png"))
    finally:
        handle.close()


def test_finder_page_shows_its_heatmap_and_the_pooling_winner(browser, artifacts):
    wally.manual_seed(0)
    handle = wally.explore(wally.models.wally_finder(), open_browser=False)
    try:
        browser.get(handle.url)
        _wait_ready(browser)
        _check_every_layer_drawn(browser, handle)
        assert _drawn_pixels(browser, "heatmap-canvas") > 0
        browser.save_screenshot(str(artifacts / "finder-page.png"))
        names = [layer.name for layer in handle.explorer.layers]
        pool = names.index("pool1")
        unit, computed, _, activation = _click_unit(browser, handle, pool, 5)
        assert computed == pytest.approx(activation, abs=1e-7)
        assert "winner" in browser.find_element(By.ID, "pool-winner").text
        for name, channel in [("conv3", 10), ("bn1", 3), ("head", 0)]:
            unit, computed, _, activation = _click_unit(browser, handle, names.index(name),
                                                        channel)
            assert abs(computed - activation) <= 1e-5, (name, unit)
        browser.save_screenshot(str(artifacts / "finder-unit.png"))
    finally:
        handle.close()


def test_the_browser_is_refused_without_the_token_or_outside_the_page(browser, artifacts):
    wally.manual_seed(0)
    handle = wally.explore(wally.models.lenet(), open_browser=False)
    try:
        browser.get(handle.url)  # sets the cookie, as Jupyter does
        _wait_ready(browser)
        browser.delete_all_cookies()
        browser.get(f"http://127.0.0.1:{handle.port}/")
        assert "needs the token" in browser.find_element(By.TAG_NAME, "body").text
        browser.save_screenshot(str(artifacts / "refused-token.png"))
        browser.get(f"http://127.0.0.1:{handle.port}/api/state")
        assert "needs the token" in browser.find_element(By.TAG_NAME, "body").text
        for path in ("static/%2e%2e/_server.py", "static/..%2f_server.py",
                     "static/%2e%2e%2f%2e%2e%2f__init__.py"):
            browser.get(f"http://127.0.0.1:{handle.port}/{path}?token={handle.token}")
            text = browser.find_element(By.TAG_NAME, "body").text
            assert "explore:" in text and "import" not in text, (path, text)
        browser.save_screenshot(str(artifacts / "refused-path.png"))
    finally:
        handle.close()
