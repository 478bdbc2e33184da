// The flame graph's page side: draws the frames Python sends (one binary record each) on a canvas as a
// flame graph, an icicle or a sandwich, lists functions in a sortable table, draws the time strip, and
// reports clicks (zoom, sandwich), the search text, the view and the selected time span back through
// the model. Python keeps the tree and recounts it; the page only draws.
const RECORD = 36; // bytes per frame: x f64, value f64, id u32, name u32, depth u16, kind u8, flags u8, color u32, pad u32
const ROW = 17;
const ANCESTOR = 1;
const CALLERS = 2;
const KINDS = ["user", "kernel", "process", "container"];
const VIEWS = [["flame", "Flame graph"], ["icicle", "Icicle"], ["sandwich", "Sandwich"], ["table", "Functions"]];
const STRIP_HEIGHT = 36;

function bytesOf(v) {
  if (!v) return new DataView(new ArrayBuffer(0));
  if (v instanceof DataView) return v;
  if (v instanceof ArrayBuffer) return new DataView(v);
  if (ArrayBuffer.isView(v)) return new DataView(v.buffer, v.byteOffset, v.byteLength);
  return new DataView(new ArrayBuffer(0));
}

function decode(model) {
  const view = bytesOf(model.get("nodes"));
  const n = Math.floor(view.byteLength / RECORD);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * RECORD;
    out[i] = {
      x: view.getFloat64(o, true),
      value: view.getFloat64(o + 8, true),
      id: view.getUint32(o + 16, true),
      name: view.getUint32(o + 20, true),
      depth: view.getUint16(o + 24, true),
      kind: view.getUint8(o + 26),
      flags: view.getUint8(o + 27),
      color: view.getUint32(o + 28, true),
    };
  }
  return out;
}

function hex(c) {
  return "#" + c.toString(16).padStart(6, "0");
}

// A canvas `width` by `height` CSS pixels, drawn at the screen's resolution; returns its context.
function sized(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.floor(width * ratio);
  canvas.height = Math.floor(height * ratio);
  canvas.style.height = height + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return ctx;
}

