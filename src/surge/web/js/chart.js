// Small SVG charts (no library): lines or bars over labelled points, with a legend.
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#0b5cad", "#116329", "#a40e26", "#8a4b00", "#6639ba"];

function node(tag, attributes = {}, text = null) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== null) element.textContent = text;
  return element;
}

// series: [{name, values: [number|null], labelled?}]; labels: one per point. kind: "line" | "bar".
// A bar above zero is at least MIN_BAR px high, so a small figure beside a large one still shows;
// a `labelled` series writes each bar's value above it.
const MIN_BAR = 4;

export function chart({ title, labels, series, kind = "line", width = 720, height = 220 }) {
  const pad = { left: 44, right: 12, top: 24, bottom: 36 };
  const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  svg.append(node("title", {}, title));
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined)));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const x = (i) => pad.left + (labels.length <= 1 ? plotW / 2 : (i * plotW) / (labels.length - 1));
  const y = (v) => pad.top + plotH - (v / max) * plotH;
  for (const tick of [0, 0.5, 1]) {
    const value = Math.round(max * tick);
    svg.append(node("line", { x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value), stroke: "#d0d7de" }));
    svg.append(node("text", { x: pad.left - 6, y: y(value) + 4, "text-anchor": "end", "font-size": 11 }, String(value)));
  }
  const step = Math.max(1, Math.ceil(labels.length / 12));
  labels.forEach((label, i) => {
    if (i % step === 0) svg.append(node("text", { x: x(i), y: height - pad.bottom + 16, "text-anchor": "middle", "font-size": 11 }, label));
  });
  series.forEach((s, index) => {
    const colour = COLOURS[index % COLOURS.length];
    if (kind === "bar") {
      const band = plotW / Math.max(1, labels.length);
      const barW = Math.max(1, (band * 0.8) / series.length);
      s.values.forEach((v, i) => {
        if (v === null || v === undefined || v <= 0) return;
        const left = pad.left + i * band + band * 0.1 + index * barW;
        const high = Math.max(MIN_BAR, pad.top + plotH - y(v));
        const top = pad.top + plotH - high;
        svg.append(node("rect", { x: left, y: top, width: barW, height: high, fill: colour }));
        if (s.labelled) {
          svg.append(node("text", { x: left + barW / 2, y: top - 3, "text-anchor": "middle", "font-size": 10, fill: colour }, String(v)));
        }
      });
    } else {
      const points = s.values.map((v, i) => (v === null || v === undefined ? null : `${x(i)},${y(v)}`)).filter(Boolean);
      svg.append(node("polyline", { points: points.join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
    }
    svg.append(node("rect", { x: pad.left + index * 150, y: 6, width: 10, height: 10, fill: colour }));
    svg.append(node("text", { x: pad.left + index * 150 + 14, y: 15, "font-size": 12 }, s.name));
  });
  return svg;
}
