/**
 * Inline SVG charts for the report: plain strings, no scripts, no external fonts or styles, so the
 * page renders the same offline and in any browser.
 */

export function esc(text: string | number): string {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** One colour per chunk, shared by every chart so a chunk looks the same everywhere. */
export const CHUNK_COLORS: Record<string, string> = {
  LD: "#4e79a7", MM: "#e15759", ST: "#76b7b2", LN: "#59a14f", SM: "#edc948", AV: "#b07aa1", EW: "#ff9da7",
};

export interface Bar {
  label: string;
  value: number;
  color?: string;
  /** Printed after the bar instead of the value. */
  note?: string;
}

const FONT = 'font-family="sans-serif" font-size="11"';

/** A horizontal bar chart: one row per bar, the label on the left, the value after the bar. */
export function barChart(id: string, title: string, bars: Bar[], options: { width?: number; format?: (v: number) => string } = {}): string {
  const width = options.width ?? 900;
  const format = options.format ?? ((v: number) => v.toLocaleString("en-US"));
  const labelWidth = Math.min(320, 12 + 6.5 * Math.max(4, ...bars.map((b) => b.label.length)));
  const row = 14;
  const top = 22;
  const height = top + row * bars.length + 8;
  const plot = width - labelWidth - 130;
  const max = Math.max(...bars.map((b) => b.value), 0) || 1;
  const rows = bars.map((b, i) => {
    const y = top + i * row;
    const w = Math.max(0, (plot * b.value) / max);
    return (
      `<text x="${labelWidth - 6}" y="${y + 10}" text-anchor="end">${esc(b.label)}</text>` +
      `<rect x="${labelWidth}" y="${y + 2}" width="${w.toFixed(1)}" height="${row - 4}" fill="${b.color ?? "#4e79a7"}"><title>${esc(b.label)}: ${esc(b.note ?? format(b.value))}</title></rect>` +
      `<text x="${(labelWidth + w + 4).toFixed(1)}" y="${y + 10}">${esc(b.note ?? format(b.value))}</text>`
    );
  });
  return (
    `<svg id="${esc(id)}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}" ${FONT}>` +
    `<title>${esc(title)}</title><text x="0" y="13" font-weight="bold">${esc(title)}</text>${rows.join("")}</svg>`
  );
}

export interface Lane {
  label: string;
  color: string;
  intervals: [number, number][];
  /** Shown after the lane: its busy share, for example. */
  note: string;
}

/**
 * Lanes of busy intervals over time (the pipeline timeline). Intervals closer than one pixel are
 * drawn as one bar: the picture is the same and the page stays small for tens of thousands of them.
 */
export function timelineChart(id: string, title: string, lanes: Lane[], total: number, options: { width?: number; unit?: string } = {}): string {
  const width = options.width ?? 1100;
  const labelWidth = 40;
  const noteWidth = 90;
  const plot = width - labelWidth - noteWidth;
  const lane = 22;
  const top = 22;
  const axis = 30;
  const height = top + lane * lanes.length + axis;
  const span = Math.max(total, 1);
  const px = (t: number) => labelWidth + (plot * t) / span;
  const body = lanes.map((l, i) => {
    const y = top + i * lane;
    const merged: [number, number][] = [];
    const gap = span / plot;
    for (const [s, e] of l.intervals) {
      const last = merged[merged.length - 1];
      if (last && s - last[1] < gap) last[1] = Math.max(last[1], e);
      else merged.push([s, e]);
    }
    const rects = merged.map(([s, e]) => `<rect x="${px(s).toFixed(2)}" y="${y + 3}" width="${Math.max(0.5, px(e) - px(s)).toFixed(2)}" height="${lane - 6}" fill="${l.color}"/>`);
    return (
      `<text x="${labelWidth - 6}" y="${y + 15}" text-anchor="end">${esc(l.label)}</text>` +
      `<rect x="${labelWidth}" y="${y + 3}" width="${plot}" height="${lane - 6}" fill="#f2f2f2"/>` +
      `<g class="lane" data-chunk="${esc(l.label)}">${rects.join("")}</g>` +
      `<text x="${labelWidth + plot + 6}" y="${y + 15}">${esc(l.note)}</text>`
    );
  });
  const ticks = niceTicks(span).map((t) => {
    const x = px(t).toFixed(1);
    const y = top + lane * lanes.length;
    return `<line x1="${x}" y1="${y}" x2="${x}" y2="${y + 4}" stroke="#555"/><text x="${x}" y="${y + 16}" text-anchor="middle">${esc(shortNumber(t))}</text>`;
  });
  return (
    `<svg id="${esc(id)}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}" ${FONT}>` +
    `<title>${esc(title)}</title><text x="0" y="13" font-weight="bold">${esc(title)}</text>${body.join("")}${ticks.join("")}` +
    `<text x="${labelWidth + plot}" y="${height - 2}" text-anchor="end">${esc(options.unit ?? "cycles")}</text></svg>`
  );
}

/** About six round tick values from 0 to `max`. */
export function niceTicks(max: number): number[] {
  const raw = max / 6;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = 0; t <= max; t += step) out.push(t);
  return out;
}

export function shortNumber(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(v);
}
