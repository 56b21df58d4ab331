// `lorasft plot OUT_DIR [--out FILE.svg] [--overwrite]`: loss curves of a job from its metrics.jsonl.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { parseFlags } from '../util/args.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { metricsFile, readMetrics } from '../train/metrics.ts';
import { isLossCurveSvg, lossCurveSvg, type PlotMarks } from '../report/plot.ts';
import { requireOutputFile, withFsErrors } from '../util/paths.ts';
import { requireDir, requireFile } from '../util/files.ts';

const HELP = `usage: lorasft plot OUT_DIR [--out FILE.svg] [--overwrite]

Writes the train/eval loss curves of the job in OUT_DIR (from OUT_DIR/metrics.jsonl) as an SVG,
by default OUT_DIR/loss.svg. A plot lorasft wrote before is replaced; any other existing file
is refused unless --overwrite is given.`;

/** Refuses an existing --out that is not a plot lorasft wrote (an adapter, the metrics...) unless --overwrite. */
function requireReplaceable(out: string, overwrite: boolean, metrics: string): void {
  if (path.resolve(out) === path.resolve(metrics))
    throw new UserError(`--out ${out}: must differ from the metrics file the plot is drawn from`);
  let st: fs.Stats;
  try {
    st = fs.statSync(out);
  } catch {
    return; // nothing there yet
  }
  if (overwrite) return;
  // A plot is at most a few MB; anything larger (or not a regular file) is not one.
  if (st.isFile() && st.size < 64 << 20 && isLossCurveSvg(fs.readFileSync(out, 'utf8'))) return;
  throw new UserError(
    `${out}: exists and is not a plot lorasft wrote; choose another --out, or pass --overwrite to replace it`,
  );
}

export const run = withFsErrors(async (argv: string[]): Promise<number> => {
  const { values, positionals } = parseFlags('plot', argv, {
    out: { type: 'string' },
    overwrite: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UserError(
      `lorasft plot: expected one OUT_DIR, got ${positionals.length} (usage: lorasft plot OUT_DIR [--out FILE.svg] [--overwrite])`,
    );
  const dir = positionals[0];
  requireDir(dir, 'the output dir of a lorasft train run');
  if (!fs.existsSync(metricsFile(dir)))
    throw new UserError(`${metricsFile(dir)}: not found (is ${dir} the output dir of a lorasft train run?)`);
  requireFile(metricsFile(dir));
  const out = values.out ?? path.join(dir, 'loss.svg');
  requireOutputFile(out, '--out', 'loss.svg');
  requireReplaceable(out, values.overwrite === true, metricsFile(dir));
  const rows = readMetrics(dir);
  if (
    !rows.some(
      (r) => ('train_loss' in r && Number.isFinite(r.train_loss)) || ('eval_loss' in r && Number.isFinite(r.eval_loss)),
    )
  ) {
    throw new UserError(`${metricsFile(dir)}: no loss values yet`);
  }
  // Title: the job's displayName, else its id (the last part of its resource name), else the dir name.
  let title = path.basename(path.resolve(dir));
  const marks: PlotMarks = {};
  try {
    const job = JSON.parse(fs.readFileSync(path.join(dir, 'job.json'), 'utf8'));
    title = `${job.displayName || String(job.name).split('/').pop()} (${String(job.state).replace('JOB_STATE_', '')})`;
    if (job.state === 'JOB_STATE_EARLY_STOPPED') marks.earlyStopStep = Math.max(...rows.map((r) => r.step));
  } catch {
    // job.json is optional for plotting
  }
  writeFileAtomic(out, lossCurveSvg(rows, title, marks));
  console.log(`wrote ${out}`);
  return 0;
});
