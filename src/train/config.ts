// The one typed training config. Every field has a default and a help string; values come from
// CLI flags > --config FILE (the managed job's REST request body, camelCase, as-is) > defaults.
// Unknown keys are rejected by name; request fields with no local meaning are accepted with a notice.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { readTextFile } from '../util/files.ts';
import { jsonSyntaxError, topLevelKeyLines } from '../util/json.ts';
import { LORA_RANKS } from '../model/lora.ts';
import { FIELDS, IGNORED_FIELDS, IGNORED_KINDS, type Field } from './config_fields.ts';
import { MAX_THREADS } from '../backend/threads.ts';

export type LrScheduler = 'constant' | 'linear' | 'cosine';

export interface TrainConfig {
  dataset: string;
  baseModel: string;
  outputModel: string;
  warmStartFrom: string;
  jinjaTemplate: string;
  displayName: string;
  jobId: string;
  evaluationDataset: string;
  evalAutoCarveout: boolean;
  earlyStop: boolean;
  epochs: number;
  learningRate: number;
  learningRateWarmupSteps: number;
  lrScheduler: LrScheduler;
  maxContextLength: number;
  batchSize: number;
  batchSizeSamples: number;
  gradientAccumulationSteps: number;
  loraRank: number;
  loraAlpha: number;
  loraDropout: number;
  optimizerWeightDecay: number;
  maxGradNorm: number;
  checkpointActivations: 'auto' | 'on' | 'off';
  evalEverySteps: number;
  earlyStopPatience: number;
  checkpointEverySteps: number;
  keepCheckpoints: number;
  maxSteps: number;
  seed: number;
  backend: string;
  threads: number;
  precision: 'auto' | 'fp32' | 'bf16';
}

/** CLI flag of a field: kebab-case of the camelCase name (firectl's names). */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** Options for parseFlags: one string option per field, booleans also with a `--no-` form. */
export function configFlagOptions() {
  const o: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const [key, f] of Object.entries(FIELDS)) {
    if (f.kind === 'boolean') {
      o[flagName(key)] = { type: 'boolean' };
      o['no-' + flagName(key)] = { type: 'boolean' };
    } else o[flagName(key)] = { type: 'string' };
  }
  return o;
}

export function defaultConfig(): TrainConfig {
  const c: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(FIELDS)) c[key] = f.default;
  return c as unknown as TrainConfig;
}

/** A string field's accepted values for a message; '' (the default) is named by what it means. */
function choiceList(f: Field): string {
  const named = f.choices!.filter((c) => c !== '').join(', ');
  return f.choices!.includes('') ? `${named} (or '': ${f.defaultText ?? 'the default'})` : named;
}

