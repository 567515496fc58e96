// nexttoken explorer: the page over the JSON API of `nexttoken serve`. Plain JavaScript,
// charts drawn as SVG (and one canvas heat map) by the functions below; no network beyond
// this server.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const state = { models: [], model: null, history: [], distSeq: 0, steps: null, timer: null };

// --- talking to the server -------------------------------------------------------------------

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

function status(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function guarded(work) {
  try {
    status("working…");
    await work();
    if (!$("status").classList.contains("error")) status("");
  } catch (e) {
    status(e.message, true);
  }
}

// --- SVG helpers -------------------------------------------------------------------------------

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function clear(svg) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const box = svg.getBoundingClientRect();
  const w = Math.max(box.width, 300), h = Math.max(box.height, 160);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  return { w, h };
}

function fmt(p) {
  return p >= 0.0995 ? p.toFixed(3) : p >= 0.00995 ? p.toFixed(4) : p.toExponential(2);
}

// Width in px of a label in the charts' 11px font (an estimate; the labels are short).
const labelWidth = (label) => 6.2 * Math.min(label.length, 14) + 4;
// Rotated labels (-50 degrees) need this much room between their anchors not to touch.
const ROTATED_GAP = 15;

// Grouped bars: one group per label, one bar per series ({values, cls}); onClick(i) per group.
// highlight: the index of a group drawn in the "chosen" colour, whose label is always shown.
// Labels are thinned to every k-th so that none overlaps another, whatever the chart's width.
function barChart(svg, labels, series, { onClick = null, yMax = null, rotate = null, highlight = null } = {}) {
  const { w, h } = clear(svg);
  const m0 = { l: 44, r: 8 };
  const gw = (w - m0.l - m0.r) / Math.max(1, labels.length);
  rotate = rotate ?? labels.some((l) => labelWidth(l) > gw);
  const m = { ...m0, t: 8, b: rotate ? 70 : 28 };
  const iw = w - m.l - m.r, ih = h - m.t - m.b;
  const top = yMax ?? Math.max(1e-9, ...series.flatMap((s) => s.values));
  for (let k = 0; k <= 4; k++) {
    const y = m.t + ih - (ih * k) / 4;
    el("line", { x1: m.l, x2: w - m.r, y1: y, y2: y, class: "grid-line" }, svg);
    el("text", { x: m.l - 4, y: y + 3, "text-anchor": "end" }, svg).textContent = (top * k / 4).toFixed(2);
  }
  const bw = (gw * 0.8) / series.length;
  const room = rotate ? ROTATED_GAP : Math.max(...labels.map(labelWidth));
  const every = Math.max(1, Math.ceil(room / gw));
  const labelled = (i) => i === highlight
    || (i % every === 0 && (highlight === null || Math.abs(i - highlight) >= every));
  labels.forEach((label, i) => {
    const g = el("g", { class: onClick ? "bar-group" : "", "data-index": i }, svg);
    series.forEach((s, j) => {
      const v = s.values[i] || 0, bh = (ih * v) / top;
      const rect = el("rect", {
        x: m.l + i * gw + gw * 0.1 + j * bw, y: m.t + ih - bh, width: Math.max(bw - 1, 1), height: bh,
        class: i === highlight ? "bar-chosen" : s.cls,
      }, g);
      el("title", {}, rect).textContent = `${label}: ${fmt(v)}`;
    });
    if (labelled(i)) {
      const x = m.l + i * gw + gw / 2, y = m.t + ih + 12;
      const t = el("text", rotate
        ? { x, y, transform: `rotate(-50 ${x} ${y})`, "text-anchor": "end", class: "x-label" }
        : { x, y, "text-anchor": "middle", class: "x-label" }, svg);
      if (i === highlight) t.classList.add("chosen-label");
      t.textContent = label.length > 14 ? label.slice(0, 13) + "…" : label;
    }
    if (onClick) g.addEventListener("click", () => onClick(i));
  });
  el("line", { x1: m.l, x2: w - m.r, y1: m.t + ih, y2: m.t + ih, class: "axis" }, svg);
}

