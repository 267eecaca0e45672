using System.Net;

namespace BuddySystem.Cli.Maps;

/// <summary>
/// The explorer page: one self-contained HTML file (no network) with the recording embedded as JSON and vanilla JS that
/// replays it. <c>#step=N</c> (or <c>?step=N</c>) in the URL opens it at step N, so a headless browser's DOM dump shows
/// that step.
/// </summary>
internal static class ExplorePage
{
    public static string Build(ExploreRecording recording)
    {
        ArgumentNullException.ThrowIfNull(recording);

        return Fill(Template, recording.Title, recording.ToJson(), speeds: [5, 30, 200, 1000], defaultSpeed: 30);
    }

    /// <summary>A page template with its title, its player controls and its recording's JSON filled in.</summary>
    /// <param name="template">The page, with <c>/*TITLE*/</c>, <c>/*CONTROLS*/</c> and <c>/*RECORDING*/</c> in it.</param>
    /// <param name="title">The page's title.</param>
    /// <param name="json">The recording.</param>
    /// <param name="speeds">The steps per second the speed menu offers.</param>
    /// <param name="defaultSpeed">The one selected at first.</param>
    internal static string Fill(string template, string title, string json, int[] speeds, int defaultSpeed)
    {
        string options = string.Concat(speeds.Select(speed => string.Create(CultureInfo.InvariantCulture, $"<option value=\"{speed}\"{(speed == defaultSpeed ? " selected" : "")}>{speed}/s</option>")));
        // Utf8JsonWriter escapes '<' and '>' by default, so the JSON cannot close its script element.
        return template
            .Replace("/*TITLE*/", WebUtility.HtmlEncode(title), StringComparison.Ordinal)
            .Replace("/*CONTROLS*/", Controls.Replace("/*SPEEDS*/", options, StringComparison.Ordinal), StringComparison.Ordinal)
            .Replace("/*RECORDING*/", json, StringComparison.Ordinal);
    }

    // The player both explorers share; their scripts drive these ids.
    private const string Controls = """
<div id="controls">
  <button id="first" title="first step">|◀</button>
  <button id="back" title="one step back">◀</button>
  <button id="play" title="play / pause">▶ play</button>
  <button id="fwd" title="one step forward">▶</button>
  <input id="scrubber" type="range" min="0" value="0" aria-label="step">
  <select id="speed" title="steps per second">/*SPEEDS*/</select>
</div>
""";

