// The two figures of bench/plots.mjs as hand-written SVG (no plotting dependency): fixed sizes, coordinates
// rounded to 0.1 px, so the same captures always give the same bytes.
// Colours are Okabe-Ito (readable with the common colour-vision deficiencies); voice is also told apart
// by filled vs hollow marks, so the figures survive a grey-scale print.

const VOICE = '#0072B2';
const NOT_VOICE = '#D55E00';
const AFTER = '#999999';
const INK = '#222222';
const GRID = '#dddddd';

const px = (x) => (Math.round(x * 10) / 10).toFixed(1);
const esc = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const text = (x, y, s, attrs = '') => `<text x="${px(x)}" y="${px(y)}"${attrs ? ' ' + attrs : ''}>${esc(s)}</text>`;
const line = (x1, y1, x2, y2, attrs) => `<line x1="${px(x1)}" y1="${px(y1)}" x2="${px(x2)}" y2="${px(y2)}" ${attrs}/>`;

function svgDocument(width, height, title, body) {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12" fill="${INK}">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** "1k", "10k", "100" for log-axis ticks. */
function bytesLabel(bytes) {
  if (bytes >= 1000) return `${bytes / 1000} kB`;
  return `${bytes} B`;
}

/**
 * Small multiples: one panel per picked burst, bytes per slot on a shared log axis (so a 400-byte slot of
 * an Echo Dot is as visible as a 15-kB slot of a Nest Mini: what matters is which slots are occupied).
 */
export function uploadTimelinesSvg(panels, { slotMs, windowS }) {
  const columns = 4;
  const panelW = 230;
  const panelH = 130;
  const gapX = 22;
  const left = 70;
  const top = 58;
  const rowH = panelH + 78;
  const rows = Math.ceil(panels.length / columns);
  const width = left + columns * panelW + (columns - 1) * gapX + 20;
  const height = top + rows * rowH + 30;
  const maxSlot = Math.max(...panels.flatMap((p) => p.slots.map((s) => s.own + s.other)));
  const yMin = 50;
  const yMax = 10 ** Math.ceil(Math.log10(maxSlot));
  const slotsPerWindow = Math.round((windowS * 1000) / slotMs);
  const body = [];
  body.push(text(left, 22, `Upload bytes per ${slotMs} ms, ${windowS} s from the first packet of the burst`, 'font-size="15" font-weight="bold"'));
  body.push(text(left, 40, 'Top: voice uploads. Bottom: bursts that are not voice. Grey: upload after the burst ended (gap > 1 s). Same axes throughout.', 'font-size="11"'));
  panels.forEach((panel, index) => {
    const column = index % columns;
    const row = Math.floor(index / columns);
    const x0 = left + column * (panelW + gapX);
    const y0 = top + row * rowH + 30;
    const yOf = (bytes) => y0 + panelH - (Math.log10(Math.max(bytes, yMin) / yMin) / Math.log10(yMax / yMin)) * panelH;
    const colour = panel.voice ? VOICE : NOT_VOICE;
    const out = [`<g class="panel" data-file="${esc(panel.file)}" data-start-us="${panel.startUs}" data-voice="${panel.voice}">`];
    out.push(text(x0, y0 - 16, panel.title, 'font-weight="bold"'));
    const b = panel.burst;
    out.push(text(x0, y0 - 3, `${(b.bytes / 1000).toFixed(1)} kB, ${b.slots} slot${b.slots === 1 ? '' : 's'}, ${b.durationS.toFixed(2)} s, ${b.packets} packets`, 'font-size="11"'));
    for (let tick = 100; tick <= yMax; tick *= 10) {
      out.push(line(x0, yOf(tick), x0 + panelW, yOf(tick), `stroke="${GRID}"`));
      if (column === 0) out.push(text(x0 - 6, yOf(tick) + 4, bytesLabel(tick), 'text-anchor="end" font-size="10"'));
    }
    for (let s = 0; s <= windowS; s++) {
      const x = x0 + (s / windowS) * panelW;
      out.push(line(x, y0 + panelH, x, y0 + panelH + 4, `stroke="${INK}"`));
      out.push(text(x, y0 + panelH + 15, String(s), 'text-anchor="middle" font-size="10"'));
    }
    out.push(line(x0, y0 + panelH, x0 + panelW, y0 + panelH, `stroke="${INK}"`));
    out.push(line(x0, y0, x0, y0 + panelH, `stroke="${INK}"`));
    const slotW = panelW / slotsPerWindow;
    for (const cell of panel.slots) {
      const bytes = cell.own + cell.other;
      // at least 1.5 px, so that a slot holding one small frame still shows as occupied
      const yTop = Math.min(yOf(bytes), y0 + panelH - 1.5);
      out.push(`<rect class="bar ${cell.own ? 'own' : 'after'}" x="${px(x0 + cell.slot * slotW + 0.5)}" y="${px(yTop)}" width="${px(slotW - 1)}" height="${px(y0 + panelH - yTop)}" fill="${cell.own ? colour : AFTER}"><title>${esc(`${(cell.slot * slotMs) / 1000} s: ${bytes} B`)}</title></rect>`);
    }
    out.push(text(x0 + panelW, y0 + panelH + 28, `s  (${panel.file})`, 'text-anchor="end" font-size="9" fill="#666666"'));
    out.push('</g>');
    body.push(...out);
  });
  for (let row = 0; row < rows; row++) {
    const y = top + row * rowH + 30 + panelH / 2;
    body.push(text(18, y, 'bytes per slot (log)', `transform="rotate(-90 18 ${px(y)})" text-anchor="middle" font-size="11"`));
  }
  return svgDocument(width, height, 'Upload bytes per 100 ms: voice uploads vs non-voice bursts', body);
}

/** Marker shapes per device model, in a fixed order so the legend and the marks agree. */
const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'triangle-down'];

