// Progress display: a one-line bar redrawn in place on a TTY (step/total, loss, eval loss, tok/s, ETA),
// plain log lines otherwise (CI, files, pipes).

export interface ProgressInfo {
  step: number;
  total: number;
  epoch: number;
  trainLoss: number;
  evalLoss: number | null;
  tokensPerS: number;
  /** Seconds per step, averaged over this run's steps. */
  secPerStep: number;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/**
 * The terminal line within `width` columns: fields are dropped by priority (bar, epoch, tok/s, eval loss,
 * loss); step/total and ETA always stay.
 */
export function fitLine(p: ProgressInfo, eta: string, width: number): string {
  const bar = (w: number) => {
    const filled = Math.round((w * p.step) / p.total);
    return `[${'#'.repeat(filled)}${'.'.repeat(w - filled)}]`;
  };
  // [priority (lower is dropped first), text]; in display order.
  const fields: [number, string][] = [
    [0, bar(24)],
    [6, `${p.step}/${p.total}`],
    [1, `ep ${p.epoch.toFixed(2)}`],
    [4, `loss ${p.trainLoss.toFixed(4)}`],
    [3, p.evalLoss === null ? '' : `eval ${p.evalLoss.toFixed(4)}`],
    [2, `| ${Math.round(p.tokensPerS)} tok/s`],
    [6, `| ETA ${eta}`],
  ];
  const line = () =>
    fields
      .filter(([, t]) => t)
      .map(([, t]) => t)
      .join(' ');
  for (let drop = 0; drop < 5 && line().length > width; drop++) for (const f of fields) if (f[0] === drop) f[1] = '';
  return line();
}

export class Progress {
  private barShown = false;
  private readonly logEvery: number;

  constructor(
    private readonly out: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean; columns?: number },
    total: number,
  ) {
    // Plain mode: about 100 lines per run at most.
    this.logEvery = Math.max(1, Math.ceil(total / 100));
  }

  get tty(): boolean {
    return Boolean(this.out.isTTY);
  }

  step(p: ProgressInfo): void {
    const ev = p.evalLoss === null ? '' : ` eval ${p.evalLoss.toFixed(4)}`;
    const eta = formatDuration((p.total - p.step) * p.secPerStep);
    const stats = `loss ${p.trainLoss.toFixed(4)}${ev} | ${Math.round(p.tokensPerS)} tok/s | ETA ${eta}`;
    if (this.tty) {
      const cols = (this.out as { columns?: number }).columns ?? 80;
      this.out.write(`\r\x1b[K${fitLine(p, eta, cols - 1)}`);
      this.barShown = true;
    } else if (p.step % this.logEvery === 0 || p.step === p.total) {
      this.out.write(`step ${p.step}/${p.total} epoch ${p.epoch.toFixed(2)} ${stats}\n`);
    }
  }

  /** A message on its own line (the bar is redrawn on the next step). */
  log(msg: string): void {
    if (this.barShown) this.out.write('\r\x1b[K');
    this.barShown = false;
    this.out.write(msg + '\n');
  }

  end(): void {
    if (this.barShown) this.out.write('\n');
    this.barShown = false;
  }
}