// Line chart frame over x in [x0, x1] and y in [y0, y1]; returns the scale functions.
function frame(svg, x0, x1, y0, y1) {
  const { w, h } = clear(svg);
  const m = { l: 48, r: 10, t: 10, b: 24 };
  const pad = (y1 - y0) * 0.05 || 1;
  y0 -= pad; y1 += pad;
  const sx = (x) => m.l + ((x - x0) / Math.max(1e-9, x1 - x0)) * (w - m.l - m.r);
  const sy = (y) => m.t + (1 - (y - y0) / (y1 - y0)) * (h - m.t - m.b);
  const decimals = Math.max(0, Math.min(8, 2 - Math.floor(Math.log10(y1 - y0))));
  for (let k = 0; k <= 4; k++) {
    const v = y0 + ((y1 - y0) * k) / 4;
    el("line", { x1: m.l, x2: w - m.r, y1: sy(v), y2: sy(v), class: "grid-line" }, svg);
    el("text", { x: m.l - 4, y: sy(v) + 3, "text-anchor": "end" }, svg).textContent = v.toFixed(decimals);
  }
  for (let k = 0; k <= 5; k++) {
    const v = Math.round(x0 + ((x1 - x0) * k) / 5);
    el("text", { x: sx(v), y: h - 6, "text-anchor": "middle" }, svg).textContent = v;
  }
  return { sx, sy };
}

function linePath(xs, ys, sx, sy) {
  let d = "", pen = false;
  xs.forEach((x, i) => {
    const y = ys[i];
    if (y === null || y === undefined || Number.isNaN(y)) { pen = false; return; }
    d += `${pen ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`;
    pen = true;
  });
  return d;
}

const range = (a, n) => Array.from({ length: n }, (_, i) => a + i);
const finite = (v) => v.filter((x) => x !== null && Number.isFinite(x));

// --- models ----------------------------------------------------------------------------------

async function loadModels() {
  const data = await api("/api/models");
  state.models = data.models;
  const select = $("model");
  select.innerHTML = "";
  for (const m of data.models) {
    const opt = document.createElement("option");
    opt.value = m.name;
    opt.textContent = `${m.name} (${m.kind}${m.objective === "mlm" ? ", masked LM" : ""})`;
    select.appendChild(opt);
  }
  $("family").innerHTML = data.families.map((f) => `<option>${f}</option>`).join("");
  const text = data.models.find((m) => m.kind === "text" && m.objective === "gpt");
  select.value = (text || data.models[0] || {}).name;
  await pickModel();
}

async function pickModel() {
  const m = state.models.find((x) => x.name === $("model").value);
  state.model = m;
  if (!m) return;
  const params = m.parameters >= 1e6 ? `${(m.parameters / 1e6).toFixed(1)}M` : `${(m.parameters / 1e3).toFixed(0)}k`;
  $("model-info").textContent = `${params} parameters, ${m.n_layer} layers, width ${m.n_embd}, ` +
    `context ${m.context_length}, ${m.vocab_size} tokens${m.bins ? ` (${m.bins} value bins)` : ""}`;
  const causal = m.objective === "gpt";
  $("token-panel").hidden = !causal;
  $("signal-panel").hidden = !(causal && m.kind === "signal");
  $("mlm-panel").hidden = causal;
  if (!causal) return;
  state.history = [];
  if (m.kind === "signal") {
    $("prompt-hint").textContent = "comma-separated numbers (a signal model reads values)";
    await drawOscillator();
    $("prompt").value = $("values").value.split(",").slice(-48).join(",");
    runForecast(); // the fan chart appears without a click
  } else {
    $("prompt-hint").textContent = "text";
    if (!$("prompt").value || /^[-\d.,\s]+$/.test($("prompt").value)) $("prompt").value = "See you";
  }
  await refresh();
}

// --- the next-token panel --------------------------------------------------------------------