function markPath(shape, x, y, r) {
  switch (shape) {
    case 'circle':
      return `M${px(x - r)} ${px(y)}a${px(r)} ${px(r)} 0 1 0 ${px(2 * r)} 0a${px(r)} ${px(r)} 0 1 0 ${px(-2 * r)} 0Z`;
    case 'square':
      return `M${px(x - r * 0.85)} ${px(y - r * 0.85)}h${px(1.7 * r)}v${px(1.7 * r)}h${px(-1.7 * r)}Z`;
    case 'triangle':
      return `M${px(x)} ${px(y - r * 1.1)}L${px(x + r)} ${px(y + r * 0.75)}L${px(x - r)} ${px(y + r * 0.75)}Z`;
    case 'diamond':
      return `M${px(x)} ${px(y - r * 1.15)}L${px(x + r)} ${px(y)}L${px(x)} ${px(y + r * 1.15)}L${px(x - r)} ${px(y)}Z`;
    default:
      return `M${px(x)} ${px(y + r * 1.1)}L${px(x + r)} ${px(y - r * 0.75)}L${px(x - r)} ${px(y - r * 0.75)}Z`;
  }
}

const markAttrs = (voice) => (voice ? `fill="${VOICE}" fill-opacity="0.7" stroke="${VOICE}"` : `fill="#ffffff" fill-opacity="0.6" stroke="${NOT_VOICE}" stroke-width="1.4"`);

/**
 * Scatter of every burst: occupied 100-ms slots (x) against bytes (y, log), voice filled blue, not voice
 * hollow vermilion, one shape per device model; thresholds as dashed lines.
 */
