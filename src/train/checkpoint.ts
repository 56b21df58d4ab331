// Resumable checkpoints: OUT_DIR/checkpoints/step-NNNNNN/ holding
//   state.safetensors   param/<name>, adam_m/<name>, adam_v/<name>, best/<name> (the best-eval adapter, if any)
//   trainer_state.json  step, optimizer step, early-stop bookkeeping, token counters (data order and dropout
//                       are functions of (seed, epoch, step), so the step is all the data-order state needed)
//   adapter_config.json + adapter_model.safetensors   the PEFT adapter at this step (usable as-is)
//   manifest.json       size and sha256 of every file above, written last
// A checkpoint is written to a temp dir and renamed into place, so a killed process leaves either the old
// set of checkpoints or the old set plus one complete new one; a failed write removes the temp dir. At resume
// a checkpoint whose files do not match its manifest (truncated, edited, no manifest) is skipped with one line.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomic.ts';
import { hashFile } from '../util/hash.ts';
import { readSafetensors, writeSafetensors, type FloatTensor } from '../model/safetensors.ts';

export interface TrainerState {
  /** Optimizer steps completed. */
  step: number;
  totalSteps: number;
  /** Best eval loss so far and the step it was measured at (null before the first evaluation). */
  bestEvalLoss: number | null;
  bestStep: number;
  /** Evaluations since the best one (early stop when it reaches earlyStopPatience). */
  evalsWithoutImprovement: number;
  inputTokens: number;
  outputTokens: number;
  /** Wall-clock seconds spent training before this checkpoint (summed over resumed runs). */
  elapsedS: number;
}

export interface Checkpoint {
  state: TrainerState;
  params: Map<string, FloatTensor>;
  adam: { step: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> };
  best: Map<string, FloatTensor> | null;
}

export function checkpointsDir(outDir: string): string {
  return path.join(outDir, 'checkpoints');
}

function stepDirName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

