namespace BuddySystem.Cli.Maps;

/// <summary>
/// The tree explorer page: the seed's segment tree (<see cref="BuddyTree"/>) node by node, one self-contained HTML file
/// (no network) with the <see cref="TreeRecording"/> embedded as JSON and vanilla JS that replays it. Each step shows the
/// path the allocation descended, the chosen node, and every ancestor whose value changed with its rule (max, or merge).
/// <c>#step=N</c> opens it at step N, so a headless browser's DOM dump shows that step.
/// </summary>
internal static class TreeExplorePage
{
    public static string Build(TreeRecording recording)
    {
        ArgumentNullException.ThrowIfNull(recording);

        return ExplorePage.Fill(Template, recording.Title, recording.ToJson(), speeds: [1, 5, 30, 200], defaultSpeed: 5);
    }

    private const string Template = """
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>buddy explore (tree): /*TITLE*/</title>
<style>
body { font-family: "DejaVu Sans", Verdana, sans-serif; margin: 20px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 18px 0 4px; }
.muted { color: #666; font-size: 12px; max-width: 1100px; }
#controls { display: flex; gap: 8px; align-items: center; margin: 12px 0 8px; max-width: 1100px; }
#scrubber { flex: 1; }
button { font-size: 13px; min-width: 44px; }
#op { font-family: "DejaVu Sans Mono", monospace; font-weight: bold; }
#explain { font-size: 13px; min-height: 4.5em; max-width: 1100px; line-height: 1.5; }
#explain code { font-family: "DejaVu Sans Mono", monospace; background: #f4f4f4; padding: 0 3px; }
#tree-box { overflow-x: auto; border: 1px solid #ddd; }
svg text { font-family: "DejaVu Sans", Verdana, sans-serif; }
table { border-collapse: collapse; font-size: 11px; }
td, th { padding: 2px 5px; text-align: center; border-bottom: 1px solid #eee; }
th { text-align: right; font-weight: normal; color: #444; }
.legend span { display: inline-block; width: 12px; height: 12px; vertical-align: -2px; margin: 0 4px 0 14px; }
.legend { font-size: 12px; }
</style>
</head>
<body>
<h1>buddy explore (tree): /*TITLE*/</h1>
<div class="muted">The seed's segment tree: every node stores the largest block still free in its range, as
<code>order + 1</code> in one byte (0 = none; the seed stores log2 of the bytes). An allocation descends from the root
(<span id="placement"></span>) to a node whose range is free while neither child alone suffices, sets it to 0, and walks
back up setting each parent to <b>max</b>(left, right), or to its own whole size when both children are wholly free:
the <b>merge</b> (the seed's <code>ls.m + rs.m</code>). A free restores the node and walks up the same way.
Keys: ← → step, space play/pause.</div>
/*CONTROLS*/
<div>step <b id="step" data-value="0">0</b> of <span id="steps"></span>: <span id="op"></span></div>
<div id="explain"></div>
<div class="legend"><span style="background:#7fc97f"></span>wholly free<span style="background:#d9f0d3"></span>partly free
<span style="background:#e34a33"></span>allocated (the chosen node)<span style="background:#bdbdbd"></span>nothing free below<span style="background:#f6d5cf"></span>inside an allocated block (stale values)
<span style="background:#fff;outline:3px solid #ff7f00"></span>descended path<span style="background:#fff;outline:3px solid #1f78b4"></span>changed on the way back up</div>
<div id="tree-box"><svg id="tree" xmlns="http://www.w3.org/2000/svg"></svg></div>
<div class="muted" id="tree-caption"></div>
<span id="chosen" data-value="0"></span><span id="path" data-nodes=""></span><span id="path-values" data-values=""></span>
<h2>Free blocks per order (/proc/buddyinfo)</h2>
<table id="buddyinfo" data-counts=""><thead></thead><tbody></tbody></table>
<script id="recording" type="application/json">/*RECORDING*/</script>
<script>
(function () {
  "use strict";
  const R = JSON.parse(document.getElementById("recording").textContent);
  const N = R.ops.length, K = R.rootOrder, LEAVES = Math.pow(2, K);
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const RULES = ["taken (set to 0)", "restored", "max", "merge"];

  const bin = atob(R.nodes);
  const nodes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) nodes[i] = bin.charCodeAt(i);

  // Actions are [allocate, node, order, offset, (node, before, after, rule)...]; steps move the node bytes both ways.
  let cur = 0;
  function apply(step, forward) {
    const actions = R.steps[step];
    const list = forward ? actions : actions.slice().reverse();
    for (const a of list) {
      for (let i = 4; i < a.length; i += 4) nodes[a[i]] = forward ? a[i + 2] : a[i + 1];
    }
  }
  function seek(n) {
    n = Math.max(0, Math.min(N, n | 0));
    while (cur < n) { apply(cur, true); cur++; }
    while (cur > n) { cur--; apply(cur, false); }
  }

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let u = 0;
    while (u < units.length - 1 && n >= 1024 && n % 1024 === 0) { n /= 1024; u++; }
    return n.toLocaleString("en-US") + " " + units[u];
  }
  const sizeOf = (value) => value === 0 ? "none" : bytes(R.minBlock * Math.pow(2, value - 1));
  const orderOf = (index) => K - Math.floor(Math.log2(index));
  const hex = (n) => "0x" + n.toString(16);
  const offsetOf = (index) => (index - Math.pow(2, K - orderOf(index))) * R.minBlock * Math.pow(2, orderOf(index));

  // An allocated node holds 0 while its children keep the values they had when it was free: they are inside its block.
  const allocatedNode = (index) => nodes[index] === 0 && offsetOf(index) < R.capacity &&
    (orderOf(index) === 0 || (nodes[2 * index] === orderOf(index) && nodes[2 * index + 1] === orderOf(index)));
  function inside(index) {
    for (let i = Math.floor(index / 2); i >= 1; i = Math.floor(i / 2)) if (allocatedNode(i)) return true;
    return false;
  }
  function color(index) {
    const order = orderOf(index), v = nodes[index];
    if (offsetOf(index) >= R.capacity) return "#e6e6e6";
    if (inside(index)) return "#f6d5cf";
    if (v === order + 1) return "#7fc97f";
    if (v === 0) return allocatedNode(index) ? "#e34a33" : "#bdbdbd";
    return "#d9f0d3";
  }

  // Layout: one row per level; levels whose nodes are wide enough get a labelled box, deeper ones thin bars,
  // and the levels under a pixel are left out (the leaf row always shows, as the memory strip).
  const W = Math.max(960, Math.min(1800, LEAVES * 26));
  const LABEL_W = 24, BOX_H = 34, BAR_H = 8, GAP = 10;
  const levels = [];
  let y = 8;
  for (let depth = 0; depth <= K; depth++) {
    const width = W / Math.pow(2, depth);
    const kind = width >= LABEL_W ? "box" : width >= 1 ? "bar" : (depth === K ? "strip" : null);
    if (!kind) continue;
    levels.push({ depth, width, kind, y });
    y += (kind === "box" ? BOX_H : BAR_H) + (kind === "box" ? GAP + 12 : 2);
  }
  const svg = $("tree");
  svg.setAttribute("width", W + 20); svg.setAttribute("height", y + 10);
  const shown = new Map();
  for (const level of levels) {
    const count = Math.pow(2, level.depth);
    const step = level.kind === "strip" ? Math.ceil(count / W) : 1;
    for (let j = 0; j < count; j += step) {
      const index = count + j;
      const g = document.createElementNS(SVG, "g");
      g.setAttribute("data-node", index);
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", 10 + j * level.width + 1); rect.setAttribute("y", level.y);
      rect.setAttribute("width", Math.max(level.width * step - 2, 1)); rect.setAttribute("height", level.kind === "box" ? BOX_H : BAR_H);
      rect.setAttribute("rx", level.kind === "box" ? 3 : 0);
      g.appendChild(rect);
      let label = null, tag = null;
      if (level.kind === "box") {
        label = document.createElementNS(SVG, "text");
        label.setAttribute("x", 10 + (j + 0.5) * level.width); label.setAttribute("y", level.y + 14);
        label.setAttribute("text-anchor", "middle"); label.setAttribute("font-size", level.width >= 60 ? 12 : 10);
        g.appendChild(label);
        tag = document.createElementNS(SVG, "text");
        tag.setAttribute("x", 10 + (j + 0.5) * level.width); tag.setAttribute("y", level.y + BOX_H + 11);
        tag.setAttribute("text-anchor", "middle"); tag.setAttribute("font-size", 10); tag.setAttribute("fill", "#1f78b4");
        g.appendChild(tag);
      }
      const title = document.createElementNS(SVG, "title");
      g.appendChild(title);
      svg.appendChild(g);
      shown.set(index, { g, rect, label, tag, title, wide: level.width >= 60 });
    }
  }
  const hidden = K + 1 - levels.length;
  $("tree-caption").textContent = "Root at the top (" + bytes(R.minBlock * LEAVES) + "), leaves of " + bytes(R.minBlock) + " at the bottom; " +
    "labelled levels show the stored value and the block size it means" + (hidden > 0 ? "; " + hidden + (hidden > 1 ? " levels" : " level") + " narrower than a pixel left out" : "") +
    (R.capacity < R.minBlock * LEAVES ? "; space past the capacity (" + bytes(R.capacity) + ") is never handed out" : "") + ".";
  $("placement").textContent = { RightFirst: "right child first, as the tutorial", LeftFirst: "left child first, as buddy2.c", BestFit: "best fit: the child whose largest free block is the smallest that fits" }[R.placement] || R.placement;

  function render() {
    const last = cur > 0 ? R.steps[cur - 1] : [];
    const action = last.length ? last[0] : null;
    const path = new Set(), changed = new Map();
    if (action && action[1] > 0) for (let i = action[1]; i >= 1; i = Math.floor(i / 2)) path.add(i);
    for (const a of last) for (let i = 4; i < a.length; i += 4) changed.set(a[i], [a[i + 1], a[i + 2], a[i + 3]]);
    for (const [index, e] of shown) {
      const v = nodes[index];
      e.g.setAttribute("data-value", v);
      e.g.setAttribute("class", "node" + (path.has(index) ? " path" : "") + (changed.has(index) ? " changed" : ""));
      e.rect.setAttribute("fill", color(index));
      e.rect.setAttribute("stroke", action && index === action[1] ? "#000" : changed.has(index) ? "#1f78b4" : path.has(index) ? "#ff7f00" : "#fff");
      e.rect.setAttribute("stroke-width", path.has(index) || changed.has(index) ? 3 : 1);
      if (e.label) e.label.textContent = e.wide ? v + " · " + sizeOf(v) : String(v);
      if (e.tag) {
        const c = changed.get(index);
        e.tag.textContent = c ? (e.wide ? c[0] + "→" + c[1] + " " + RULES[c[2]].split(" ")[0] : RULES[c[2]].split(" ")[0]) : "";
      }
      e.title.textContent = "node " + index + ": order " + orderOf(index) + ", offset " + hex(offsetOf(index)) + ", value " + v + " (largest free block " + sizeOf(v) + ")";
    }
    $("step").textContent = cur; $("step").setAttribute("data-value", cur);
    $("op").textContent = cur > 0 ? R.ops[cur - 1] : "(the initial tree)";
    const p = [...path].sort((a, b) => a - b);
    $("chosen").setAttribute("data-value", action ? action[1] : 0);
    $("path").setAttribute("data-nodes", p.join(" "));
    $("path-values").setAttribute("data-values", p.map((i) => nodes[i]).join(" "));
    explain(last);
    buddyinfo();
    let f = action ? action[1] : 0;
    while (f > 1 && !shown.has(f)) f = Math.floor(f / 2);
    const focus = f > 0 ? shown.get(f) : null;
    if (focus) {
      const box = $("tree-box"), x = Number(focus.rect.getAttribute("x"));
      if (x < box.scrollLeft || x > box.scrollLeft + box.clientWidth - 40) box.scrollLeft = Math.max(0, x - box.clientWidth / 2);
    }
  }

  function explain(last) {
    if (cur === 0) { $("explain").innerHTML = "The whole tree is free: the root holds " + nodes[1] + " (" + sizeOf(nodes[1]) + ")."; return; }
    if (!last.length) { $("explain").innerHTML = "Nothing to do: this id's allocation had failed."; return; }
    const parts = [];
    for (const a of last) {
      const [allocate, node, order] = a;
      if (node === 0) { parts.push("Allocation of an order-" + order + " block (" + sizeOf(order + 1) + ") fails: the root holds " + nodes[1] + " (" + sizeOf(nodes[1]) + ")."); continue; }
      const route = [];
      for (let i = node; i > 1; i = Math.floor(i / 2)) route.unshift(i % 2 ? "right" : "left");
      const ups = [];
      for (let i = 8; i < a.length; i += 4) ups.push("node " + a[i] + ": " + RULES[a[i + 3]] + " " + a[i + 1] + " → " + a[i + 2]);
      parts.push((allocate ? "Allocate " : "Free ") + sizeOf(order + 1) + " (order " + order + ") at offset <code>" + hex(a[3]) + "</code>: " +
        (allocate ? "descend " + (route.length ? route.join(", ") : "nowhere (the root itself)") + " to node " + node + ", set it to 0" :
          "node " + node + " is restored to " + (order + 1)) +
        (ups.length ? "; back up: " + ups.join("; ") : "; no ancestor changes") + ".");
    }
    $("explain").innerHTML = parts.join("<br>");
  }

  function buddyinfo() {
    const counts = new Array(K + 1).fill(0);
    (function walk(index) {
      const order = orderOf(index);
      if (offsetOf(index) >= R.capacity) return;
      const v = nodes[index];
      if (v === order + 1) { counts[order]++; return; }
      if (v === 0 && (order === 0 || (nodes[2 * index] === order && nodes[2 * index + 1] === order))) return;
      if (order > 0 && v > 0) { walk(2 * index); walk(2 * index + 1); }
    })(1);
    const table = $("buddyinfo");
    table.setAttribute("data-counts", counts.join(" "));
    table.tHead.innerHTML = "<tr><th>order</th>" + counts.map((_, j) => "<td>" + j + "<br>" + sizeOf(j + 1) + "</td>").join("") + "</tr>";
    table.tBodies[0].innerHTML = "<tr><th>free blocks</th>" + counts.map((c) => "<td>" + c + "</td>").join("") + "</tr>";
  }

  const scrubber = $("scrubber");
  scrubber.max = N; $("steps").textContent = N;
  let timer = null;
  function go(n) { seek(n); scrubber.value = cur; render(); }
  function play() {
    if (timer) { clearInterval(timer); timer = null; $("play").textContent = "▶ play"; return; }
    $("play").textContent = "❚❚ pause";
    timer = setInterval(() => { if (cur >= N) { play(); return; } go(cur + 1); }, 1000 / Number($("speed").value));
  }
  scrubber.addEventListener("input", () => go(Number(scrubber.value)));
  $("first").onclick = () => go(0); $("back").onclick = () => go(cur - 1); $("fwd").onclick = () => go(cur + 1); $("play").onclick = play;
  document.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight") go(cur + 1); else if (e.key === "ArrowLeft") go(cur - 1);
    else if (e.key === " ") { e.preventDefault(); play(); }
  });
  const m = /[#?&]step=(\d+)/.exec(location.hash + location.search);
  go(m ? Number(m[1]) : 0);
})();
</script>
</body>
</html>
""";
}