function element(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render({ model, el }) {
  const root = element("div", "gadgetbook-flamegraph");
  const title = element("div", "gb-title");
  const notes = element("div", "gb-notes gadgetbook-flame-notes");
  const bar = element("div", "gb-bar");
  const views = element("span", "gb-views");
  const buttons = {};
  for (const [name, label] of VIEWS) {
    const b = element("button", `gadgetbook-flame-view gadgetbook-flame-view-${name}`, label);
    b.addEventListener("click", () => {
      model.set("view", name);
      model.save_changes();
    });
    buttons[name] = b;
    views.append(b);
  }
  const reset = element("button", "gadgetbook-flame-reset", "Reset");
  const search = element("input", "gadgetbook-flame-search");
  search.type = "search";
  search.placeholder = "Search frames";
  const share = element("span", "gb-share gadgetbook-flame-share");
  const legend = element("span", "gb-legend");
  const zoomed = element("span", "gb-zoom gadgetbook-flame-zoom");
  const status = element("span", "gb-status gadgetbook-flame-status");
  bar.append(views, reset, search, share, legend, zoomed, status);
  const strip = element("canvas", "gb-strip gadgetbook-flame-strip");
  const spanText = element("div", "gb-span gadgetbook-flame-span");
  const scroll = element("div", "gb-scroll");
  const canvas = element("canvas", "gb-graph");
  const table = element("table", "gb-table gadgetbook-flame-table");
  scroll.append(canvas, table);
  const tip = element("div", "gb-tip");
  root.append(title, notes, bar, strip, spanText, scroll, tip);
  el.append(root);

  let nodes = [];
  let names = [];
  let boxes = []; // [x, y, w, h, node] as drawn, for hit tests
  let width = 0;
  let openedOnRoots = false;
  let sortKey = 2; // the functions table: 1 self, 2 total
  let dragFrom = null;

  function layout() {
    nodes = decode(model);
    names = model.get("names") || [];
    draw();
  }

  function rowOf(n, view, maxDepth, callersMax) {
    if (view === "icicle") return n.depth;
    if (view === "sandwich") return n.flags & CALLERS ? callersMax - n.depth : callersMax + n.depth - 2;
    return maxDepth - n.depth; // flame: roots at the bottom
  }

  function draw() {
    const view = model.get("view");
    for (const [name] of VIEWS) buttons[name].classList.toggle("gb-active", name === view);
    const isTable = view === "table";
    canvas.style.display = isTable ? "none" : "block";
    table.style.display = isTable ? "table" : "none";
    if (isTable) {
      drawTable();
      status.textContent = `${(model.get("functions") || []).length} functions, ${Math.round(model.get("total") || 0).toLocaleString()} samples`;
      return;
    }
    width = scroll.clientWidth || el.clientWidth || 900;
    const zoomTotal = model.get("zoom_total") || 1;
    const zoomDepth = model.get("zoom_depth") || 0;
    let maxDepth = 0;
    let callersMax = 0;
    for (const n of nodes) {
      maxDepth = Math.max(maxDepth, n.depth);
      if (n.flags & CALLERS) callersMax = Math.max(callersMax, n.depth);
    }
    let rows = maxDepth + 1;
    if (view === "sandwich") {
      let calleesMax = 1;
      for (const n of nodes) if (!(n.flags & CALLERS)) calleesMax = Math.max(calleesMax, n.depth);
      rows = callersMax + calleesMax - 1;
    }
    const height = model.get("height") || Math.max(rows, 1) * ROW + 2;
    const ctx = sized(canvas, width, height);
    ctx.font = "11px ui-monospace, monospace";
    ctx.textBaseline = "middle";
    const needle = (model.get("search") || "").toLowerCase();
    boxes = [];
    if (view === "sandwich" && !nodes.length) {
      ctx.fillStyle = "#666";
      ctx.fillText("Pick a function: shift-click a frame, or click a row of the Functions table.", 6, ROW / 2);
    }
    for (const n of nodes) {
      const ancestor = view !== "sandwich" && ((n.flags & ANCESTOR) !== 0 || n.depth < zoomDepth);
      const x = ancestor ? 0 : (n.x / zoomTotal) * width;
      const w = ancestor ? width : (n.value / zoomTotal) * width;
      if (w < 0.3) continue;
      const y = rowOf(n, view, maxDepth, callersMax) * ROW;
      const name = names[n.name] || "";
      const hit = needle && name.toLowerCase().includes(needle);
      ctx.globalAlpha = ancestor ? 0.45 : 1;
      ctx.fillStyle = hit ? "#e040e0" : hex(n.color);
      ctx.fillRect(x, y, Math.max(w - 0.5, 0.5), ROW - 1);
      ctx.globalAlpha = 1;
      if (w > 24) {
        const fits = Math.floor((w - 6) / 6.6);
        const label = name.length > fits ? name.slice(0, Math.max(fits - 1, 1)) + "\u2026" : name;
        ctx.fillStyle = "#000";
        ctx.fillText(label, x + 3, y + ROW / 2);
      }
      boxes.push([x, y, w, ROW - 1, n]);
    }
    status.textContent = `${Math.round(zoomTotal).toLocaleString()} samples in view, ${boxes.length} frames drawn`;
    // A flame graph grows upward from its roots: open with the roots in sight, not the deepest frames.
    if (view === "flame" && !openedOnRoots && height > 0) {
      scroll.scrollTop = scroll.scrollHeight;
      openedOnRoots = true;
    }
  }

  function drawTable() {
    const rows = (model.get("functions") || []).slice();
    rows.sort((a, b) => (sortKey === 0 ? String(a[0]).localeCompare(String(b[0])) : b[sortKey] - a[sortKey]));
    const total = model.get("total") || 1;
    table.replaceChildren();
    const head = element("tr");
    const headers = [["Function", 0], ["Self", 1], ["Total", 2], ["Kind", 3]];
    for (const [label, key] of headers) {
      const th = element("th", `gadgetbook-flame-sort-${label.toLowerCase()}`, label + (key === sortKey ? " \u25bc" : ""));
      if (key < 3) {
        th.addEventListener("click", () => {
          sortKey = key;
          drawTable();
        });
      }
      head.append(th);
    }
    table.append(head);
    for (const r of rows) {
      const tr = element("tr", "gadgetbook-flame-function");
      tr.append(element("td", "gb-fn", r[0]));
      tr.append(element("td", "gb-num", `${Math.round(r[1]).toLocaleString()} (${((100 * r[1]) / total).toFixed(1)}%)`));
      tr.append(element("td", "gb-num", `${Math.round(r[2]).toLocaleString()} (${((100 * r[2]) / total).toFixed(1)}%)`));
      tr.append(element("td", "", r[3]));
      tr.addEventListener("click", () => model.send({ type: "sandwich", name: r[0] }));
      table.append(tr);
    }
  }

  function drawStrip() {
    const counts = model.get("strip") || [];
    strip.style.display = counts.length ? "block" : "none";
    if (!counts.length) return;
    const w = strip.clientWidth || scroll.clientWidth || 900;
    const ctx = sized(strip, w, STRIP_HEIGHT);
    const step = model.get("strip_seconds") || 1;
    const seconds = counts.length * step;
    const top = Math.max(...counts, 1);
    const bw = w / counts.length;
    const span = model.get("span") || [];
    ctx.fillStyle = "#f4f4f4";
    ctx.fillRect(0, 0, w, STRIP_HEIGHT);
    if (span.length === 2) {
      ctx.fillStyle = "#ffe9a8";
      ctx.fillRect((span[0] / seconds) * w, 0, ((span[1] - span[0]) / seconds) * w, STRIP_HEIGHT);
    }
    ctx.fillStyle = "#c0504d";
    counts.forEach((c, i) => {
      const h = (c / top) * (STRIP_HEIGHT - 4);
      ctx.fillRect(i * bw, STRIP_HEIGHT - h, Math.max(bw - 0.5, 0.5), h);
    });
    const per = 1 / step;
    spanText.textContent =
      span.length === 2
        ? `${span[0].toFixed(2)} s \u2013 ${span[1].toFixed(2)} s of ${seconds.toFixed(1)} s (drag across the strip to pick another span)`
        : `samples over ${seconds.toFixed(1)} s, peak ${Math.round(top * per).toLocaleString()}/s (drag across the strip to pick a span)`;
  }

  function stripSeconds(ev) {
    const r = strip.getBoundingClientRect();
    const counts = model.get("strip") || [];
    const seconds = counts.length * (model.get("strip_seconds") || 1);
    return Math.min(Math.max((ev.clientX - r.left) / (r.width || 1), 0), 1) * seconds;
  }

  strip.addEventListener("mousedown", (ev) => {
    dragFrom = stripSeconds(ev);
  });
  strip.addEventListener("mouseup", (ev) => {
    if (dragFrom === null) return;
    const to = stripSeconds(ev);
    const lo = Math.min(dragFrom, to);
    const hi = Math.max(dragFrom, to);
    dragFrom = null;
    const step = model.get("strip_seconds") || 1;
    model.set("span", hi - lo < step / 2 ? [] : [lo, hi]);
    model.save_changes();
  });

  function at(ev) {
    const r = canvas.getBoundingClientRect();
    const px = ev.clientX - r.left;
    const py = ev.clientY - r.top;
    for (let i = boxes.length - 1; i >= 0; i--) {
      const [x, y, w, h, n] = boxes[i];
      if (px >= x && px < x + w && py >= y && py < y + h) return n;
    }
    return null;
  }

  function showShare() {
    const s = model.get("search");
    share.textContent = s ? `"${s}": ${(100 * model.get("search_share")).toFixed(1)}% of samples` : "";
  }

  function showLegend() {
    legend.replaceChildren();
    for (const [label, color] of model.get("legend") || []) {
      const sp = element("span", "", label);
      sp.style.background = color;
      legend.append(sp);
    }
  }

  function showNotes() {
    notes.replaceChildren();
    for (const n of model.get("notes") || []) notes.append(element("div", "", n));
  }

  canvas.addEventListener("mousemove", (ev) => {
    const n = at(ev);
    if (!n) {
      tip.style.display = "none";
      return;
    }
    const total = model.get("total") || 1;
    const zoomTotal = model.get("zoom_total") || 1;
    const pct = ((100 * n.value) / total).toFixed(2);
    const zpct = ((100 * n.value) / zoomTotal).toFixed(2);
    tip.textContent = `${names[n.name]} \u2014 ${Math.round(n.value).toLocaleString()} samples, ${pct}% of all` +
      (zoomTotal !== total ? `, ${zpct}% of view` : "") + ` (${KINDS[n.kind] || ""}; shift-click: callers and callees)`;
    const r = root.getBoundingClientRect();
    tip.style.left = Math.min(ev.clientX - r.left + 12, r.width - 40) + "px";
    tip.style.top = ev.clientY - r.top + 14 + "px";
    tip.style.display = "block";
  });
  canvas.addEventListener("mouseleave", () => (tip.style.display = "none"));
  canvas.addEventListener("click", (ev) => {
    const n = at(ev);
    if (!n) return;
    if (ev.shiftKey || model.get("view") === "sandwich") model.send({ type: "sandwich", name: names[n.name] });
    else model.send({ type: "zoom", node: n.id });
  });
  reset.addEventListener("click", () => {
    model.set("zoom", "");
    model.set("span", []);
    model.save_changes();
  });
  search.addEventListener("input", () => {
    model.set("search", search.value);
    model.save_changes();
    draw();
  });

  model.on("change:nodes", layout);
  model.on("change:names", layout);
  model.on("change:view", draw);
  model.on("change:functions", () => model.get("view") === "table" && draw());
  model.on("change:search", () => {
    if (search.value !== model.get("search")) search.value = model.get("search");
    draw();
    showShare();
  });
  model.on("change:search_share", showShare);
  const showZoom = () => {
    const z = model.get("zoom");
    const s = model.get("sandwich");
    zoomed.textContent = model.get("view") === "sandwich" && s ? "sandwich: " + s : z ? "zoom: " + z : "";
  };
  model.on("change:zoom", showZoom);
  model.on("change:sandwich", showZoom);
  model.on("change:view", showZoom);
  showZoom();
  model.on("change:title", () => (title.textContent = model.get("title")));
  model.on("change:legend", showLegend);
  model.on("change:notes", showNotes);
  model.on("change:strip", drawStrip);
  model.on("change:span", drawStrip);
  title.textContent = model.get("title");
  search.value = model.get("search") || "";
  showShare();
  showLegend();
  showNotes();
  const observer = new ResizeObserver(() => {
    if (Math.abs((scroll.clientWidth || 0) - width) > 1) {
      draw();
      drawStrip();
    }
  });
  observer.observe(scroll);
  layout();
  drawStrip();
  return () => observer.disconnect();
}

export default { render };
