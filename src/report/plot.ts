// Loss curves as a self-contained SVG (no dependencies): train loss per step (line), eval loss (line + dots),
// epoch boundaries and the best-eval / early-stop step marked, integer step ticks, a log y axis when the
// losses span more than 10x, and a legend of what is drawn.
import type { EvalRow, MetricsRow, TrainRow } from '../train/metrics.ts';

const W = 800;
const H = 480;
const M = { left: 64, right: 24, top: 40, bottom: 48 };

/** About n "nice" tick values (1, 2, 5 x 10^k steps) covering [lo, hi]; `minStep` 1 gives integer ticks. */
export function niceTicks(lo: number, hi: number, n = 5, minStep = 0): number[] {
  if (!(hi > lo)) return [lo];
  const raw = Math.max((hi - lo) / n, minStep);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Ticks for a log axis over [lo, hi] (lo > 0): 1, 2, 5 x 10^k inside the range. */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
    for (const f of [1, 2, 5]) {
      const v = Number((f * 10 ** k).toPrecision(12));
      if (v >= lo && v <= hi) out.push(v);
    }
  }
  return out;
}

const SVG_OPEN = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`;
const Y_LABEL = 'loss (token-weighted CE';

/** Whether `text` is an SVG that lossCurveSvg wrote (any version: same opening tag and y-axis label). */
export function isLossCurveSvg(text: string): boolean {
  return text.startsWith(SVG_OPEN + '\n') && text.includes(`>${Y_LABEL}`) && text.trimEnd().endsWith('</svg>');
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface PlotMarks {
  /** The step where early stopping ended the job (job state EARLY_STOPPED). */
  earlyStopStep?: number;
}

/** Steps where an epoch ends (a train row whose epoch is a whole number), the last step excluded. */
function epochEnds(train: TrainRow[]): number[] {
  const last = train.length ? train[train.length - 1].step : 0;
  return train
    .filter((r) => r.epoch > 0 && Math.abs(r.epoch - Math.round(r.epoch)) < 1e-9 && r.step !== last)
    .map((r) => r.step);
}

export function lossCurveSvg(rows: MetricsRow[], title: string, marks: PlotMarks = {}): string {
  const train = rows.filter((r): r is TrainRow => 'train_loss' in r && Number.isFinite(r.train_loss));
  const evals = rows.filter((r): r is EvalRow => 'eval_loss' in r && Number.isFinite(r.eval_loss));
  if (!train.length && !evals.length) throw new Error('no finite losses to plot');
  const xs = [...train.map((r) => r.step), ...evals.map((r) => r.step)];
  const ys = [...train.map((r) => r.train_loss), ...evals.map((r) => r.eval_loss)];
  const x0 = Math.min(0, ...xs);
  let x1 = Math.max(...xs);
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) x1 = x0 + 1;
  const log = y0 > 0 && y1 / y0 > 10;
  if (log) [y0, y1] = [y0 / 1.15, y1 * 1.15];
  else {
    if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
    const pad = (y1 - y0) * 0.05;
    // 0 is the floor only for losses that are all >= 0 (a negative root weight gives negative losses).
    [y0, y1] = [y0 >= 0 ? Math.max(0, y0 - pad) : y0 - pad, y1 + pad];
  }
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * pw;
  const fy = (y: number) => (log ? Math.log10(y) : y);
  const sy = (y: number) => M.top + (1 - (fy(y) - fy(y0)) / (fy(y1) - fy(y0))) * ph;
  const pts = (p: [number, number][]) => p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
  const vline = (x: number, color: string, dash: string, label: string) =>
    `<line x1="${sx(x).toFixed(1)}" x2="${sx(x).toFixed(1)}" y1="${M.top}" y2="${H - M.bottom}" stroke="${color}" stroke-dasharray="${dash}"/>` +
    `<text x="${(sx(x) + 3).toFixed(1)}" y="${M.top + 12}" fill="${color}" font-size="11">${esc(label)}</text>`;

  const out: string[] = [];
  out.push(SVG_OPEN);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`);
  for (const t of log ? logTicks(y0, y1) : niceTicks(y0, y1)) {
    out.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#e5e5e5"/>`,
    );
    out.push(`<text x="${M.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end">${t}</text>`);
  }
  for (const t of niceTicks(x0, x1, 8, 1)) {
    out.push(
      `<line x1="${sx(t).toFixed(1)}" x2="${sx(t).toFixed(1)}" y1="${H - M.bottom}" y2="${H - M.bottom + 5}" stroke="#333"/>`,
    );
    out.push(`<text x="${sx(t).toFixed(1)}" y="${H - M.bottom + 18}" text-anchor="middle">${t}</text>`);
  }
  epochEnds(train).forEach((s, i) => out.push(vline(s, '#999', '2,3', `epoch ${i + 1}`)));
  if (evals.length > 1) {
    const best = evals.reduce((b, r) => (r.eval_loss < b.eval_loss ? r : b));
    out.push(vline(best.step, '#2ca02c', '5,3', `best eval ${best.eval_loss.toFixed(3)} @ ${best.step}`));
  }
  if (marks.earlyStopStep !== undefined) out.push(vline(marks.earlyStopStep, '#ff7f0e', '6,2', 'early stop'));
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle">optimizer step</text>`);
  out.push(
    `<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${Y_LABEL}${log ? ', log scale' : ''})</text>`,
  );
  if (train.length)
    out.push(
      `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${pts(train.map((r) => [r.step, r.train_loss]))}"/>`,
    );
  if (evals.length) {
    out.push(
      `<polyline fill="none" stroke="#d62728" stroke-width="2" points="${pts(evals.map((r) => [r.step, r.eval_loss]))}"/>`,
    );
    for (const r of evals)
      out.push(`<circle cx="${sx(r.step).toFixed(1)}" cy="${sy(r.eval_loss).toFixed(1)}" r="3" fill="#d62728"/>`);
  }
  const lx = W - M.right - 130;
  const legend = [
    ...(train.length ? [['#1f77b4', 'train loss']] : []),
    ...(evals.length ? [['#d62728', 'eval loss']] : []),
  ];
  legend.forEach(([color, label], i) =>
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${M.top + 28 + 18 * i}" y2="${M.top + 28 + 18 * i}" stroke="${color}" stroke-width="2"/><text x="${lx + 30}" y="${M.top + 32 + 18 * i}">${label}</text>`,
    ),
  );
  out.push('</svg>');
  return out.join('\n') + '\n';
}