function settings() {
  const topK = parseInt($("top-k").value, 10), topP = parseFloat($("top-p").value);
  const minP = parseFloat($("min-p").value), rep = parseFloat($("rep").value);
  return {
    temperature: parseFloat($("temperature").value),
    top_k: topK > 0 ? topK : null,
    top_p: topP < 1 ? topP : null,
    min_p: minP > 0 ? minP : null,
    repetition_penalty: rep !== 1 && rep > 0 ? rep : null,
  };
}

function showSettings() {
  const s = settings();
  $("temperature-out").textContent = s.temperature.toFixed(2) + (s.temperature === 0 ? " (greedy)" : "");
  $("top-p-out").textContent = s.top_p === null ? "off" : s.top_p.toFixed(2);
  $("min-p-out").textContent = s.min_p === null ? "off" : s.min_p.toFixed(2);
}

async function refresh() {
  if (!state.model || state.model.objective !== "gpt") return;
  showSettings();
  const seq = ++state.distSeq;
  const body = { model: state.model.name, prompt: $("prompt").value, top: parseInt($("rows").value, 10) || 10, ...settings() };
  let data;
  try {
    data = await api("/api/distribution", body);
  } catch (e) {
    if (seq === state.distSeq) status(e.message, true);
    return;
  }
  if (seq !== state.distSeq) return; // a newer request is on its way
  status("");
  renderDistribution(data);
}

function renderDistribution(data) {
  $("chips").innerHTML = "";
  for (const t of data.prompt_tokens) {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.textContent = t.token.startsWith('"') ? JSON.parse(t.token) : t.token;
    chip.title = `id ${t.id}: ${t.token}`;
    $("chips").appendChild(chip);
  }
  const rows = data.raw.top;
  const labels = rows.map((r) => r.token);
  barChart($("bars"), labels, [
    { values: rows.map((r) => r.probability), cls: "bar-raw" },
    { values: rows.map((r) => r.filtered), cls: "bar-kept" },
  ], { onClick: (i) => append(rows[i].text) });
  fillTable($("table"), rows, true);
  $("summary").textContent =
    `total probability of the ${rows.length} rows shown: ${data.raw.total.toFixed(4)} · ` +
    `entropy ${data.raw.entropy.toFixed(3)} nats · after the filters ${data.filtered.kept} ` +
    `token(s) can be drawn, entropy ${data.filtered.entropy.toFixed(3)} nats`;
  const lastOnly = $("last-only").checked;
  $("last-box").hidden = !lastOnly;
  if (lastOnly) {
    const last = data.last_token.top;
    barChart($("bars-last"), last.map((r) => r.token), [{ values: last.map((r) => r.probability), cls: "bar-raw" }],
      { onClick: (i) => append(last[i].text) });
    fillTable($("table-last"), last, false);
    $("summary-last").textContent = `total of the rows shown: ${data.last_token.total.toFixed(4)} · entropy ${data.last_token.entropy.toFixed(3)} nats`;
  }
}

function fillTable(table, rows, withFiltered) {
  const body = table.querySelector("tbody");
  body.innerHTML = "";
  for (const r of rows) {
    const tr = document.createElement("tr");
    const cells = [r.rank, r.token, r.id, fmt(r.probability), r.cumulative.toFixed(4)];
    if (withFiltered) cells.push(fmt(r.filtered));
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    if (withFiltered && r.filtered === 0) tr.classList.add("removed");
    tr.title = "click to append this token";
    tr.addEventListener("click", () => append(r.text));
    body.appendChild(tr);
  }
}

function append(text) {
  state.history.push($("prompt").value);
  const p = $("prompt").value;
  if (state.model.kind === "signal") {
    $("prompt").value = p.trim() === "" ? text : `${p.replace(/,\s*$/, "")},${text}`;
  } else {
    $("prompt").value = p + text;
  }
  refresh();
}

async function step(kind) {
  const n = kind === "generate" ? parseInt($("generate-n").value, 10) || 1 : 1;
  const s = settings();
  const body = {
    model: state.model.name, prompt: $("prompt").value, max_new_tokens: n,
    seed: parseInt($("seed").value, 10) || 0, last_token_only: $("last-only").checked, ...s,
  };
  if (kind === "greedy") body.greedy = true;
  await guarded(async () => {
    const out = await api("/api/generate", body);
    if (kind !== "greedy") $("seed").value = (parseInt($("seed").value, 10) || 0) + 1;
    append(state.model.kind === "signal" ? out.values.map((v) => +v.toPrecision(6)).join(",") : out.text);
  });
}

