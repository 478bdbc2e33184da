// The flame graph's page side: draws the frames Python sends (one binary record each) on a canvas,
// and reports clicks (zoom), the search text and the reset button back through the model.
const RECORD = 36; // bytes per frame: x f64, value f64, id u32, name u32, depth u16, kind u8, flags u8, color u32, pad u32
const ROW = 17;
const ANCESTOR = 1;
const KINDS = ["user", "kernel", "process", "container"];

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

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "gadgetbook-flamegraph";
  const bar = document.createElement("div");
  bar.className = "gb-bar";
  const title = document.createElement("span");
  title.className = "gb-title";
  const reset = document.createElement("button");
  reset.className = "gadgetbook-flame-reset";
  reset.textContent = "Reset zoom";
  const search = document.createElement("input");
  search.className = "gadgetbook-flame-search";
  search.type = "search";
  search.placeholder = "Search frames";
  const share = document.createElement("span");
  share.className = "gb-share gadgetbook-flame-share";
  const legend = document.createElement("span");
  legend.className = "gb-legend";
  const zoomed = document.createElement("span");
  zoomed.className = "gb-zoom gadgetbook-flame-zoom";
  bar.append(reset, search, share, legend, zoomed);
  const scroll = document.createElement("div");
  scroll.className = "gb-scroll";
  const canvas = document.createElement("canvas");
  scroll.append(canvas);
  const tip = document.createElement("div");
  tip.className = "gb-tip";
  root.append(title, bar, scroll, tip);
  el.append(root);

  let nodes = [];
  let names = [];
  let boxes = []; // [x, y, w, h, node] as drawn, for hit tests
  let width = 0;

  function layout() {
    nodes = decode(model);
    names = model.get("names") || [];
    draw();
  }

  function draw() {
    width = scroll.clientWidth || el.clientWidth || 900;
    const zoomTotal = model.get("zoom_total") || 1;
    const zoomDepth = model.get("zoom_depth") || 0;
    let maxDepth = 0;
    for (const n of nodes) maxDepth = Math.max(maxDepth, n.depth);
    const height = model.get("height") || (maxDepth + 1) * ROW + 2;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.floor(width * ratio);
    canvas.height = Math.floor(height * ratio);
    canvas.style.height = height + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px ui-monospace, monospace";
    ctx.textBaseline = "middle";
    const needle = (model.get("search") || "").toLowerCase();
    boxes = [];
    for (const n of nodes) {
      const ancestor = (n.flags & ANCESTOR) !== 0 || n.depth < zoomDepth;
      const x = ancestor ? 0 : (n.x / zoomTotal) * width;
      const w = ancestor ? width : (n.value / zoomTotal) * width;
      if (w < 0.3) continue;
      const y = height - (n.depth + 1) * ROW;
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
  }

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
      const sp = document.createElement("span");
      sp.textContent = label;
      sp.style.background = color;
      legend.append(sp);
    }
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
      (zoomTotal !== total ? `, ${zpct}% of zoom` : "") + ` (${KINDS[n.kind] || ""})`;
    const r = root.getBoundingClientRect();
    tip.style.left = Math.min(ev.clientX - r.left + 12, r.width - 40) + "px";
    tip.style.top = ev.clientY - r.top + 14 + "px";
    tip.style.display = "block";
  });
  canvas.addEventListener("mouseleave", () => (tip.style.display = "none"));
  canvas.addEventListener("click", (ev) => {
    const n = at(ev);
    if (n) model.send({ type: "zoom", node: n.id });
  });
  reset.addEventListener("click", () => {
    model.set("zoom", "");
    model.save_changes();
  });
  search.addEventListener("input", () => {
    model.set("search", search.value);
    model.save_changes();
    draw();
  });

  model.on("change:nodes", layout);
  model.on("change:names", layout);
  model.on("change:search", () => {
    if (search.value !== model.get("search")) search.value = model.get("search");
    draw();
    showShare();
  });
  model.on("change:search_share", showShare);
  const showZoom = () => (zoomed.textContent = model.get("zoom") ? "zoom: " + model.get("zoom") : "");
  model.on("change:zoom", showZoom);
  showZoom();
  model.on("change:title", () => (title.textContent = model.get("title")));
  model.on("change:legend", showLegend);
  title.textContent = model.get("title");
  search.value = model.get("search") || "";
  showShare();
  showLegend();
  const observer = new ResizeObserver(() => {
    if (Math.abs((scroll.clientWidth || 0) - width) > 1) draw();
  });
  observer.observe(scroll);
  layout();
  return () => observer.disconnect();
}

export default { render };