/** Write checkpoint atomically; `writeAdapter(dir)` adds the PEFT adapter files. Keeps the newest `keep` checkpoints. */
export function saveCheckpoint(
  outDir: string,
  ck: Checkpoint,
  writeAdapter: (dir: string) => void,
  keep: number,
): string {
  const root = checkpointsDir(outDir);
  fs.mkdirSync(root, { recursive: true });
  const final = path.join(root, stepDirName(ck.state.step));
  const tmp = path.join(root, `.tmp-${stepDirName(ck.state.step)}-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    writeCheckpointFiles(tmp, ck, writeAdapter);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true }); // a full disk leaves no half-written checkpoint behind
    throw e;
  }
  // Replace a checkpoint of the same step (a resumed run redoing steps) via a side name, never deleting first.
  if (fs.existsSync(final)) {
    const old = `${final}.old-${process.pid}`;
    fs.renameSync(final, old);
    fs.renameSync(tmp, final);
    fs.rmSync(old, { recursive: true, force: true });
  } else fs.renameSync(tmp, final);
  // Newer ones are damaged ones the resume skipped (it takes the newest whole one): the run is redoing their steps.
  const all = listCheckpoints(outDir);
  for (const newer of all.filter((d) => d > final)) fs.rmSync(newer, { recursive: true, force: true });
  for (const stale of all.filter((d) => d <= final).slice(0, -keep)) fs.rmSync(stale, { recursive: true, force: true });
  return final;
}

/**
 * At resume, before the checkpoints are read (the job lock held, so no other writer): the side dirs of checkpoint
 * writes that a killed process left (.tmp-step-N-PID, step-N.old-PID) are removed, unless step-N is missing and the
 * side dir is whole (killed between saveCheckpoint's two renames): then it goes back into place.
 */
export function recoverCheckpoints(outDir: string): void {
  const root = checkpointsDir(outDir);
  if (!fs.existsSync(root)) return;
  for (const d of fs.readdirSync(root).sort()) {
    const m = /^(?:\.tmp-(step-\d+)-\d+|(step-\d+)\.old-\d+)$/.exec(d);
    if (!m) continue;
    const side = path.join(root, d);
    const final = path.join(root, m[1] ?? m[2]);
    if (!fs.existsSync(final) && checkpointProblem(side) === null) fs.renameSync(side, final);
    else fs.rmSync(side, { recursive: true, force: true });
  }
}

function writeCheckpointFiles(tmp: string, ck: Checkpoint, writeAdapter: (dir: string) => void): void {
  const tensors = new Map<string, FloatTensor>();
  for (const [k, t] of ck.params) {
    tensors.set(`param/${k}`, t);
    tensors.set(`adam_m/${k}`, { shape: t.shape, data: ck.adam.m.get(k)! });
    tensors.set(`adam_v/${k}`, { shape: t.shape, data: ck.adam.v.get(k)! });
  }
  if (ck.best) for (const [k, t] of ck.best) tensors.set(`best/${k}`, t);
  writeSafetensors(path.join(tmp, 'state.safetensors'), tensors, { format: 'lorasft-checkpoint' });
  writeFileAtomic(
    path.join(tmp, 'trainer_state.json'),
    JSON.stringify({ ...ck.state, adamStep: ck.adam.step }, null, 2) + '\n',
  );
  writeAdapter(tmp);
  const files: Record<string, { size: number; sha256: string }> = {};
  for (const f of fs.readdirSync(tmp).sort())
    files[f] = { size: fs.statSync(path.join(tmp, f)).size, sha256: hashFile(path.join(tmp, f)) };
  writeFileAtomic(
    path.join(tmp, MANIFEST),
    JSON.stringify({ format: 'lorasft-checkpoint-manifest', files }, null, 2) + '\n',
  );
}

const MANIFEST = 'manifest.json';

/** Why checkpoint `dir` is not whole (its files against manifest.json), or null when it is. */
export function checkpointProblem(dir: string): string | null {
  let files: Record<string, { size: number; sha256: string }>;
  try {
    files = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')).files;
    if (typeof files !== 'object' || files === null || !files['trainer_state.json'] || !files['state.safetensors'])
      return `${MANIFEST} lists no checkpoint files`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? `no ${MANIFEST} (incomplete, or written by an older lorasft)`
      : `${MANIFEST} is unreadable (${code ?? 'invalid JSON'})`;
  }
  for (const [f, want] of Object.entries(files)) {
    const p = path.join(dir, f);
    if (!fs.existsSync(p)) return `${f} is missing`;
    const size = fs.statSync(p).size;
    if (size !== want.size) return `${f} has ${size} bytes, the manifest says ${want.size}`;
    if (hashFile(p) !== want.sha256) return `${f} does not match its sha256 in the manifest`;
  }
  return null;
}

/** Complete checkpoint dirs, oldest first. */
export function listCheckpoints(outDir: string): string[] {
  const root = checkpointsDir(outDir);
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((d) => /^step-\d+$/.test(d))
    .sort()
    .map((d) => path.join(root, d));
}

export function loadCheckpoint(dir: string): Checkpoint {
  const s = JSON.parse(fs.readFileSync(path.join(dir, 'trainer_state.json'), 'utf8')) as TrainerState & {
    adamStep: number;
  };
  const tensors = readSafetensors(path.join(dir, 'state.safetensors'));
  const params = new Map<string, FloatTensor>();
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  let best: Map<string, FloatTensor> | null = null;
  for (const [name, t] of tensors) {
    const slash = name.indexOf('/');
    const kind = name.slice(0, slash);
    const key = name.slice(slash + 1);
    const ft = { shape: t.shape, data: t.data };
    if (kind === 'param') params.set(key, ft);
    else if (kind === 'adam_m') m.set(key, t.data);
    else if (kind === 'adam_v') v.set(key, t.data);
    else if (kind === 'best') (best ??= new Map()).set(key, ft);
  }
  const { adamStep, ...state } = s;
  return { state, params, adam: { step: adamStep, m, v }, best };
}

/**
 * The newest whole checkpoint of a run, or null. Each newer one that fails its manifest is reported through
 * `warn` in one line ('checkpoints/step-000004: trainer_state.json has 12 bytes, ...; using step-000002').
 */
export function loadLatestCheckpoint(
  outDir: string,
  warn: (msg: string) => void = () => {},
): { dir: string; ck: Checkpoint } | null {
  const all = listCheckpoints(outDir);
  const bad: string[] = [];
  for (let i = all.length - 1; i >= 0; i--) {
    const problem = checkpointProblem(all[i]);
    if (!problem) {
      for (const b of bad) warn(`${b}; resuming from ${path.basename(all[i])}`);
      return { dir: all[i], ck: loadCheckpoint(all[i]) };
    }
    bad.push(`${all[i]}: ${problem}`);
  }
  for (const b of bad) warn(`${b}; no whole checkpoint left: starting again from step 0`);
  return null;
}