async function frequencies() {
  await guarded(async () => {
    const n = parseInt($("freq-n").value, 10) || 1000;
    const data = await api("/api/frequencies", {
      model: state.model.name, prompt: $("prompt").value, n, top: parseInt($("rows").value, 10) || 10,
      seed: parseInt($("seed").value, 10) || 0, ...settings(),
    });
    const rows = data.top;
    barChart($("freq"), rows.map((r) => r.token), [
      { values: rows.map((r) => r.probability), cls: "bar-kept" },
      { values: rows.map((r) => r.frequency), cls: "bar-drawn" },
    ]);
    $("freq-summary").textContent =
      `${data.n} draws; drawn outside the rows shown: ${(100 * data.other.frequency).toFixed(1)}% ` +
      `(their probability ${(100 * data.other.probability).toFixed(1)}%)`;
  });
}

// --- the signal panel ------------------------------------------------------------------------

function parseValues(text) {
  return text.split(/[,\s;]+/).filter((t) => t !== "").map((t) => (t.toLowerCase() === "nan" ? null : Number(t)));
}

async function drawOscillator() {
  const q = new URLSearchParams({ family: $("family").value || "single_sine", seed: $("family-seed").value, length: $("family-length").value });
  const data = await api(`/api/oscillator?${q}`);
  $("values").value = data.values.map((v) => +v.toFixed(4)).join(",");
  clearSteps("the series changed");
}

function sourceBody() {
  const source = document.querySelector("input[name=source]:checked").value;
  if (source === "csv") {
    if (!state.csvText) throw new Error("choose a CSV file first");
    return { csv: state.csvText };
  }
  const values = parseValues($("values").value);
  if (values.some((v) => v !== null && Number.isNaN(v))) throw new Error("the numbers box holds something that is not a number");
  return { series: values };
}

function forecastSettings() {
  return {
    model: state.model.name,
    horizon: parseInt($("horizon").value, 10) || 24,
    temperature: parseFloat($("f-temperature").value),
    seed: parseInt($("f-seed").value, 10) || 0,
  };
}

async function runForecast() {
  await guarded(async () => {
    const body = { ...forecastSettings(), ...sourceBody(), samples: parseInt($("samples").value, 10) || 20, paths: true, trend: $("trend").value };
    const season = $("season").value.trim();
    if (season) body.season = season.split(",").map((m) => Number(m.trim()));  // the server checks each
    const data = await api("/api/forecast", body);
    clearSteps("a new forecast was made");
    const s = data.series[0];
    drawFan($("fan"), s);
    $("forecast-summary").textContent =
      `${s.name}: ${s.samples.length} sample paths of ${s.median.length} steps` +
      (data.series.length > 1 ? ` (first of ${data.series.length} series in the file)` : "") +
      `; median at the last step ${s.median[s.median.length - 1].toPrecision(4)}, ` +
      `10–90% band [${s.q10[s.q10.length - 1].toPrecision(4)}, ${s.q90[s.q90.length - 1].toPrecision(4)}]` +
      (s.trend_removed ? "; its straight-line trend was taken out before the model forecast it, then added back" : "") +
      (s.season_removed ? "; its average seasonal profile was taken out before the model forecast it, then added back" : "");
  });
}

