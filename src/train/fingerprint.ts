// OUT_DIR/inputs.json: what a job was started on, so that a resume on changed inputs is refused instead of
// training on mixed data: sha256 + size of each dataset, of the base model's config.json, tokenizer files and
// tensor index (names, dtypes, shapes, offsets: weights are not hashed, that would read GBs), of the chat
// template override and warm-start adapter, and the run-shaping hyperparameters by value.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { hashFile, hashText } from '../util/hash.ts';
import { listModelTensors } from '../model/safetensors.ts';
import type { TrainConfig } from './config.ts';
import { FIELDS } from './config_fields.ts';
import { listCheckpoints } from './checkpoint.ts';

export const INPUTS_FILE = 'inputs.json';

/** Fields that do not shape the run: where things are (their content is hashed instead) and how fast it runs. */
const NOT_RUN_SHAPING = new Set([
  'dataset',
  'baseModel',
  'outputModel',
  'evaluationDataset',
  'warmStartFrom',
  'jinjaTemplate',
  'displayName',
  'jobId',
  'backend',
  'threads',
]);

export interface Fingerprint {
  /** Input name (e.g. 'dataset', 'base model tensor index') -> sha256:size of its bytes. */
  inputs: Record<string, string>;
  /** Run-shaping config fields by value. */
  hyperparameters: Record<string, unknown>;
}

const fileId = (f: string) => `sha256:${hashFile(f)}:${fs.statSync(f).size}`;

export function fingerprint(cfg: TrainConfig): Fingerprint {
  const inputs: Record<string, string> = { dataset: fileId(cfg.dataset) };
  if (cfg.evaluationDataset) inputs.evaluationDataset = fileId(cfg.evaluationDataset);
  const model = cfg.baseModel;
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) {
    if (fs.existsSync(path.join(model, f))) inputs[`base model ${f}`] = fileId(path.join(model, f));
  }
  const index = [...listModelTensors(model)]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, t]) => [name, path.basename(t.file), t.info.dtype, t.info.shape, t.info.begin, t.info.end]);
  inputs['base model tensor index'] = `sha256:${hashText(JSON.stringify(index))}:${index.length}`;
  if (cfg.jinjaTemplate)
    inputs.jinjaTemplate = fs.existsSync(cfg.jinjaTemplate)
      ? fileId(cfg.jinjaTemplate)
      : `sha256:${hashText(cfg.jinjaTemplate)}`;
  if (cfg.warmStartFrom)
    for (const f of ['adapter_config.json', 'adapter_model.safetensors'])
      inputs[`warm-start ${f}`] = fileId(path.join(cfg.warmStartFrom, f));
  const hyperparameters: Record<string, unknown> = {};
  for (const key of Object.keys(FIELDS))
    if (!NOT_RUN_SHAPING.has(key)) hyperparameters[key] = (cfg as unknown as Record<string, unknown>)[key];
  return { inputs, hyperparameters };
}

export function writeFingerprint(outDir: string, fp: Fingerprint): void {
  writeFileAtomic(path.join(outDir, INPUTS_FILE), JSON.stringify(fp, null, 2) + '\n');
}

/**
 * inputs.json records what run-shaping settings left 'auto' resolved to (precision), the first time they resolve:
 * in the run that started the job, or in the resume of a job stopped before that (resume continues with them).
 */
export function recordResolved(outDir: string, resolved: Partial<TrainConfig>): void {
  const was = JSON.parse(fs.readFileSync(path.join(outDir, INPUTS_FILE), 'utf8')) as Fingerprint;
  writeFingerprint(outDir, { ...was, hyperparameters: { ...was.hyperparameters, ...resolved } });
}

/** Where the inputs of the job differ from those it was started on, in words; [] when they match. */
function fingerprintChanges(was: Fingerprint, now: Fingerprint, cfg: TrainConfig): string[] {
  const where: Record<string, string> = {
    dataset: cfg.dataset,
    evaluationDataset: cfg.evaluationDataset,
    jinjaTemplate: cfg.jinjaTemplate,
  };
  const changes: string[] = [];
  for (const k of new Set([...Object.keys(was.inputs), ...Object.keys(now.inputs)])) {
    if (was.inputs[k] === now.inputs[k]) continue;
    const name = where[k]
      ? `${k} ${where[k]}`
      : k.startsWith('base model')
        ? `${k} (${cfg.baseModel})`
        : k.startsWith('warm-start')
          ? `${k} (${cfg.warmStartFrom})`
          : k;
    const size = (id?: string) => (id?.split(':')[2] ? `${id.split(':')[2]} bytes` : 'absent');
    changes.push(
      !was.inputs[k] || !now.inputs[k]
        ? `${name} was ${size(was.inputs[k])}, now ${size(now.inputs[k])}`
        : `${name} changed (${size(was.inputs[k])} -> ${size(now.inputs[k])}, other content)`,
    );
  }
  for (const k of new Set([...Object.keys(was.hyperparameters), ...Object.keys(now.hyperparameters)])) {
    if (JSON.stringify(was.hyperparameters[k]) !== JSON.stringify(now.hyperparameters[k]))
      changes.push(`${k} ${JSON.stringify(was.hyperparameters[k])} -> ${JSON.stringify(now.hyperparameters[k])}`);
  }
  return changes;
}

/**
 * At resume: refuse (one UserError line) when the inputs changed since the job started. A job started by an
 * older lorasft (no inputs.json) is fingerprinted now, with a notice.
 */
export function checkFingerprint(outDir: string, cfg: TrainConfig, notice: (m: string) => void): TrainConfig {
  const file = path.join(outDir, INPUTS_FILE);
  if (!fs.existsSync(file)) {
    // Killed before it was written (nothing trained yet), or a job of an older lorasft.
    if (listCheckpoints(outDir).length)
      notice(
        `${outDir}: no ${INPUTS_FILE} (job started by an older lorasft); cannot tell whether its inputs changed; recording them now`,
      );
    writeFingerprint(outDir, fingerprint(cfg));
    return cfg;
  }
  let was: Fingerprint;
  try {
    was = JSON.parse(fs.readFileSync(file, 'utf8')) as Fingerprint;
    if (!was.inputs || !was.hyperparameters) throw new Error('missing inputs / hyperparameters');
  } catch (e) {
    throw new UserError(`${file}: unreadable (${(e as Error).message}); cannot check the job's inputs before resuming`);
  }
  // precision 'auto' continues with what it resolved to when the job started (the checkpoints were made with it).
  const recorded = was.hyperparameters.precision;
  if (cfg.precision === 'auto' && (recorded === 'fp32' || recorded === 'bf16')) cfg = { ...cfg, precision: recorded };
  const changes = fingerprintChanges(was, fingerprint(cfg), cfg);
  if (changes.length)
    throw new UserError(
      `cannot resume ${outDir}: its inputs changed since the job started: ${changes.join('; ')}; restore them, or start a new job`,
    );
  return cfg;
}
