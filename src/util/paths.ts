// The paths the job commands (train, merge, plot) read and write, checked before anything is written, so that a
// missing input or an output that cannot be written is one UserError line and no half-made output dir is left.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { openFile, readJsonObject, requireDir, requireFile } from './files.ts';

const MODEL_DIR = 'a Hugging Face model directory with config.json, *.safetensors and tokenizer files';
const ADAPTER_DIR = 'a PEFT adapter directory with adapter_config.json and adapter_model.safetensors';

/** A base model dir given by `flag`: an existing directory holding config.json. */
export function requireModelDir(dir: string, flag: string): void {
  requireDir(dir, `${MODEL_DIR} for ${flag}`);
  requireFile(path.join(dir, 'config.json'), `${flag} expects ${MODEL_DIR}`);
}

/** A PEFT adapter dir given by `flag`: an existing directory holding adapter_config.json. */
export function requireAdapterDir(dir: string, flag: string): void {
  requireDir(dir, `${ADAPTER_DIR} for ${flag}`);
  requireFile(path.join(dir, 'adapter_config.json'), `${flag} expects ${ADAPTER_DIR}`);
}

/**
 * The base model a PEFT adapter names (base_model_name_or_path), when it is a local model dir; else a UserError
 * asking for --base-model. Used when --base-model is not given.
 */
export function adapterBaseModel(adapterDir: string, flag: string): string {
  requireAdapterDir(adapterDir, flag);
  const f = path.join(adapterDir, 'adapter_config.json');
  const base = readJsonObject(f, `${flag} expects ${ADAPTER_DIR}`).base_model_name_or_path;
  if (typeof base !== 'string' || !fs.existsSync(path.join(base, 'config.json'))) {
    throw new UserError(
      `${f}: base_model_name_or_path ${JSON.stringify(base)} is not a local model dir; pass --base-model DIR`,
    );
  }
  return base;
}

/** A data file the job will read (same one-line errors as the dataset reader: missing, a directory, unreadable). */
function requireReadable(file: string, what: string): void {
  const st = statOrNull(file); // stat, not open: opening a FIFO with no writer blocks for ever
  if (st && !st.isFile() && !st.isDirectory()) {
    const kind = st.isFIFO()
      ? 'a pipe (FIFO or process substitution like <(zcat data.jsonl.gz))'
      : st.isSocket()
        ? 'a socket'
        : 'not a regular file';
    throw new UserError(
      `${file}: is ${kind}; a job reads its data again on --resume, so it must be a regular file: write it to one first (e.g. zcat data.jsonl.gz > data.jsonl)`,
    );
  }
  fs.closeSync(openFile(file, what));
}

/** The input paths of a training job (the TrainConfig fields of that name). */
export interface JobInputs {
  dataset: string;
  evaluationDataset: string;
  baseModel: string;
  warmStartFrom: string;
}

/**
 * The files a job reads exist and can be opened, and the base model dir has its tokenizer files: run before its
 * output dir is created or an old job in it replaced (and before a resume touches its job), so a mistyped path is an
 * error line and not a failed job. (checkJobInputs in train.ts adds the weights and the template; the content is
 * checked while the job is VALIDATING.)
 */
export function requireJobInputs(cfg: JobInputs): void {
  requireReadable(cfg.dataset, 'expected a .jsonl dataset');
  if (cfg.evaluationDataset)
    requireReadable(cfg.evaluationDataset, 'expected a .jsonl dataset for --evaluation-dataset');
  requireModelDir(cfg.baseModel, '--base-model');
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    requireFile(path.join(cfg.baseModel, f), `--base-model expects ${MODEL_DIR}`);
  if (cfg.warmStartFrom) requireAdapterDir(cfg.warmStartFrom, '--warm-start-from');
}

/** `p` with its symlinks resolved: the part that exists, then the rest as written (so `a`, `./a/` and a link to it agree). */
export function realPath(p: string): string {
  const abs = path.resolve(p);
  try {
    return fs.realpathSync(abs);
  } catch {
    const up = path.dirname(abs);
    return up === abs ? abs : path.join(realPath(up), path.basename(abs));
  }
}

/**
 * A job's OUT_DIR apart from its inputs: not the base model dir, and neither the warm-start adapter nor a dir holding
 * it (replacing the job in OUT_DIR deletes its adapter and checkpoints before the warm start reads them).
 */
export function requireOutputApart(out: string, cfg: Pick<JobInputs, 'baseModel' | 'warmStartFrom'>): void {
  const o = realPath(out);
  if (o === realPath(cfg.baseModel)) throw new UserError(`--output-model ${out}: must differ from the base model dir`);
  if (!cfg.warmStartFrom) return;
  const w = realPath(cfg.warmStartFrom);
  if (w === o)
    throw new UserError(
      `--output-model ${out}: must differ from the --warm-start-from adapter dir (training there would replace the adapter it starts from); choose another --output-model`,
    );
  if (w.startsWith(o + path.sep))
    throw new UserError(
      `--output-model ${out}: holds the --warm-start-from adapter ${cfg.warmStartFrom} (training there would replace it); choose another --output-model, or copy the adapter out first`,
    );
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

/** Throws unless files can be created in `dir`, or `dir` can be made (mkdir -p); `subject` is what the message names. */
function requireCreatable(dir: string, subject: string): void {
  let q = dir;
  while (!statOrNull(q) && path.dirname(q) !== q) q = path.dirname(q); // nearest existing ancestor
  const st = statOrNull(q);
  if (st && !st.isDirectory()) throw new UserError(`${subject}: cannot be created, ${q} is a file`);
  try {
    fs.accessSync(q, fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    throw new UserError(`${subject}: cannot write in ${q} (${(e as NodeJS.ErrnoException).code})`);
  }
}

/** An output directory given by `flag`: an existing, writable directory, or one that mkdir -p can create. */
export function requireOutputDir(dir: string, flag: string): void {
  const st = statOrNull(dir);
  if (st && !st.isDirectory()) throw new UserError(`${dir}: is a file; ${flag} names a directory to write into`);
  requireCreatable(dir, dir);
}

/** An output file given by `flag` (written with writeFileAtomic: temp file + rename in its directory). */
export function requireOutputFile(file: string, flag: string, example: string): void {
  if (statOrNull(file)?.isDirectory())
    throw new UserError(`${file}: is a directory; ${flag} names the file to write (e.g. ${path.join(file, example)})`);
  requireCreatable(path.dirname(file), file);
}

/**
 * An fs error (ENOSPC, EACCES, ... from a write the checks above could not foresee) as a one-line UserError naming
 * the path; anything else is returned unchanged (a real bug keeps its stack trace).
 */
export function fsErrorToUser(e: unknown): unknown {
  const x = e as NodeJS.ErrnoException & { dest?: string };
  if (!(e instanceof Error) || typeof x.code !== 'string' || typeof x.syscall !== 'string' || e instanceof UserError)
    return e;
  const why = FS_REASONS[x.code] ? `${x.code}: ${FS_REASONS[x.code]}` : x.code;
  return new UserError(`${x.dest ?? x.path ?? '(unknown path)'}: cannot ${x.syscall} (${why})`);
}

const FS_REASONS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EIO: 'I/O error',
};

/** A command's run(argv) whose fs errors become one-line UserErrors (see fsErrorToUser). */
export function withFsErrors(run: (argv: string[]) => Promise<number>): (argv: string[]) => Promise<number> {
  return async (argv) => {
    try {
      return await run(argv);
    } catch (e) {
      throw fsErrorToUser(e);
    }
  };
}