function drawFan(svg, s) {
  const T = s.context.length, H = s.median.length;
  const all = finite([...s.context, ...s.q10, ...s.q90, ...s.samples.flat()]);
  const { sx, sy } = frame(svg, 0, T + H - 1, Math.min(...all), Math.max(...all));
  // every forecast line starts at the last observed value, so it reads as a continuation
  const last = finite(s.context).slice(-1);
  const from = (v) => (last.length && s.context[T - 1] !== null ? [s.context[T - 1], ...v] : v);
  const future = last.length && s.context[T - 1] !== null ? range(T - 1, H + 1) : range(T, H);
  const hi = from(s.q90), lo = from(s.q10);
  const band = future.map((x, i) => `${sx(x)},${sy(hi[i])}`).concat(
    future.slice().reverse().map((x, i) => `${sx(x)},${sy(lo[lo.length - 1 - i])}`));
  el("polygon", { points: band.join(" "), class: "band" }, svg);
  for (const p of s.samples) el("path", { d: linePath(future, from(p), sx, sy), class: "line-path" }, svg);
  el("path", { d: linePath(range(0, T), s.context, sx, sy), class: "line-context" }, svg);
  el("path", { d: linePath(future, from(s.median), sx, sy), class: "line-median" }, svg);
}

// The bins worth showing: those with visible mass at some step, and the drawn ones, padded.
function binWindow(d) {
  let lo = Infinity, hi = -Infinity;
  d.probs.forEach((row, t) => {
    const top = Math.max(...row);
    row.forEach((p, b) => { if (p >= top * 1e-3) { lo = Math.min(lo, b); hi = Math.max(hi, b); } });
    lo = Math.min(lo, d.chosen[t]); hi = Math.max(hi, d.chosen[t]);
  });
  const pad = Math.max(2, Math.round((hi - lo) * 0.1));
  return [Math.max(0, lo - pad), Math.min(d.bin_values.length - 1, hi + pad)];
}

// A stepped path belongs to the series and settings it was drawn for: when those change, the
// view is cleared (not left showing another series) until the next "sample a path".
function clearSteps(reason) {
  if (!state.steps) return;
  if (state.timer) play();
  state.steps = null;
  for (const id of ["step", "step-prev", "step-next", "step-play"]) $(id).disabled = true;
  clear($("step-chart"));
  clear($("step-bars"));
  const canvas = $("heat");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  $("step-label").textContent = `${reason}: press "sample a path" to step through it`;
}

async function samplePath() {
  await guarded(async () => {
    const data = await api("/api/steps", { ...forecastSettings(), ...sourceBody() });
    data.window = binWindow(data);
    state.steps = data;
    const slider = $("step");
    slider.max = data.path.length;
    slider.value = 1;
    for (const id of ["step", "step-prev", "step-next", "step-play"]) $(id).disabled = false;
    drawHeat();
    showStep(1);
  });
}

function showStep(k) {
  const d = state.steps;
  if (!d) return;
  k = Math.max(1, Math.min(d.path.length, k));
  $("step").value = k;
  const T = d.context.length, H = d.path.length;
  const shown = finite([...d.context, ...d.path]);
  const { sx, sy } = frame($("step-chart"), 0, T + H - 1, Math.min(...shown), Math.max(...shown));
  el("path", { d: linePath(range(0, T), d.context, sx, sy), class: "line-context" }, $("step-chart"));
  el("path", { d: linePath(range(T - 1, k + 1), [d.context[T - 1], ...d.path.slice(0, k)], sx, sy), class: "line-step" }, $("step-chart"));
  const probs = d.probs[k - 1];
  const [lo, hi] = d.window;
  const shownBins = range(lo, hi - lo + 1);
  barChart($("step-bars"), shownBins.map((b) => d.bin_values[b].toPrecision(3)),
    [{ values: shownBins.map((b) => probs[b]), cls: "bar-kept" }],
    { rotate: true, highlight: d.chosen[k - 1] - lo });
  const best = probs.indexOf(Math.max(...probs));
  $("step-label").textContent =
    `step ${k} of ${H}: drew ${d.path[k - 1].toPrecision(4)} (p = ${fmt(probs[d.chosen[k - 1]])}); ` +
    `most probable ${d.bin_values[best].toPrecision(4)} (p = ${fmt(probs[best])})`;
  drawHeat(k);
}