function coerce(key: string, f: Field, v: unknown, where: string): string | number | boolean {
  const bad = (what: string) => new UserError(`${where}: ${key} must be ${what}, got ${JSON.stringify(v)}`);
  // A JSON boolean only (the API's type; boolean flags never get here: they are set without a value).
  if (f.kind === 'boolean') {
    if (typeof v === 'boolean') return v;
    throw bad('true or false');
  }
  if (f.kind === 'string') {
    if (typeof v !== 'string') throw bad('a string');
    if (f.choices && !f.choices.includes(v)) throw bad(`one of ${choiceList(f)}`);
    return v;
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw bad('a number');
  if (f.kind === 'int' && !Number.isInteger(n)) throw bad('an integer');
  return n;
}

/** Read a REST request body JSON (full-line `//` comments allowed, so config files can say how to run them). */
export function readConfigFile(file: string, notice: (msg: string) => void): Partial<TrainConfig> {
  const text = readTextFile(file, 'expected a job config JSON file');
  const stripped = text
    .split('\n')
    .map((l) => (/^\s*\/\//.test(l) ? '' : l))
    .join('\n');
  let body: unknown;
  try {
    body = JSON.parse(stripped);
  } catch (e) {
    throw new UserError(jsonSyntaxError(file, stripped));
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new UserError(`${file}: expected a JSON object (the job's request body)`);
  const lines = topLevelKeyLines(stripped);
  return configFromBody(body as Record<string, unknown>, file, notice, (key) => `${file}:${lines.get(key)}`);
}

const WHAT = { object: 'an object', int: 'a non-negative int32', boolean: 'true or false', string: 'a string' };

/** An ignored field's value against its type in the managed API (IGNORED_KINDS); an object member by `key.member`. */
function checkIgnored(key: string, v: unknown, where: string, kind = IGNORED_KINDS[key]): void {
  const isObject = typeof v === 'object' && v !== null && !Array.isArray(v);
  const ok = Array.isArray(kind)
    ? kind.includes(v as string)
    : typeof kind === 'object'
      ? isObject
      : kind === 'int'
        ? Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 31
        : typeof v === kind;
  const what = Array.isArray(kind) ? `one of ${kind.join(', ')}` : WHAT[typeof kind === 'object' ? 'object' : kind];
  if (!ok) throw new UserError(`${where}: ${key} must be ${what}, got ${JSON.stringify(v)}`);
  if (typeof kind !== 'object' || Array.isArray(kind)) return;
  const members = kind as Record<string, 'boolean' | 'string'>;
  for (const [m, mv] of Object.entries(v as Record<string, unknown>)) {
    if (!(m in members))
      throw new UserError(`${where}: unknown field '${key}.${m}' (known: ${Object.keys(members).join(', ')})`);
    if (mv !== null) checkIgnored(`${key}.${m}`, mv, where, members[m]);
  }
}

// Where a layer's values came from, per key (`FILE:LINE`, `--flag`, 'request'), for resolveConfig's messages. Layers
// without an entry (defaults, the demo) are named 'invalid training config'.
const SOURCES = new WeakMap<object, (key: string) => string>();

/**
 * The config fields of a job request body (a --config file, or `lorasft serve`'s POST), checked; `where` prefixes
 * errors, or `at(key)` (a file's `FILE:LINE`), which resolveConfig's messages then name too.
 */
export function configFromBody(
  body: Record<string, unknown>,
  where: string,
  notice: (msg: string) => void,
  at?: (key: string) => string,
): Partial<TrainConfig> {
  const out: Record<string, unknown> = {};
  const src = at ?? (() => where);
  for (const [key, v] of Object.entries(body)) {
    if (key in IGNORED_FIELDS) {
      if (v !== null) checkIgnored(key, v, src(key));
      notice(`${src(key)}: '${key}' has no local meaning (${IGNORED_FIELDS[key]}); ignored`);
      continue;
    }
    const f = (FIELDS as Record<string, Field>)[key];
    if (!f) throw new UserError(`${src(key)}: unknown field '${key}' (known: ${Object.keys(FIELDS).join(', ')})`);
    if (v === null) continue;
    out[key] = coerce(key, f, v, src(key));
  }
  SOURCES.set(out, src);
  return out as Partial<TrainConfig>;
}

/** Config values given as flags (already parsed by parseFlags with configFlagOptions()). */
export function configFromFlags(
  values: Record<string, string | boolean | undefined | (string | boolean)[]>,
): Partial<TrainConfig> {
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(FIELDS)) {
    const flag = flagName(key);
    const v = values[flag];
    if (f.kind === 'boolean') {
      if (v === true && values['no-' + flag] === true)
        throw new UserError(`--${flag} and --no-${flag} contradict each other`);
      if (v === true) out[key] = true;
      else if (values['no-' + flag] === true) out[key] = false;
    } else if (v !== undefined) out[key] = coerce(key, f, v, `--${flag}`);
  }
  SOURCES.set(out, (key) => `--${flagName(key)}`);
  return out as Partial<TrainConfig>;
}

/** Where the last of `layers` that sets `key` got it (`FILE:LINE`, `--flag`), or null (defaults, a REST body). */
export function fieldSource(key: string, ...layers: Partial<TrainConfig>[]): string | null {
  const layer = [...layers].reverse().find((l) => key in l);
  return (layer && SOURCES.get(layer)?.(key)) ?? null;
}

/** Merge layers (later wins), fill dependent defaults, and validate: a bad value is named by the layer that set it. */
export function resolveConfig(...layers: Partial<TrainConfig>[]): TrainConfig {
  const c = Object.assign(defaultConfig(), ...layers) as TrainConfig;
  // loraAlpha given by no layer (its default 0 stands for unset): 2 * loraRank. A given 0 is checked like any value.
  const alphaGiven = layers.some((l) => l.loraAlpha !== undefined);
  if (!alphaGiven) c.loraAlpha = 2 * c.loraRank;
  validateConfig(c, (key) => fieldSource(key, ...layers) ?? 'invalid training config', alphaGiven);
  return c;
}

const INT32_MAX = 2 ** 31 - 1;
/** The integer fields bounded by int32 (the managed API's type; seed, a uint32, and threads have bounds of their own). */
const INT32_FIELDS = (Object.keys(FIELDS) as Array<keyof TrainConfig>).filter(
  (k) => FIELDS[k].kind === 'int' && k !== 'seed' && k !== 'threads',
) as Array<{ [K in keyof TrainConfig]: TrainConfig[K] extends number ? K : never }[keyof TrainConfig]>;

/** `alphaGiven`: false when loraAlpha is 2 * loraRank, so a bad rank is named once, by its own line. */
function validateConfig(c: TrainConfig, source: (key: string) => string, alphaGiven: boolean): void {
  const problems: string[] = [];
  // Each message starts with its field's name: the layer that set that field names the problem.
  const need = (ok: boolean, msg: string) => ok || problems.push(`${source(msg.split(' ')[0])}: ${msg}`);
  need(c.epochs > 0, `epochs must be > 0, got ${c.epochs}`);
  need(c.learningRate > 0, `learningRate must be > 0, got ${c.learningRate}`);
  need(c.learningRateWarmupSteps >= 0, `learningRateWarmupSteps must be >= 0, got ${c.learningRateWarmupSteps}`);
  need(
    LORA_RANKS.includes(c.loraRank),
    `loraRank must be a power of 2 up to 32 (${LORA_RANKS.join(', ')}), got ${c.loraRank}`,
  );
  if (alphaGiven) need(c.loraAlpha > 0, `loraAlpha must be > 0, got ${c.loraAlpha}`);
  need(c.loraDropout >= 0 && c.loraDropout < 1, `loraDropout must be in [0, 1), got ${c.loraDropout}`);
  need(c.maxContextLength >= 2, `maxContextLength must be >= 2, got ${c.maxContextLength}`);
  need(c.batchSize >= 2, `batchSize must be >= 2 tokens, got ${c.batchSize}`);
  need(c.batchSizeSamples >= 0, `batchSizeSamples must be >= 0, got ${c.batchSizeSamples}`);
  need(c.gradientAccumulationSteps >= 1, `gradientAccumulationSteps must be >= 1, got ${c.gradientAccumulationSteps}`);
  need(c.optimizerWeightDecay >= 0, `optimizerWeightDecay must be >= 0, got ${c.optimizerWeightDecay}`);
  need(c.maxGradNorm >= 0, `maxGradNorm must be >= 0 (0: no clipping), got ${c.maxGradNorm}`);
  need(c.evalEverySteps >= 0, `evalEverySteps must be >= 0, got ${c.evalEverySteps}`);
  need(c.earlyStopPatience >= 1, `earlyStopPatience must be >= 1, got ${c.earlyStopPatience}`);
  need(c.checkpointEverySteps >= 0, `checkpointEverySteps must be >= 0, got ${c.checkpointEverySteps}`);
  need(c.keepCheckpoints >= 1, `keepCheckpoints must be >= 1, got ${c.keepCheckpoints}`);
  need(c.maxSteps >= 0, `maxSteps must be >= 0, got ${c.maxSteps}`);
  need(
    c.threads >= 0 && c.threads <= MAX_THREADS,
    `threads must be in [0, ${MAX_THREADS}] (0: every CPU; more only slow the kernels), got ${c.threads}`,
  );
  need(c.seed >= 0 && c.seed <= 0xffffffff, `seed must be in [0, 2^32), got ${c.seed}`);
  for (const key of INT32_FIELDS)
    need(c[key] <= INT32_MAX, `${key} must be at most ${INT32_MAX} (an int32, as in the managed API), got ${c[key]}`);
  need(!/[\\/]/.test(c.jobId), `jobId must not contain '/' or '\\', got '${c.jobId}'`);
  // One self-contained line per problem (a single problem is a single line).
  if (problems.length) throw new UserError(problems.join('\n'));
}

/** `--help` text listing every field as flag, help and default. The help strings never state the default: it is
 * added here once, from `defaultText` or the value. */
export function configHelp(): string {
  const lines: string[] = [];
  for (const [key, f] of Object.entries(FIELDS)) {
    const flag = `--${flagName(key)}${f.kind === 'boolean' ? ` / --no-${flagName(key)}` : ''}`;
    const def = f.defaultText ?? (f.default === '' ? '' : String(f.default));
    lines.push(`  ${flag.padEnd(34)} ${f.help}${def ? ` (default ${def})` : ''}   [${key}]`);
  }
  return lines.join('\n');
}

/** The config as recorded in resolved_config.json: input paths absolute, so the job resumes from any directory. */
export function absolutePaths(cfg: TrainConfig): TrainConfig {
  const abs = (p: string) => (p ? path.resolve(p) : p);
  const template =
    cfg.jinjaTemplate && fs.existsSync(cfg.jinjaTemplate) ? path.resolve(cfg.jinjaTemplate) : cfg.jinjaTemplate;
  return {
    ...cfg,
    dataset: abs(cfg.dataset),
    baseModel: abs(cfg.baseModel),
    evaluationDataset: abs(cfg.evaluationDataset),
    warmStartFrom: abs(cfg.warmStartFrom),
    outputModel: abs(cfg.outputModel),
    jinjaTemplate: template,
  };
}
