// wally explore: the page. Plain JavaScript, no library: it asks the server (same origin, the
// token from the address) for the layers' maps and one unit's numbers, and draws them on
// canvases. Every text that comes from the model goes in through textContent, never as HTML.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token") || "";
const INPUT_SIDE = 224;  // CSS pixels of the input picture's width
const MAP_WIDTH = 64;    // CSS pixels of a map's width in the columns

const explore = { state: null, selected: null, slide: null, timer: null };
window.explore = explore;  // for the curious, and for the browser tests

function api(path, params = {}) {
  const query = new URLSearchParams({ ...params, token: TOKEN });
  return `api/${path}?${query}`;
}

async function getJSON(path, params) {
  const response = await fetch(api(path, params));
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function setStatus(text, error = false) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function bytes(base64) {
  const text = atob(base64);
  const out = new Uint8Array(text.length);
  for (let k = 0; k < text.length; k++) out[k] = text.charCodeAt(k);
  return out;
}

const fmt = (v) => (v === null || v === undefined ? "—" : Number(v).toPrecision(6));
const full = (v) => (v === null || v === undefined ? "—" : String(v));  // every digit
const count = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en"));

// A colour for a byte b of a map scaled to [lo, hi]: red for positive values, blue for negative
// ones (white at zero) when the layer has both signs, else black (lo) to white (hi).
function colour(b, lo, hi) {
  if (lo < 0 && hi > 0) {
    const v = lo + (b / 255) * (hi - lo);
    const t = Math.min(1, Math.abs(v) / Math.max(-lo, hi));
    const fade = Math.round(255 * (1 - t));
    return v >= 0 ? [255, fade, fade] : [fade, fade, 255];
  }
  return [b, b, b];
}

function drawMap(canvas, data, width, height, lo, hi) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  for (let k = 0; k < width * height; k++) {
    const [r, g, b] = colour(data[k], lo, hi);
    image.data.set([r, g, b, 255], 4 * k);
  }
  ctx.putImageData(image, 0, 0);
}

// ----- the whole page from a state --------------------------------------------------------------
function render(state) {
  explore.state = state;
  explore.selected = null;
  document.getElementById("model-name").textContent = state.model;
  const macs = state.layers.reduce((s, l) => s + (l.macs || 0), 0);
  const params = state.layers.reduce((s, l) => s + (l.params || 0), 0);
  document.getElementById("totals").textContent =
    `${state.layers.length} layers · ${count(params)} parameters · ${count(macs)} MACs`;
  drawInput(state);
  drawNetwork(state);
  drawPrediction(state.prediction);
  document.getElementById("unit-title").textContent =
    "Click a unit of any map to see how it was computed.";
  document.getElementById("unit-body").replaceChildren();
  document.getElementById("slide").hidden = true;
  clearOverlay();
}