function drawHeat(current = null) {
  const d = state.steps, canvas = $("heat"), ctx = canvas.getContext("2d");
  const [lo, hi] = d.window;
  const H = d.probs.length, B = hi - lo + 1;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const cw = canvas.width / H, ch = canvas.height / B;
  const yOf = (b) => canvas.height - (b - lo + 1) * ch;
  for (let t = 0; t < H; t++) {
    const row = d.probs[t], top = Math.max(...row) || 1;
    for (let b = lo; b <= hi; b++) {
      const a = Math.sqrt(row[b] / top);
      if (a < 0.02) continue;
      ctx.fillStyle = `rgba(47,111,223,${a.toFixed(3)})`;
      ctx.fillRect(t * cw, yOf(b), Math.ceil(cw), Math.ceil(ch));
    }
  }
  ctx.fillStyle = "#f08c2e";
  d.chosen.forEach((b, t) => ctx.fillRect(t * cw + cw * 0.3, yOf(b) + ch * 0.3, Math.max(2, cw * 0.4), Math.max(2, ch * 0.4)));
  if (current) {
    ctx.strokeStyle = "#1d2330";
    ctx.strokeRect((current - 1) * cw, 0, cw, canvas.height);
  }
  // the value range, on a white patch so that neither the cells nor the cursor cover it
  ctx.font = "12px system-ui, sans-serif";
  for (const [text, y] of [[d.bin_values[hi].toPrecision(3), 14], [d.bin_values[lo].toPrecision(3), canvas.height - 4]]) {
    const w = ctx.measureText(text).width;
    ctx.fillStyle = "rgba(255,255,255,0.85)";
    ctx.fillRect(2, y - 12, w + 4, 15);
    ctx.fillStyle = "#1d2330";
    ctx.fillText(text, 4, y);
  }
}

function play() {
  if (state.timer) { clearInterval(state.timer); state.timer = null; $("step-play").textContent = "play"; return; }
  $("step-play").textContent = "pause";
  state.timer = setInterval(() => {
    const k = parseInt($("step").value, 10);
    if (k >= state.steps.path.length) { play(); return; }
    showStep(k + 1);
  }, 250);
}

// --- wiring ----------------------------------------------------------------------------------

function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

function wire() {
  const later = debounce(refresh, 120);
  $("model").addEventListener("change", () => guarded(pickModel));
  $("prompt").addEventListener("input", debounce(refresh, 300));
  for (const id of ["temperature", "top-k", "top-p", "min-p", "rep", "rows"]) {
    $(id).addEventListener("input", () => { showSettings(); later(); });
  }
  $("last-only").addEventListener("change", refresh);
  $("greedy-btn").addEventListener("click", () => step("greedy"));
  $("sample-btn").addEventListener("click", () => step("sample"));
  $("generate-btn").addEventListener("click", () => step("generate"));
  $("undo-btn").addEventListener("click", () => {
    if (state.history.length) { $("prompt").value = state.history.pop(); refresh(); }
  });
  $("freq-btn").addEventListener("click", frequencies);
  $("forecast-btn").addEventListener("click", runForecast);
  $("steps-btn").addEventListener("click", samplePath);
  $("step").addEventListener("input", () => showStep(parseInt($("step").value, 10)));
  $("step-prev").addEventListener("click", () => showStep(parseInt($("step").value, 10) - 1));
  $("step-next").addEventListener("click", () => showStep(parseInt($("step").value, 10) + 1));
  $("step-play").addEventListener("click", play);
  for (const id of ["family", "family-seed", "family-length"]) {
    $(id).addEventListener("change", () => {
      document.querySelector("input[name=source][value=family]").checked = true;
      guarded(drawOscillator);
    });
  }
  $("values").addEventListener("input", () => {
    document.querySelector("input[name=source][value=numbers]").checked = true;
    clearSteps("the series changed");
  });
  $("csv-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    if (file.size > 8 * 1024 * 1024) { status(`${file.name} is over 8 MB; use a shorter file`, true); return; }
    state.csvText = await file.text();
    document.querySelector("input[name=source][value=csv]").checked = true;
    clearSteps("the series changed");
    status(`${file.name}: ${state.csvText.split("\n").length - 1} lines read`);
  });
}

wire();
guarded(loadModels);
