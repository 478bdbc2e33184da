// The investigation timeline: lanes (pods or containers) down the side, one time axis across, each gadget's
// events as coloured marks in a row of its own inside each lane. Marks come either one per event (a packed
// record each: f64 ms since the axis start, u16 lane, u8 gadget, u8 pad) with a hover text each, or as
// counts per lane, gadget and time bin (u32, lane-major), drawn darker where more happened. Dragging
// brushes a span (the `brush` trait, ms from the axis start); a double click clears it.

const LABEL_W = 170;
const AXIS_H = 22;
const LANE_H = 26;
const PAD_R = 12;
const MARK_RECORD = 12;

function niceStep(ms, target) {
  const raw = ms / target;
  const pow = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * pow) return m * pow;
  return 10 * pow;
}

function fmtTime(t0, ms, step) {
  const d = new Date(t0 + ms);
  const hh = String(d.getUTCHours()).padStart(2, '0');
  const mm = String(d.getUTCMinutes()).padStart(2, '0');
  const ss = String(d.getUTCSeconds()).padStart(2, '0');
  const frac = step < 1000 ? '.' + String(d.getUTCMilliseconds()).padStart(3, '0') : '';
  return `${hh}:${mm}:${ss}${frac}`;
}

function render({ model, el }) {
  el.classList.add('gadgetbook-timeline');
  const title = document.createElement('div');
  const legend = document.createElement('div');
  legend.className = 'gadgetbook-timeline-legend';
  const canvas = document.createElement('canvas');
  const tip = document.createElement('div');
  tip.className = 'gadgetbook-timeline-tip';
  el.append(title, legend, canvas, tip);
  let drag = null;

  const geometry = () => {
    const width = Math.max(400, el.clientWidth || 900);
    const lanes = model.get('lanes');
    return { width, height: AXIS_H + Math.max(1, lanes.length) * LANE_H + 4, plotW: width - LABEL_W - PAD_R };
  };
  const xOf = (ms, g) => LABEL_W + (ms / model.get('span_ms')) * g.plotW;
  const msOf = (x, g) => Math.min(model.get('span_ms'), Math.max(0, ((x - LABEL_W) / g.plotW) * model.get('span_ms')));

  function marks() {
    const buf = model.get('marks');
    const view = buf instanceof DataView ? buf : new DataView(buf.buffer || buf);
    const n = Math.floor(view.byteLength / MARK_RECORD);
    const out = new Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * MARK_RECORD;
      out[i] = { t: view.getFloat64(o, true), lane: view.getUint16(o + 8, true), gadget: view.getUint8(o + 10) };
    }
    return out;
  }

  function counts() {
    const buf = model.get('counts');
    const view = buf instanceof DataView ? buf : new DataView(buf.buffer || buf);
    return new Uint32Array(view.buffer, view.byteOffset, Math.floor(view.byteLength / 4));
  }

  function draw() {
    const g = geometry();
    const dpr = window.devicePixelRatio || 1;
    canvas.width = g.width * dpr;
    canvas.height = g.height * dpr;
    canvas.style.width = `${g.width}px`;
    canvas.style.height = `${g.height}px`;
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, g.width, g.height);
    const lanes = model.get('lanes');
    const gadgets = model.get('gadgets');
    const colors = model.get('colors');
    title.textContent = `${model.get('total').toLocaleString()} events, ${gadgets.length} gadgets, ${lanes.length} lanes` +
      (model.get('title') ? ` · ${model.get('title')}` : '');
    legend.innerHTML = gadgets.map((name, i) => `<span><i style="background:${colors[i]}"></i>${name}</span>`).join('');
    // Lanes and their labels.
    ctx.font = '12px sans-serif';
    ctx.textBaseline = 'middle';
    lanes.forEach((lane, i) => {
      const y = AXIS_H + i * LANE_H;
      ctx.fillStyle = i % 2 ? '#ffffff' : '#f4f6f8';
      ctx.fillRect(0, y, g.width, LANE_H);
      ctx.fillStyle = '#222';
      const label = lane.length > 26 ? '…' + lane.slice(-25) : lane;
      ctx.fillText(label, 6, y + LANE_H / 2);
    });
    // The time axis.
    const span = model.get('span_ms');
    const step = niceStep(span, Math.max(2, g.plotW / 110));
    ctx.strokeStyle = '#ccc';
    ctx.fillStyle = '#555';
    ctx.textBaseline = 'alphabetic';
    const t0 = model.get('t0_ms');
    const first = Math.ceil(t0 / step) * step - t0;
    for (let ms = first; ms <= span; ms += step) {
      const x = xOf(ms, g);
      ctx.beginPath();
      ctx.moveTo(x, AXIS_H - 4);
      ctx.lineTo(x, g.height);
      ctx.stroke();
      ctx.fillText(fmtTime(t0, ms, step), x + 2, AXIS_H - 8);
    }
    // The events.
    const rows = Math.max(1, gadgets.length);
    const rowH = (LANE_H - 6) / rows;
    if (model.get('mode') === 'marks') {
      for (const m of marks()) {
        ctx.fillStyle = colors[m.gadget];
        ctx.fillRect(Math.round(xOf(m.t, g)) - 1, AXIS_H + m.lane * LANE_H + 3 + m.gadget * rowH, 2, Math.max(2, rowH - 1));
      }
    } else {
      const c = counts();
      const bins = model.get('bins');
      let max = 1;
      for (let i = 0; i < c.length; i++) if (c[i] > max) max = c[i];
      const bw = g.plotW / bins;
      for (let lane = 0; lane < lanes.length; lane++) {
        for (let gi = 0; gi < gadgets.length; gi++) {
          const base = (lane * gadgets.length + gi) * bins;
          ctx.fillStyle = colors[gi];
          for (let b = 0; b < bins; b++) {
            const n = c[base + b];
            if (!n) continue;
            ctx.globalAlpha = 0.25 + 0.75 * Math.log1p(n) / Math.log1p(max);
            ctx.fillRect(LABEL_W + b * bw, AXIS_H + lane * LANE_H + 3 + gi * rowH, Math.max(1, bw), Math.max(2, rowH - 1));
          }
        }
      }
      ctx.globalAlpha = 1;
    }
    // The brushed span (or the one being dragged).
    const brush = drag ? [drag.a, drag.b] : model.get('brush');
    if (brush && brush.length === 2) {
      const [a, b] = [Math.min(...brush), Math.max(...brush)];
      ctx.fillStyle = 'rgba(30, 100, 200, 0.15)';
      ctx.strokeStyle = 'rgba(30, 100, 200, 0.8)';
      ctx.fillRect(xOf(a, g), AXIS_H, xOf(b, g) - xOf(a, g), g.height - AXIS_H);
      ctx.strokeRect(xOf(a, g), AXIS_H, xOf(b, g) - xOf(a, g), g.height - AXIS_H);
    }
  }

  function hover(ev) {
    const g = geometry();
    const r = canvas.getBoundingClientRect();
    const x = ev.clientX - r.left;
    const y = ev.clientY - r.top;
    const lane = Math.floor((y - AXIS_H) / LANE_H);
    const lanes = model.get('lanes');
    if (x < LABEL_W || lane < 0 || lane >= lanes.length) {
      tip.style.display = 'none';
      return;
    }
    let text = '';
    if (model.get('mode') === 'marks') {
      const details = model.get('details');
      let best = -1;
      let bestD = 5;
      marks().forEach((m, i) => {
        if (m.lane !== lane) return;
        const d = Math.abs(xOf(m.t, g) - x);
        if (d < bestD) { bestD = d; best = i; }
      });
      if (best >= 0) text = `${lanes[lane]}\n${details[best] || ''}`;
    } else {
      const bins = model.get('bins');
      const b = Math.min(bins - 1, Math.max(0, Math.floor(((x - LABEL_W) / g.plotW) * bins)));
      const c = counts();
      const gadgets = model.get('gadgets');
      const parts = gadgets.map((name, gi) => [name, c[(lane * gadgets.length + gi) * bins + b]]).filter(([, n]) => n);
      const w = model.get('span_ms') / bins;
      if (parts.length) {
        text = `${lanes[lane]}  ${fmtTime(model.get('t0_ms'), b * w, 1)} +${w.toFixed(1)} ms\n` +
          parts.map(([name, n]) => `${name}: ${n} events`).join('\n');
      }
    }
    if (!text) {
      tip.style.display = 'none';
      return;
    }
    tip.textContent = text;
    tip.style.display = 'block';
    tip.style.left = `${Math.min(x + 12, g.width - 300)}px`;
    tip.style.top = `${y + title.offsetHeight + legend.offsetHeight + 12}px`;
  }

  canvas.addEventListener('mousedown', (ev) => {
    const g = geometry();
    const x = ev.clientX - canvas.getBoundingClientRect().left;
    if (x < LABEL_W) return;
    drag = { a: msOf(x, g), b: msOf(x, g) };
  });
  canvas.addEventListener('mousemove', (ev) => {
    if (drag) {
      drag.b = msOf(ev.clientX - canvas.getBoundingClientRect().left, geometry());
      draw();
    }
    hover(ev);
  });
  const finish = () => {
    if (!drag) return;
    const { a, b } = drag;
    drag = null;
    if (Math.abs(b - a) > 0) {
      model.set('brush', [Math.min(a, b), Math.max(a, b)]);
      model.save_changes();
    }
    draw();
  };
  canvas.addEventListener('mouseup', finish);
  canvas.addEventListener('mouseleave', () => {
    tip.style.display = 'none';
    finish();
  });
  canvas.addEventListener('dblclick', () => {
    model.set('brush', []);
    model.save_changes();
  });
  for (const name of ['brush', 'marks', 'counts', 'lanes', 'gadgets']) model.on(`change:${name}`, draw);
  const observer = new ResizeObserver(() => draw());
  observer.observe(el);
  draw();
  return () => observer.disconnect();
}

export default { render };
