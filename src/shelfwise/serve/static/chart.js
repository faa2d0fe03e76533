// A small SVG line/scatter chart: tuning trials (dots) and the best value so far (a step line).

const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceTicks(lo, hi, n = 5, integer = false) {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) * 0.1 || 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const steps = integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  let step = steps.map((m) => m * mag).find((s) => s >= raw) || raw;
  if (integer) step = Math.max(1, Math.round(step));
  const start = Math.floor(lo / step) * step;
  const end = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let i = 0; start + i * step <= end + step * 1e-9; i++) ticks.push(Number((start + i * step).toPrecision(12)));
  return { lo: ticks[0], hi: ticks[ticks.length - 1], ticks };
}

function fmt(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.001 || a >= 1e5)) return v.toExponential(1);
  return Number(v.toPrecision(3)).toString();
}

/**
 * Draw points `[{x, y, pruned?}]` with the running best (`maximize` says which way is better).
 * Returns an <svg> element; `xLabel`/`yLabel` name the axes.
 */
export function trialChart(points, { xLabel = "trial", yLabel = "value", maximize = true } = {}) {
  const W = 420;
  const H = 230;
  const m = { l: 52, r: 12, t: 10, b: 36 };
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${yLabel} by ${xLabel}` });
  const finite = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  if (!finite.length) {
    svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#5f6b66" }, "no trials"));
    return svg;
  }
  const xs = niceTicks(Math.min(...finite.map((p) => p.x)), Math.max(...finite.map((p) => p.x)), 6, true);
  const ys = niceTicks(Math.min(...finite.map((p) => p.y)), Math.max(...finite.map((p) => p.y)));
  const X = (v) => m.l + ((v - xs.lo) / (xs.hi - xs.lo || 1)) * (W - m.l - m.r);
  const Y = (v) => H - m.b - ((v - ys.lo) / (ys.hi - ys.lo || 1)) * (H - m.t - m.b);

  for (const t of ys.ticks) {
    svg.append(el("line", { x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t), stroke: "#e6eae8" }));
    svg.append(el("text", { x: m.l - 6, y: Y(t) + 4, "text-anchor": "end", "font-size": 11, fill: "#5f6b66" }, fmt(t)));
  }
  for (const t of xs.ticks) {
    svg.append(el("text", { x: X(t), y: H - m.b + 15, "text-anchor": "middle", "font-size": 11, fill: "#5f6b66" }, fmt(t)));
  }
  svg.append(el("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, stroke: "#9aa5a0" }));
  svg.append(el("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, stroke: "#9aa5a0" }));
  svg.append(el("text", { x: (W + m.l) / 2, y: H - 4, "text-anchor": "middle", "font-size": 12, fill: "#1d2421" }, xLabel));
  svg.append(el("text", {
    x: 12, y: (H - m.b + m.t) / 2, "text-anchor": "middle", "font-size": 12, fill: "#1d2421",
    transform: `rotate(-90 12 ${(H - m.b + m.t) / 2})`,
  }, yLabel));

  const sorted = [...finite].sort((a, b) => a.x - b.x);
  let best = null;
  const steps = [];
  for (const p of sorted) {
    if (p.pruned) continue;
    if (best === null || (maximize ? p.y > best : p.y < best)) best = p.y;
    steps.push([p.x, best]);
  }
  if (steps.length) {
    let d = `M${X(steps[0][0])},${Y(steps[0][1])}`;
    for (let i = 1; i < steps.length; i++) d += `H${X(steps[i][0])}V${Y(steps[i][1])}`;
    svg.append(el("path", { d, fill: "none", stroke: "#c8553d", "stroke-width": 2, class: "best" }));
  }
  for (const p of sorted) {
    const dot = el("circle", {
      cx: X(p.x), cy: Y(p.y), r: 3.2,
      fill: p.pruned ? "#ffffff" : "#1f5f4a", stroke: "#1f5f4a", "stroke-width": 1.2, class: "trial",
    });
    dot.append(el("title", {}, `${xLabel} ${p.x}: ${fmt(p.y)}${p.pruned ? " (pruned)" : ""}`));
    svg.append(dot);
  }
  return svg;
}

const PALETTE = ["#1f5f4a", "#c8553d", "#3d6fc8", "#b08a1e", "#7a3dc8", "#2e9c9c"];

/**
 * Lines over x, one per series `[{name, points: [{x, y, lo?, hi?}]}]`; a point with `lo` and
 * `hi` widens into a shaded band (an interval). `xLabels` (optional) names the x ticks
 * (e.g. dates for day indices). Returns an <svg> element with a legend.
 */
export function lineChart(series, { xLabel = "", yLabel = "value", xLabels = null, zero = false } = {}) {
  const W = 420;
  const H = 240;
  const m = { l: 56, r: 12, t: 24, b: 36 };
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${yLabel} by ${xLabel}` });
  const all = series.flatMap((s) => s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)));
  if (!all.length) {
    svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#5f6b66" }, "no data yet"));
    return svg;
  }
  const ysAll = all.flatMap((p) => [p.y, Number.isFinite(p.lo) ? p.lo : p.y, Number.isFinite(p.hi) ? p.hi : p.y]);
  if (zero) ysAll.push(0);
  const xs = niceTicks(Math.min(...all.map((p) => p.x)), Math.max(...all.map((p) => p.x)), 6, true);
  const ys = niceTicks(Math.min(...ysAll), Math.max(...ysAll));
  const X = (v) => m.l + ((v - xs.lo) / (xs.hi - xs.lo || 1)) * (W - m.l - m.r);
  const Y = (v) => H - m.b - ((v - ys.lo) / (ys.hi - ys.lo || 1)) * (H - m.t - m.b);
  for (const t of ys.ticks) {
    svg.append(el("line", { x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t), stroke: t === 0 && zero ? "#9aa5a0" : "#e6eae8" }));
    svg.append(el("text", { x: m.l - 6, y: Y(t) + 4, "text-anchor": "end", "font-size": 11, fill: "#5f6b66" }, fmt(t)));
  }
  for (const t of xs.ticks) {
    if (xLabels && xLabels[t] === undefined) continue; // padding ticks name no day
    const label = xLabels ? xLabels[t] : fmt(t);
    svg.append(el("text", { x: X(t), y: H - m.b + 15, "text-anchor": "middle", "font-size": 10, fill: "#5f6b66" }, label));
  }
  svg.append(el("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, stroke: "#9aa5a0" }));
  svg.append(el("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, stroke: "#9aa5a0" }));
  svg.append(el("text", { x: (W + m.l) / 2, y: H - 4, "text-anchor": "middle", "font-size": 12, fill: "#1d2421" }, xLabel));
  svg.append(el("text", {
    x: 12, y: (H - m.b + m.t) / 2, "text-anchor": "middle", "font-size": 12, fill: "#1d2421",
    transform: `rotate(-90 12 ${(H - m.b + m.t) / 2})`,
  }, yLabel));
  series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    const band = pts.filter((p) => Number.isFinite(p.lo) && Number.isFinite(p.hi));
    if (band.length > 1) {
      const top = band.map((p) => `${X(p.x)},${Y(p.hi)}`).join(" ");
      const bottom = [...band].reverse().map((p) => `${X(p.x)},${Y(p.lo)}`).join(" ");
      svg.append(el("polygon", { points: `${top} ${bottom}`, fill: colour, "fill-opacity": 0.15, class: "band" }));
    }
    if (pts.length) {
      const d = pts.map((p, j) => `${j ? "L" : "M"}${X(p.x)},${Y(p.y)}`).join("");
      svg.append(el("path", { d, fill: "none", stroke: colour, "stroke-width": 2, class: "series", "data-series": s.name }));
    }
    for (const p of pts) {
      const dot = el("circle", { cx: X(p.x), cy: Y(p.y), r: 2.6, fill: colour, class: "point" });
      const label = xLabels && xLabels[p.x] !== undefined ? xLabels[p.x] : fmt(p.x);
      const range = Number.isFinite(p.lo) ? ` [${fmt(p.lo)}, ${fmt(p.hi)}]` : "";
      dot.append(el("title", {}, `${s.name} ${label}: ${fmt(p.y)}${range}`));
      svg.append(dot);
    }
    svg.append(el("rect", { x: m.l + 8 + i * 96, y: 6, width: 10, height: 10, fill: colour }));
    svg.append(el("text", { x: m.l + 22 + i * 96, y: 15, "font-size": 11, fill: "#1d2421" }, s.name));
  });
  return svg;
}