function drawInput(state) {
  const { width, height, rgb } = state.image;
  const canvas = document.getElementById("input-canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  const data = bytes(rgb);
  for (let k = 0; k < width * height; k++) {
    image.data.set([data[3 * k], data[3 * k + 1], data[3 * k + 2], 255], 4 * k);
  }
  ctx.putImageData(image, 0, 0);
  const cssHeight = Math.round((INPUT_SIDE * height) / width);
  canvas.style.height = `${cssHeight}px`;
  document.getElementById("input-stack").style.height = `${cssHeight}px`;
  const overlay = document.getElementById("overlay-canvas");
  overlay.style.height = `${cssHeight}px`;
  document.getElementById("input-shape").textContent =
    `image ${width}×${height}; the model's input ${state.input.shape.join("×")}`;
}

function drawNetwork(state) {
  const network = document.getElementById("network");
  network.replaceChildren();
  for (const layer of state.layers) {
    const shape = layer.output_shape.slice(1).join("×");
    const column = el("div", { class: "layer", "data-layer": layer.index },
      el("h3", { text: `${layer.name || "(model)"}: ${layer.type}`, title: layer.repr }),
      el("div", { class: "meta", text: `${shape}` }),
      el("div", { class: "meta", text: `${count(layer.params)} params · ${count(layer.macs)} MACs` }),
      el("div", { class: "meta", text: `range ${fmt(layer.min)} … ${fmt(layer.max)}` }));
    const maps = el("div", { class: "maps" });
    const spatial = layer.output_shape.length === 4;
    layer.maps.forEach((encoded, channel) => {
      const canvas = el("canvas", { class: spatial ? "map" : "map vector",
        "data-layer": layer.index, "data-channel": channel });
      const [h, w] = spatial ? layer.output_shape.slice(2) : [1, layer.output_shape[1]];
      drawMap(canvas, bytes(encoded), w, h, layer.min, layer.max);
      canvas.style.width = `${MAP_WIDTH}px`;
      if (spatial) canvas.style.height = `${Math.max(1, Math.round((MAP_WIDTH * h) / w))}px`;
      canvas.addEventListener("click", (event) => {
        const x = Math.floor((event.offsetX / canvas.clientWidth) * w);
        const y = Math.floor((event.offsetY / canvas.clientHeight) * h);
        const cx = Math.min(w - 1, Math.max(0, x));
        const cy = Math.min(h - 1, Math.max(0, y));
        if (spatial) selectUnit(layer.index, channel, cy, cx);
        else selectUnit(layer.index, cx, 0, 0);
      });
      maps.append(canvas);
    });
    column.append(maps);
    network.append(column);
  }
}

function drawPrediction(prediction) {
  const box = document.getElementById("prediction");
  box.replaceChildren();
  if (prediction.kind === "classes") {
    box.append(el("p", { class: "best", "data-best": prediction.best,
      text: `predicted: ${prediction.best_name} (${(100 * prediction.probabilities[prediction.best]).toFixed(1)} %)` }));
    prediction.probabilities.forEach((p, k) => {
      const fill = el("span", { class: "fill" });
      fill.style.width = `${Math.max(1, Math.round(120 * p))}px`;
      box.append(el("div", { class: k === prediction.best ? "bar best" : "bar" },
        el("span", { text: prediction.classes[k] }), fill,
        el("span", { text: `${(100 * p).toFixed(1)} %` })));
    });
  } else if (prediction.kind === "heatmap") {
    box.append(el("p", { class: "best", "data-best": prediction.best.join(","),
      text: `best window ${prediction.best.join(", ")}: confidence ${prediction.confidence.toFixed(3)}` }));
    const canvas = el("canvas", { id: "heatmap-canvas" });
    drawMap(canvas, bytes(prediction.heatmap), prediction.width, prediction.height, 0, 1);
    box.append(canvas, el("p", { class: "small",
      text: "the finder's heatmap: the sigmoid of each window's logit (white: Wally)" }));
    box.append(el("p", { class: "small", text: "yellow on the input: the best window" }));
  } else {
    box.append(el("p", { text: `output of shape ${prediction.shape.join("×")}` }));
  }
}

// ----- the input's overlay: receptive fields ----------------------------------------------------
function overlayContext() {
  const overlay = document.getElementById("overlay-canvas");
  const { width, height } = explore.state.image;
  const scale = 8;  // the overlay is drawn finer than the image so boxes stay sharp
  if (overlay.width !== width * scale) {
    overlay.width = width * scale;
    overlay.height = height * scale;
  }
  const ctx = overlay.getContext("2d");
  ctx.setTransform(scale, 0, 0, scale, 0, 0);
  return ctx;
}

// The overlay holds the finder's best window (yellow) under whatever a click draws.
function clearOverlay() {
  const ctx = overlayContext();
  ctx.clearRect(0, 0, explore.state.image.width, explore.state.image.height);
  const prediction = explore.state.prediction;
  if (prediction.kind === "heatmap" && prediction.box) drawBox(prediction.box, "#ffd400");
}

function drawBox([x0, y0, x1, y1], colourName) {
  const ctx = overlayContext();
  ctx.strokeStyle = colourName;
  ctx.lineWidth = Math.max(0.3, explore.state.image.width / 120);
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
}

function drawFields(field) {
  clearOverlay();
  if (!field) return;
  const ctx = overlayContext();
  const { width, height } = explore.state.image;
  if (field.effective && field.width === width && field.height === height) {
    const data = bytes(field.effective);
    const patch = new OffscreenCanvas(width, height);
    const pctx = patch.getContext("2d");
    const image = pctx.createImageData(width, height);
    for (let k = 0; k < width * height; k++) {
      image.data.set([0, 200, 255, Math.round(0.6 * Math.sqrt(data[k] / 255) * 255)], 4 * k);
    }
    pctx.putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(patch, 0, 0);
  }
  if (field.box) {
    const [[r0, r1], [c0, c1]] = field.box;
    drawBox([c0, r0, c1 + 1, r1 + 1], "#e4572e");
  }
}

// ----- one unit ---------------------------------------------------------------------------------
async function selectUnit(layer, c, i, j) {
  setStatus(`unit ${c}, ${i}, ${j} of layer ${layer}…`);
  document.querySelectorAll("canvas.map.selected").forEach((n) => n.classList.remove("selected"));
  const map = document.querySelector(`canvas.map[data-layer="${layer}"][data-channel="${explore.state.layers[layer].output_shape.length === 4 ? c : 0}"]`);
  if (map) map.classList.add("selected");
  try {
    const unit = await getJSON("unit", { layer, c, i, j });
    explore.selected = unit;
    showUnit(unit);
    drawFields(unit.field);
    if (unit.kind === "conv") await openSlide(layer, c, unit.first_channel, i, j);
    else document.getElementById("slide").hidden = true;
    setStatus("ready");
  } catch (error) {
    setStatus(error.message, true);
  }
}

function grid(rows, highlight = () => "") {
  const table = el("table", { class: "grid" });
  rows.forEach((row, a) => {
    const tr = el("tr");
    row.forEach((v, b) => tr.append(el("td", { class: highlight(a, b), text: v === null ? "−∞" : Number(v).toFixed(3) })));
    table.append(tr);
  });
  return table;
}

function resultLine(unit) {
  const diff = unit.computed === null ? null : Math.abs(unit.computed - unit.value);
  return el("p", {},
    el("span", { class: "result" },
      "computed here: ", el("span", { id: "unit-computed", text: full(unit.computed) }),
      "   wally's activation: ", el("span", { id: "unit-value", text: full(unit.value) }),
      "   |difference|: ", el("span", { id: "unit-diff", text: diff === null ? "—" : diff.toExponential(2) })));
}

function showUnit(unit) {
  const where = unit.unit.length === 3 ? `channel d=${unit.unit[0]}, position i=${unit.unit[1]}, j=${unit.unit[2]}` : `unit ${unit.unit[0]}`;
  document.getElementById("unit-title").textContent = `${unit.name}: ${unit.type}, ${where}`;
  const body = document.getElementById("unit-body");
  body.replaceChildren();
  body.dataset.kind = unit.kind;
  if (unit.equation) body.append(el("p", { class: "equation", text: unit.equation }));
  if (unit.kind === "conv") body.append(...convDetail(unit));
  else if (unit.kind === "maxpool" || unit.kind === "avgpool") body.append(...poolDetail(unit));
  else if (unit.kind === "batchnorm") {
    body.append(el("p", { class: "mono",
      text: `(${fmt(unit.x)} − ${fmt(unit.mean)}) / √(${fmt(unit.var)} + ${unit.eps}) · ${fmt(unit.gamma)} + ${fmt(unit.beta)}` }));
  } else if (unit.kind === "adaptive") {
    body.append(el("p", { class: "mono",
      text: `the mean of ${unit.count} inputs: rows ${unit.rows.join("…")}, columns ${unit.cols.join("…")}` }));
  } else if (unit.kind === "elementwise") {
    body.append(el("p", { class: "mono", text: `x = ${fmt(unit.x)}` }));
  } else if (unit.kind === "linear") {
    body.append(el("p", { class: "mono",
      text: `${unit.inputs} inputs; the 12 largest terms |[W]d,k · [x]k| of the sum (${fmt(unit.sum)} in all) and [b]d = ${fmt(unit.bias)}:` }));
    const table = el("table", { class: "grid" }, el("tr", {}, el("td", { text: "k" }),
      el("td", { text: "[W]d,k" }), el("td", { text: "[x]k" }), el("td", { text: "product" })));
    for (const t of unit.top) {
      table.append(el("tr", {}, el("td", { text: t.k }), el("td", { text: fmt(t.w) }),
        el("td", { text: fmt(t.x) }), el("td", { text: fmt(t.product) })));
    }
    body.append(table);
  } else if (unit.kind === "flatten") {
    body.append(el("p", { class: "mono", text: `from the input's unit (c, i, j) = (${unit.source.join(", ")})` }));
  } else {
    body.append(el("p", { text: "no equation is shown for this kind of layer." }));
  }
  body.append(resultLine(unit));
  if (unit.field && unit.field.analytic) {
    const a = unit.field.analytic;
    body.append(el("p", { class: "small",
      text: `receptive field: size ${a.size.join("×")}, jump ${a.jump.join("×")}, start ${a.start.join(", ")}` +
        (unit.field.box ? `; this unit sees rows ${unit.field.box[0].join("–")}, columns ${unit.field.box[1].join("–")} of the input` : "") }));
  }
}

function convDetail(unit) {
  const [s0, s1] = unit.stride, [p0, p1] = unit.padding, [d0, d1] = unit.dilation;
  const parts = [el("p", { class: "small",
    text: `kernel ${unit.kernel_size.join("×")}, stride s=${s0}×${s1}, padding p=${p0}×${p1}, dilation δ=${d0}×${d1}; ` +
      `the window covers input rows ${unit.rows[0]}…${unit.rows[unit.rows.length - 1]} and columns ${unit.cols[0]}…${unit.cols[unit.cols.length - 1]} (grey: padding)` })];
  const channels = el("div", { class: "channels" });
  const shown = Math.min(unit.window.length, 4);
  const padded = (a, b) => (unit.rows[a] < 0 || unit.cols[b] < 0 ||
    unit.rows[a] >= explore.state.layers[unit.layer].input_shape[2] ||
    unit.cols[b] >= explore.state.layers[unit.layer].input_shape[3] ? "pad" : "");
  for (let c = 0; c < shown; c++) {
    channels.append(el("div", { class: "channel" },
      el("h4", { text: `c = ${unit.first_channel + c}: [X] window` }), grid(unit.window[c], padded),
      el("h4", { text: "[V] kernel" }), grid(unit.kernel[c]),
      el("h4", { text: `Σa Σb = ${fmt(unit.per_channel[c])}` })));
  }
  parts.push(channels);
  if (unit.window.length > shown) {
    parts.push(el("p", { class: "small", text: `${unit.window.length - shown} more input channels; their sums:` }));
  }
  const sums = unit.per_channel.map((s, c) => `${fmt(s)} (c=${unit.first_channel + c})`).join(" + ");
  parts.push(el("p", { class: "mono", text: `Σc = ${sums} + [b]d ${fmt(unit.bias)}` }));
  return parts;
}

function poolDetail(unit) {
  const winner = unit.winner || null;
  const table = grid(unit.window, (a, b) => (winner && a === winner[0] && b === winner[1] ? "win" : ""));
  const parts = [el("p", { class: "small",
    text: `window ${unit.kernel_size.join("×")}, stride ${unit.stride.join("×")}, padding ${unit.padding.join("×")}: input rows ${unit.rows.join(", ")}, columns ${unit.cols.join(", ")}` }), table];
  if (winner) {
    parts.push(el("p", { id: "pool-winner", class: "mono",
      text: `winner: the input at row ${unit.winner_input[0]}, column ${unit.winner_input[1]} (${fmt(unit.computed)})` }));
  } else {
    parts.push(el("p", { class: "mono", text: `sum / ${unit.divisor}` }));
  }
  return parts;
}

// ----- the sliding kernel -----------------------------------------------------------------------
async function openSlide(layer, d, c, i, j) {
  const slide = await getJSON("slide", { layer, d, c });
  explore.slide = slide;
  const [rows, cols] = slide.output_shape;
  slide.step = Math.min(rows * cols - 1, i * cols + j);
  const section = document.getElementById("slide");
  section.hidden = false;
  document.getElementById("slide-title").textContent =
    `${slide.name}: kernel (d=${d}, c=${c}) sliding with stride ${slide.stride.join("×")}, padding ${slide.padding.join("×")}`;
  const select = document.getElementById("slide-channel");
  select.replaceChildren();
  for (let k = slide.in_channels[0]; k < slide.in_channels[1]; k++) {
    select.append(el("option", { value: k, text: k }));
  }
  select.value = c;
  select.onchange = () => openSlide(layer, d, Number(select.value), Math.floor(slide.step / cols), slide.step % cols);
  drawSlide();
}

function drawSlide() {
  const slide = explore.slide;
  const [rows, cols] = slide.output_shape;
  const i = Math.floor(slide.step / cols), j = slide.step % cols;
  const input = slide.input, H = input.length, W = input[0].length;
  const [p0, p1] = slide.padding, [s0, s1] = slide.stride, [d0, d1] = slide.dilation;
  const [k0, k1] = slide.kernel_size;
  const cell = Math.max(2, Math.min(14, Math.floor(320 / Math.max(H, W))));
  const canvas = document.getElementById("slide-input");
  canvas.width = W * cell;
  canvas.height = H * cell;
  const ctx = canvas.getContext("2d");
  let lo = Infinity, hi = -Infinity;
  for (const row of input) for (const v of row) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  for (let r = 0; r < H; r++) {
    for (let q = 0; q < W; q++) {
      const pad = r < p0 || r >= H - p0 || q < p1 || q >= W - p1;
      const b = Math.round(((input[r][q] - lo) / (hi - lo || 1)) * 255);
      const [cr, cg, cb] = pad ? [200, 200, 200] : colour(b, lo, hi);
      ctx.fillStyle = `rgb(${cr},${cg},${cb})`;
      ctx.fillRect(q * cell, r * cell, cell, cell);
    }
  }
  ctx.strokeStyle = "#e4572e";
  ctx.lineWidth = 2;
  for (let a = 0; a < k0; a++) {
    for (let b = 0; b < k1; b++) {
      ctx.strokeRect((s1 * j + d1 * b) * cell, (s0 * i + d0 * a) * cell, cell, cell);
    }
  }
  // the output map, filled in up to this step
  const out = document.getElementById("slide-output");
  const ocell = Math.max(2, Math.min(14, Math.floor(320 / Math.max(rows, cols))));
  out.width = cols * ocell;
  out.height = rows * ocell;
  const octx = out.getContext("2d");
  octx.fillStyle = "#fff";
  octx.fillRect(0, 0, out.width, out.height);
  let olo = Infinity, ohi = -Infinity;
  for (const row of slide.partial) for (const v of row) { olo = Math.min(olo, v); ohi = Math.max(ohi, v); }
  for (let t = 0; t <= slide.step; t++) {
    const r = Math.floor(t / cols), q = t % cols;
    const b = Math.round(((slide.partial[r][q] - olo) / (ohi - olo || 1)) * 255);
    const [cr, cg, cb] = colour(b, olo, ohi);
    octx.fillStyle = `rgb(${cr},${cg},${cb})`;
    octx.fillRect(q * ocell, r * ocell, ocell, ocell);
  }
  octx.strokeStyle = "#e4572e";
  octx.lineWidth = 2;
  octx.strokeRect(j * ocell, i * ocell, ocell, ocell);
  const table = document.getElementById("slide-kernel");
  table.replaceChildren(...grid(slide.kernel).childNodes);
  document.getElementById("slide-text").textContent =
    `step ${slide.step + 1} of ${rows * cols}: output (i=${i}, j=${j}) ← window rows ${s0 * i - p0}…${s0 * i + d0 * (k0 - 1) - p0}, ` +
    `columns ${s1 * j - p1}…${s1 * j + d1 * (k1 - 1) - p1}; Σa Σb [V]·[X] = ${fmt(slide.partial[i][j])}`;
}

function stepSlide(delta) {
  const slide = explore.slide;
  if (!slide) return;
  const total = slide.output_shape[0] * slide.output_shape[1];
  slide.step = (slide.step + delta + total) % total;
  drawSlide();
}

// ----- new inputs -------------------------------------------------------------------------------
async function upload(blob, invert = false) {
  setStatus("computing…");
  try {
    const response = await fetch(api("image", invert ? { invert: 1 } : {}), { method: "POST", body: blob,
      headers: { "Content-Type": "application/octet-stream" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    render(body);
    setStatus("ready");
  } catch (error) {
    setStatus(error.message, true);
  }
}

function setUpDrawing() {
  const canvas = document.getElementById("draw-canvas");
  const ctx = canvas.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, 28, 28); };
  clear();
  let last = null;  // the pointer's previous point while a button is down: strokes, not dots
  const point = (event) => [(event.offsetX / canvas.clientWidth) * 28,
    (event.offsetY / canvas.clientHeight) * 28];
  const paint = (event) => {
    const [x, y] = point(event);
    const [x0, y0] = last || [x, y];
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 2.6;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x, y);
    ctx.stroke();
    last = [x, y];
  };
  canvas.addEventListener("pointerdown", (e) => { last = null; paint(e); });
  canvas.addEventListener("pointermove", (e) => { if (last) paint(e); });
  window.addEventListener("pointerup", () => { last = null; });
  document.getElementById("draw-clear").addEventListener("click", clear);
  document.getElementById("draw-use").addEventListener("click", () => {
    canvas.toBlob((blob) => upload(blob), "image/png");
  });
}

async function start() {
  document.getElementById("upload").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) upload(file, document.getElementById("invert").checked);
    event.target.value = "";  // the same file chosen again is a new upload
  });
  document.getElementById("slide-step").addEventListener("click", () => stepSlide(1));
  document.getElementById("slide-back").addEventListener("click", () => stepSlide(-1));
  document.getElementById("slide-play").addEventListener("click", (event) => {
    if (explore.timer) {
      clearInterval(explore.timer);
      explore.timer = null;
      event.target.textContent = "play";
    } else {
      explore.timer = setInterval(() => stepSlide(1), 150);
      event.target.textContent = "pause";
    }
  });
  setUpDrawing();
  try {
    render(await getJSON("state"));
    setStatus("ready");
  } catch (error) {
    setStatus(error.message, true);
  }
}

start();