    private const string Template = """
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>buddy explore: /*TITLE*/</title>
<style>
body { font-family: "DejaVu Sans", Verdana, sans-serif; margin: 20px; color: #222; max-width: 1100px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 18px 0 4px; }
.muted { color: #666; font-size: 12px; }
#controls { display: flex; gap: 8px; align-items: center; margin: 12px 0 8px; }
#scrubber { flex: 1; }
button { font-size: 13px; min-width: 44px; }
#now { font-size: 14px; min-height: 2.6em; }
#op { font-family: "DejaVu Sans Mono", monospace; font-weight: bold; }
.stats { display: flex; gap: 28px; font-size: 12px; color: #444; margin: 6px 0; }
.stats b { font-size: 16px; color: #222; }
table { border-collapse: collapse; font-size: 11px; }
td, th { padding: 2px 5px; text-align: center; border-bottom: 1px solid #eee; }
th { text-align: right; font-weight: normal; color: #444; }
td.nonzero { font-weight: bold; }
.legend { font-size: 12px; margin: 4px 0; }
.legend span { display: inline-block; width: 12px; height: 12px; vertical-align: -2px; margin: 0 4px 0 14px; }
canvas { display: block; }
</style>
</head>
<body>
<h1>buddy explore: /*TITLE*/</h1>
<div class="muted">Every step replays one line of the trace on a real BuddyHeap (a = allocate id size align, f = free id, r = reallocate id size).
The memory map shows every block at its offset; the blocks the step created (by a split or a merge) flash yellow and stay outlined in black. Keys: ← → step, space play/pause.</div>
/*CONTROLS*/
<div id="now">step <b id="step" data-value="0">0</b> of <span id="steps"></span>: <span id="op"></span><br><span id="note" class="muted"></span></div>
<div class="stats">
  <div>live bytes (requested)<br><b id="live-bytes" data-value="0"></b></div>
  <div>allocated bytes (block sizes)<br><b id="allocated-bytes" data-value="0"></b></div>
  <div>largest free block<br><b id="largest-free" data-value="0"></b></div>
  <div>failed allocations<br><b id="failed" data-value="0"></b></div>
  <div>blocks<br><b id="blocks" data-value="0"></b></div>
</div>
<h2>Memory map</h2>
<div class="muted" id="map-caption"></div>
<div class="legend" id="legend"></div>
<canvas id="map"></canvas>
<h2>Free blocks per order (/proc/buddyinfo) and the unusable free index U(j)</h2>
<table id="buddyinfo" data-counts=""><thead></thead><tbody></tbody></table>
<div class="muted">U(j): the share of free bytes that cannot serve a request of order j because they lie in smaller blocks (Linux's unusable_index; 0 = all usable, 1 = none).</div>
<h2>Over time</h2>
<div class="muted">Top: U(j) per order (rows, order 0 at the bottom) and step (columns): white = 0, dark orange = 1. Bottom: live bytes (blue) and allocated bytes (red). The black line is the current step; click a chart to jump.</div>
<canvas id="chart-u"></canvas>
<canvas id="chart-bytes"></canvas>
<script id="recording" type="application/json">/*RECORDING*/</script>
<script>
(function () {
  "use strict";
  const R = JSON.parse(document.getElementById("recording").textContent);
  const N = R.ops.length, K = R.orders, W = 1024, LEFT = 70;
  const STATE_NAMES = ["free", "allocated", "cached (freed, parked in a lazy cache)", "unknown"];
  const $ = (id) => document.getElementById(id);

  // --- the heap: offset -> [order, state], moved by the recorded deltas ---
  const blocks = new Map();
  const put = (a) => { for (let i = 0; i < a.length; i += 3) blocks.set(a[i], [a[i + 1], a[i + 2]]); };
  const del = (a) => { for (let i = 0; i < a.length; i += 3) blocks.delete(a[i]); };
  put(R.initial);
  let cur = 0;
  function seek(n) {
    n = Math.max(0, Math.min(N, n | 0));
    while (cur < n) { del(R.removed[cur]); put(R.added[cur]); cur++; }
    while (cur > n) { cur--; del(R.added[cur]); put(R.removed[cur]); }
  }

  const size = (order) => R.minBlock * Math.pow(2, order);
  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let u = 0;
    while (u < units.length - 1 && n >= 1024 && n % 1024 === 0) { n /= 1024; u++; }
    return n.toLocaleString("en-US") + " " + units[u];
  }
  const grouped = (n) => n.toLocaleString("en-US");

  // --- memory map: a strip wrapped into rows of a power-of-two number of bytes ---
  const rows = Math.min(64, Math.max(1, R.span / (W * R.minBlock)));
  const rowBytes = R.span / rows, pxPerByte = W / rowBytes;
  const rowH = rows === 1 ? 48 : Math.max(5, Math.min(24, Math.floor(320 / rows))), GAP = 1;
  const map = $("map"), mapCtx = map.getContext("2d");
  map.width = LEFT + W; map.height = rows * (rowH + GAP) - GAP + 4;
  $("map-caption").textContent = (rows === 1 ? "one row" : rows + " rows of " + bytes(rowBytes) + ", read like text") +
    "; " + (pxPerByte > 1 ? "1 B = " + pxPerByte + " px" : "1 px = " + bytes(1 / pxPerByte)) +
    (1 / pxPerByte > R.minBlock ? " (blocks under a pixel are drawn one pixel wide)" : "") +
    "; shade = order (dark = small blocks, light = large).";
  $("legend").innerHTML = [1, 0, 2].map((s) => '<span style="background:' + R.colors[s][Math.floor(K / 3)] + '"></span>' + STATE_NAMES[s]).join("") +
    '<span style="background:#e6e6e6"></span>not managed<span style="background:#fff;outline:2px solid #000"></span>changed by this step';
  function segments(off, len, draw) {
    let c = off; const end = off + len;
    while (c < end) {
      const row = Math.floor(c / rowBytes), within = c % rowBytes, y = 2 + row * (rowH + GAP);
      if (within === 0 && end - c >= rowBytes) {
        const whole = Math.floor((end - c) / rowBytes);
        draw(LEFT, y, W, whole * (rowH + GAP) - GAP);
        c += whole * rowBytes;
        continue;
      }
      const segEnd = Math.min(end, (row + 1) * rowBytes);
      draw(LEFT + within * pxPerByte, y, (segEnd - c) * pxPerByte, rowH);
      c = segEnd;
    }
  }
  function drawMap() {
    const ctx = mapCtx;
    ctx.clearRect(0, 0, map.width, map.height);
    ctx.fillStyle = "#e6e6e6"; ctx.fillRect(LEFT, 2, W, map.height - 4);
    ctx.fillStyle = "#666"; ctx.font = "10px sans-serif"; ctx.textAlign = "right";
    const every = Math.ceil(11 / (rowH + GAP));
    for (let r = 0; r < rows; r += every) ctx.fillText("0x" + (r * rowBytes).toString(16), LEFT - 6, 2 + r * (rowH + GAP) + Math.min(rowH, 10) - 1);
    for (const [off, [order, state]] of blocks) {
      ctx.fillStyle = R.colors[state][order];
      segments(off, size(order), (x, y, w, h) => ctx.fillRect(x, y, w >= 3 ? w - 1 : Math.max(w, 1), h));
    }
    if (cur > 0) {
      const a = R.added[cur - 1];
      // A step forward flashes the blocks it created (the halves of a split, the block a merge made) for 400 ms.
      const age = performance.now() - flashStart, glow = flashStep === cur && age < 400 ? 0.7 * (1 - age / 400) : 0;
      ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
      ctx.fillStyle = "rgba(255, 214, 0, " + glow + ")";
      for (let i = 0; i < a.length; i += 3) segments(a[i], size(a[i + 1]), (x, y, w, h) => {
        if (glow > 0) ctx.fillRect(x, y, w, h);
        ctx.strokeRect(x + 1, y + 1, Math.max(w - 2, 1), Math.max(h - 2, 1));
      });
      if (glow > 0 && !flashQueued) { flashQueued = true; requestAnimationFrame(() => { flashQueued = false; drawMap(); }); }
    }
  }
  let flashStart = 0, flashStep = -1, flashQueued = false;

  // --- buddyinfo table ---
  const head = $("buddyinfo").tHead, body = $("buddyinfo").tBodies[0];
  head.innerHTML = "<tr><th>order j</th>" + Array.from({ length: K }, (_, j) => "<td>" + j + "</td>").join("") + "</tr>" +
    "<tr><th>block size</th>" + Array.from({ length: K }, (_, j) => "<td>" + bytes(size(j)) + "</td>").join("") + "</tr>";
  body.innerHTML = "<tr id='free-row'><th>free blocks</th>" + Array.from({ length: K }, (_, j) => "<td data-order='" + j + "'></td>").join("") + "</tr>" +
    "<tr id='u-row'><th>U(j)</th>" + Array.from({ length: K }, (_, j) => "<td data-order='" + j + "'></td>").join("") + "</tr>";
  const freeCells = body.rows[0].cells, uCells = body.rows[1].cells;

  // --- charts over time ---
  const chartU = $("chart-u"), chartBytes = $("chart-bytes");
  const cellH = Math.max(4, Math.min(10, Math.floor(160 / K)));
  chartU.width = LEFT + W; chartU.height = K * cellH + 8;
  chartBytes.width = LEFT + W; chartBytes.height = 110;
  const xOf = (step) => LEFT + (N === 0 ? 0 : step * (W - 1) / N);
  const uImage = (function () {
    const off = document.createElement("canvas"); off.width = chartU.width; off.height = chartU.height;
    const ctx = off.getContext("2d");
    ctx.fillStyle = "#666"; ctx.font = "10px sans-serif"; ctx.textAlign = "right";
    ctx.fillText("order " + (K - 1), LEFT - 6, 4 + cellH);
    ctx.fillText("order 0", LEFT - 6, 4 + K * cellH);
    for (let x = 0; x < W; x++) {
      const step = N === 0 ? 0 : Math.round(x * N / (W - 1));
      for (let j = 0; j < K; j++) {
        const v = R.unusable[step * K + j] / 1000;
        ctx.fillStyle = "rgb(" + Math.round(255 - v * (255 - 217)) + "," + Math.round(255 - v * (255 - 95)) + "," + Math.round(255 - v * 253) + ")";
        ctx.fillRect(LEFT + x, 4 + (K - 1 - j) * cellH, 1, cellH);
      }
    }
    return off;
  })();
  const maxBytes = Math.max(1, ...R.allocated, ...R.live);
  function drawCharts() {
    let ctx = chartU.getContext("2d");
    ctx.clearRect(0, 0, chartU.width, chartU.height);
    ctx.drawImage(uImage, 0, 0);
    ctx.fillStyle = "#000"; ctx.fillRect(xOf(cur) - 1, 0, 2, chartU.height);
    ctx = chartBytes.getContext("2d");
    ctx.clearRect(0, 0, chartBytes.width, chartBytes.height);
    ctx.fillStyle = "#666"; ctx.font = "10px sans-serif"; ctx.textAlign = "right";
    ctx.fillText(bytes(maxBytes), LEFT - 6, 12); ctx.fillText("0", LEFT - 6, 104);
    ctx.strokeStyle = "#ccc"; ctx.strokeRect(LEFT, 4, W, 100);
    for (const [series, color] of [[R.allocated, "#b2182b"], [R.live, "#2166ac"]]) {
      ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
      const stride = Math.max(1, Math.floor(N / W));
      for (let s = 0; s <= N; s += stride) { const y = 104 - series[s] / maxBytes * 100; s === 0 ? ctx.moveTo(xOf(s), y) : ctx.lineTo(xOf(s), y); }
      ctx.stroke();
    }
    ctx.fillStyle = "#000"; ctx.fillRect(xOf(cur) - 1, 0, 2, chartBytes.height);
  }
  for (const c of [chartU, chartBytes]) c.addEventListener("click", (e) => { const r = c.getBoundingClientRect(); show(Math.round((e.clientX - r.left - LEFT) / (W - 1) * N)); remember(); });

  // --- one render of the current step ---
  function setNumber(id, value, text) { const el = $(id); el.dataset.value = String(value); el.textContent = text; }
  function render() {
    setNumber("step", cur, grouped(cur));
    $("scrubber").value = String(cur);
    $("op").textContent = cur === 0 ? "(fresh heap, nothing allocated)" : R.ops[cur - 1];
    $("note").textContent = cur === 0 ? "" : R.notes[cur - 1];
    setNumber("live-bytes", R.live[cur], grouped(R.live[cur]) + " B");
    setNumber("allocated-bytes", R.allocated[cur], grouped(R.allocated[cur]) + " B");
    setNumber("largest-free", R.largest[cur], bytes(R.largest[cur]));
    setNumber("failed", R.failed[cur], grouped(R.failed[cur]));
    setNumber("blocks", blocks.size, grouped(blocks.size));
    const counts = new Array(K).fill(0);
    for (const [order, state] of blocks.values()) if (state === 0) counts[order]++;
    $("buddyinfo").dataset.counts = counts.join(" ");
    for (let j = 0; j < K; j++) {
      freeCells[j + 1].textContent = String(counts[j]);
      freeCells[j + 1].className = counts[j] ? "nonzero" : "";
      uCells[j + 1].textContent = (R.unusable[cur * K + j] / 1000).toFixed(2);
    }
    drawMap();
    drawCharts();
  }
  function show(n) {
    const from = cur;
    seek(n);
    if (cur === from + 1) { flashStep = cur; flashStart = performance.now(); }
    render();
  }
  function remember() { try { history.replaceState(null, "", "#step=" + cur); } catch (e) { /* file: URLs may refuse; the page still works */ } }

  // --- controls ---
  let playing = false, last = 0, carry = 0;
  function tick(now) {
    if (!playing) return;
    carry += (now - last) / 1000 * Number($("speed").value); last = now;
    const steps = Math.floor(carry); carry -= steps;
    if (steps > 0) show(cur + steps);
    if (cur >= N) { pause(); return; }
    requestAnimationFrame(tick);
  }
  function play() { if (cur >= N) show(0); playing = true; carry = 0; last = performance.now(); $("play").textContent = "❚❚ pause"; requestAnimationFrame(tick); }
  function pause() { playing = false; $("play").textContent = "▶ play"; remember(); }
  $("play").addEventListener("click", () => (playing ? pause() : play()));
  $("first").addEventListener("click", () => { pause(); show(0); remember(); });
  $("back").addEventListener("click", () => { pause(); show(cur - 1); remember(); });
  $("fwd").addEventListener("click", () => { pause(); show(cur + 1); remember(); });
  $("scrubber").max = String(N);
  $("scrubber").addEventListener("input", (e) => { pause(); show(Number(e.target.value)); });
  $("scrubber").addEventListener("change", remember);
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "SELECT") return;
    if (e.key === "ArrowRight") { pause(); show(cur + 1); remember(); e.preventDefault(); }
    else if (e.key === "ArrowLeft") { pause(); show(cur - 1); remember(); e.preventDefault(); }
    else if (e.key === " ") { playing ? pause() : play(); e.preventDefault(); }
  });
  window.addEventListener("hashchange", () => { const m = /step=(\d+)/.exec(location.hash); if (m) show(Number(m[1])); });
  $("steps").textContent = grouped(N);
  const wanted = /[#?&]step=(\d+)/.exec(location.hash + location.search);
  show(wanted ? Number(wanted[1]) : 0);
})();
</script>
</body>
</html>
""";
}