export function slotsVsBytesSvg(bursts, thresholds) {
  const width = 820;
  const height = 560;
  const plot = { x: 80, y: 60, w: 520, h: 430 };
  const models = [...new Set(bursts.map((b) => b.model))].sort();
  const shapeOf = new Map(models.map((m, i) => [m, SHAPES[i % SHAPES.length]]));
  const xMax = Math.ceil(Math.max(...bursts.map((b) => b.slots), 10) / 10) * 10;
  const yMin = 2000;
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...bursts.map((b) => b.bytes))));
  const xOf = (slots) => plot.x + (slots / xMax) * plot.w;
  const yOf = (bytes) => plot.y + plot.h - (Math.log10(bytes / yMin) / Math.log10(yMax / yMin)) * plot.h;
  const body = [];
  body.push(text(plot.x, 24, 'Upload bursts of the speakers: occupied 100-ms slots vs bytes', 'font-size="15" font-weight="bold"'));
  body.push(text(plot.x, 42, `Every burst >= 3 kB (no gap > 1 s) in the labelled captures; ${bursts.length} bursts.`, 'font-size="11"'));
  // grid and axes
  for (const tick of [3000, 10000, 30000, 100000, 300000, 1000000].filter((t) => t >= yMin && t <= yMax)) {
    body.push(line(plot.x, yOf(tick), plot.x + plot.w, yOf(tick), `stroke="${GRID}"`));
    body.push(text(plot.x - 6, yOf(tick) + 4, bytesLabel(tick), 'text-anchor="end" font-size="11"'));
  }
  for (let s = 0; s <= xMax; s += 5) {
    body.push(line(xOf(s), plot.y, xOf(s), plot.y + plot.h, `stroke="${s % 10 === 0 ? GRID : '#f0f0f0'}"`));
    if (s % 10 === 0) body.push(text(xOf(s), plot.y + plot.h + 16, String(s), 'text-anchor="middle" font-size="11"'));
  }
  body.push(`<rect x="${px(plot.x)}" y="${px(plot.y)}" width="${px(plot.w)}" height="${px(plot.h)}" fill="none" stroke="${INK}"/>`);
  body.push(text(plot.x + plot.w / 2, plot.y + plot.h + 36, 'occupied 100-ms slots (from the burst\'s first packet)', 'text-anchor="middle"'));
  const yMid = plot.y + plot.h / 2;
  body.push(text(22, yMid, 'bytes uploaded in the burst (log)', `transform="rotate(-90 22 ${px(yMid)})" text-anchor="middle"`));
  // thresholds: keys in sorted order so the output does not depend on the JSON's key order
  const drawn = [];
  for (const key of Object.keys(thresholds).sort()) {
    const value = thresholds[key];
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    if (/Slots$/.test(key) && value >= 0 && value <= xMax) {
      body.push(`<g class="threshold" data-key="${esc(key)}">${line(xOf(value), plot.y, xOf(value), plot.y + plot.h, `stroke="${INK}" stroke-dasharray="6 4"`)}${text(xOf(value) + 4, plot.y + 14, `${key} = ${value}`, 'font-size="11"')}</g>`);
      drawn.push(key);
    } else if (/Bytes$/.test(key) && value >= yMin && value <= yMax) {
      body.push(`<g class="threshold" data-key="${esc(key)}">${line(plot.x, yOf(value), plot.x + plot.w, yOf(value), `stroke="${INK}" stroke-dasharray="6 4"`)}${text(plot.x + plot.w - 4, yOf(value) - 4, `${key} = ${value}`, 'text-anchor="end" font-size="11"')}</g>`);
      drawn.push(key);
    }
  }
  // not-voice marks first, so the hollow ones are not hidden under the many voice uploads
  const ordered = [...bursts].sort((a, b) => Number(a.voice) - Number(b.voice) || (a.file < b.file ? -1 : a.file > b.file ? 1 : a.firstUs - b.firstUs));
  body.push('<g class="marks">');
  for (const b of ordered) {
    const d = markPath(shapeOf.get(b.model), xOf(b.slots), yOf(b.bytes), 4.5);
    body.push(`<path class="mark" data-voice="${b.voice}" data-model="${esc(b.model)}" data-file="${esc(b.file)}" data-start-us="${b.firstUs}" data-slots="${b.slots}" data-bytes="${b.bytes}" d="${d}" ${markAttrs(b.voice)}><title>${esc(`${b.file}: ${b.slots} slots, ${b.bytes} B, ${b.durationS.toFixed(2)} s, ${b.voice ? 'voice' : 'not voice'}`)}</title></path>`);
  }
  body.push('</g>');
  // legend
  const lx = plot.x + plot.w + 24;
  let ly = plot.y + 8;
  body.push(text(lx, ly, 'class', 'font-weight="bold"'));
  for (const voice of [true, false]) {
    ly += 20;
    const n = bursts.filter((b) => b.voice === voice).length;
    body.push(`<path class="legend" d="${markPath('circle', lx + 6, ly - 4, 5)}" ${markAttrs(voice)}/>`);
    body.push(text(lx + 18, ly, `${voice ? 'voice' : 'not voice'} (${n})`));
  }
  ly += 32;
  body.push(text(lx, ly, 'device model', 'font-weight="bold"'));
  for (const model of models) {
    ly += 20;
    const n = bursts.filter((b) => b.model === model).length;
    body.push(`<path class="legend" d="${markPath(shapeOf.get(model), lx + 6, ly - 4, 5)}" fill="none" stroke="${INK}"/>`);
    body.push(text(lx + 18, ly, `${model} (${n})`));
  }
  if (drawn.length) {
    ly += 32;
    body.push(text(lx, ly, 'dashed: detector thresholds', 'font-size="11"'));
  }
  return svgDocument(width, height, 'Occupied 100-ms slots vs bytes of every upload burst, voice vs not voice', body);
}
