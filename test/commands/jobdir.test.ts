// Job directories you can trust (issue 9): resume in place from any cwd, one writer, no unrecoverable window,
// whole-or-ignored checkpoints, changed inputs refused, write failures, no hangs. Every crash and race is
// triggered deterministically through LORASFT_TEST_HOOKS (src/util/testhooks.ts), never by timing.
import { tmpDir } from '../helpers/index.ts';
import { describe, expect, it, beforeAll } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJob } from '../../src/train/job.ts';
import { readMetrics } from '../../src/train/metrics.ts';
import { fixtureFlags, makeFixture, type Fixture } from '../train/fixture.ts';
import { BIN, run, type RunResult } from '../helpers/run.ts';
import { lorasftCommand, shellArgs, shellQuote } from '../../src/util/invocation.ts';

let fx: Fixture;
const JOB = ['--epochs', '1', '--checkpoint-every-steps', '1', '--lora-dropout', '0.1'];

/** `lorasft ARGS` (or `bash -c SCRIPT` with `shell`) with LORASFT_TEST_HOOKS=`hooks`; `onStart` gets the child. */
function lorasft(
  args: string[],
  opts: { cwd?: string; hooks?: string; onStart?: (c: ChildProcess) => void; shell?: string } = {},
): Promise<RunResult> {
  const o = { cwd: opts.cwd, env: { ...process.env, LORASFT_TEST_HOOKS: opts.hooks ?? '' }, onStart: opts.onStart };
  return opts.shell ? run('bash', ['-c', opts.shell], o) : run(process.execPath, [BIN, ...args], o);
}

/** Resolves once `file` exists (the paused job's marker); polls, the test timeout bounds it. */
async function waitForFile(file: string): Promise<void> {
  while (!fs.existsSync(file)) await new Promise((r) => setTimeout(r, 50));
}

const at = (out: string) => path.join(fx.root, out);
const adapter = (dir: string) => fs.readFileSync(path.join(dir, 'adapter_model.safetensors'));
const trainSteps = (dir: string) =>
  readMetrics(dir)
    .filter((r) => 'train_loss' in r)
    .map((r) => r.step);
/** stderr without the progress log lines ('step 2/6 ...'). */
const errorLines = (r: RunResult) => r.stderr.split('\n').filter((l) => l.trim() !== '' && !/^step \d+\/\d+/.test(l));

let fullAdapter: Buffer;
let fullSteps: number[];
beforeAll(async () => {
  fx = makeFixture();
  const r = await lorasft(['train', ...fixtureFlags(fx, 'ref'), ...JOB]);
  expect(r.status, r.stderr).toBe(0);
  fullAdapter = adapter(at('ref'));
  fullSteps = trainSteps(at('ref'));
  expect(fullSteps.length).toBeGreaterThanOrEqual(4);
});

describe('job dirs (issue 9)', () => {
  it('7: killed between job.json and the config: --resume says so in one line with the command that started it, which replaces it', async () => {
    // Started with relative paths from fx.root; the command it prints runs as written from any dir.
    const rel = fixtureFlags({ root: '', model: 'model', train: 'train.jsonl', eval: 'eval.jsonl' }, 'early-kill', JOB);
    const killed = await lorasft(['train', ...rel], { cwd: fx.root, hooks: 'kill@after-job-json' });
    expect(killed.signal).toBe('SIGKILL');
    expect(fs.readdirSync(at('early-kill')).sort()).toEqual(['.lorasft.lock', 'job.json']); // job.json is written first
    const job = readJob(at('early-kill'));
    expect(job.local).toEqual({ command: shellArgs(['train', ...rel]), cwd: fx.root });
    expect(job.state).toBe('JOB_STATE_VALIDATING'); // the REST object's fields as before
    const stopped = `error: ${at('early-kill')}: job accounts/local/supervisedFineTuningJobs/early-kill was stopped before it started (no resolved_config.json, nothing trained); run the command that started it again`;
    const r = await lorasft(['train', '--resume', at('early-kill')], { cwd: tmpDir('cwd') });
    expect(r.status).toBe(1);
    const cmd = `cd ${shellQuote(fx.root)} && ${lorasftCommand('train', ...rel)}`;
    expect(errorLines(r)).toEqual([`${stopped} (it replaces this job): ${cmd}`]);
    // A job.json of an older lorasft (no command recorded): the words of before.
    const file = path.join(at('early-kill'), 'job.json');
    const withCommand = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, JSON.stringify({ ...job, local: undefined }, null, 2) + '\n');
    const older = await lorasft(['train', '--resume', at('early-kill')]);
    expect(older.status).toBe(1);
    expect(errorLines(older)).toEqual([`${stopped}: it replaces this job`]);
    fs.writeFileSync(file, withCommand);
    const again = await lorasft([], { cwd: tmpDir('cwd'), shell: cmd });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      /replacing the previous job \(JOB_STATE_VALIDATING, no checkpoint to resume: it was stopped before it started\)/,
    );
    expect(adapter(at('early-kill')).equals(fullAdapter)).toBe(true);
    expect(readJob(at('early-kill')).local).toMatchObject({ command: shellArgs(['train', ...rel]), backend: {} });
  });

  it('1: a copied or moved job dir resumes in place, from any working directory', async () => {
    // Started with relative paths from fx.root, killed after step 2.
    const rel = fixtureFlags({ root: '', model: 'model', train: 'train.jsonl', eval: 'eval.jsonl' }, 'part', JOB);
    const killed = await lorasft(['train', ...rel], { cwd: fx.root, hooks: 'kill@after-step-2' });
    expect(killed.signal).toBe('SIGKILL');
    const copy = await lorasft([], { shell: `cp -a '${at('part')}' '${at('c7')}'` });
    expect(copy.status).toBe(0);
    const elsewhere = tmpDir('cwd');
    const r7 = await lorasft(['train', '--resume', at('c7')], { cwd: elsewhere });
    expect(r7.status, r7.stderr).toBe(0);
    expect(r7.stdout).toContain(`adapter: ${path.join(at('c7'), 'adapter_model.safetensors')}`);
    expect(readJob(at('c7')).state).toBe('JOB_STATE_COMPLETED');
    expect(adapter(at('c7')).equals(fullAdapter)).toBe(true);
    expect(fs.existsSync(path.join(at('part'), 'adapter_model.safetensors'))).toBe(false); // the original is untouched
    expect(readJob(at('part')).state).toBe('JOB_STATE_RUNNING');

    fs.renameSync(at('part'), at('c6'));
    const r6 = await lorasft(['train', '--resume', 'c6'], { cwd: fx.root });
    expect(r6.status, r6.stderr).toBe(0);
    expect(adapter(at('c6')).equals(fullAdapter)).toBe(true);
    expect(trainSteps(at('c6'))).toEqual(fullSteps);
  });

  it('2: one writer per job dir: a second writer gets one line naming the pid; a stale lock after SIGKILL is taken over', async () => {
    const out = at('locked');
    const flags = [...fixtureFlags(fx, 'locked'), ...JOB];
    let first: ChildProcess | undefined;
    const running = lorasft(['train', ...flags], { hooks: 'pause@after-step-2', onStart: (c) => (first = c) });
    await waitForFile(path.join(out, '.test-paused'));
    const pid = first!.pid!;
    const busy = `error: ${out}: job is running in process ${pid} (since `;
    for (const args of [['--resume', out], [...flags], [...flags, '--overwrite']]) {
      const r = await lorasft(['train', ...args]);
      expect(r.status).toBe(1);
      expect(errorLines(r)).toHaveLength(1);
      expect(r.stderr.startsWith(busy), r.stderr).toBe(true);
    }
    first!.kill('SIGTERM');
    const cancelled = await running;
    expect(cancelled.status).toBe(130);
    expect(readJob(out).state).toBe('JOB_STATE_CANCELLED');
    expect(fs.existsSync(path.join(out, '.lorasft.lock'))).toBe(false);

    // SIGKILL leaves the lock behind; its process is gone, so the next --resume takes it over.
    const killed = await lorasft(['train', '--resume', out], { hooks: 'kill@after-step-3' });
    expect(killed.signal).toBe('SIGKILL');
    expect(fs.existsSync(path.join(out, '.lorasft.lock'))).toBe(true);
    const r = await lorasft(['train', '--resume', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/notice: .*locked: taking over a stale job lock \(process \d+ is gone\)/);
    expect(trainSteps(out)).toEqual(fullSteps); // no duplicated steps
    expect(adapter(out).equals(fullAdapter)).toBe(true);
  });

  it('2: two runs started together into one dir: one trains, the other is refused', async () => {
    const flags = [...fixtureFlags(fx, 'twin'), ...JOB];
    const [a, b] = await Promise.all([lorasft(['train', ...flags]), lorasft(['train', ...flags])]);
    expect([a.status, b.status].sort()).toEqual([0, 1]);
    const loser = a.status === 1 ? a : b;
    expect(errorLines(loser)).toHaveLength(1);
    expect(loser.stderr).toMatch(/job is running in process \d+|already holds job .*JOB_STATE_COMPLETED/);
    expect(trainSteps(at('twin'))).toEqual(fullSteps);
    expect(adapter(at('twin')).equals(fullAdapter)).toBe(true);
  });

  it('4: a truncated newest checkpoint is reported in one line and the previous one is used', async () => {
    const out = at('torn');
    const killed = await lorasft(['train', ...fixtureFlags(fx, 'torn'), ...JOB], { hooks: 'kill@after-step-3' });
    expect(killed.signal).toBe('SIGKILL');
    const state = path.join(out, 'checkpoints', 'step-000003', 'trainer_state.json');
    fs.truncateSync(state, 20);
    const r = await lorasft(['train', '--resume', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `warning: ${path.join(out, 'checkpoints', 'step-000003')}: trainer_state.json has 20 bytes, the manifest says `,
    );
    expect(r.stdout).toMatch(/the manifest says \d+; resuming from step-000002\n/);
    expect(r.stderr).not.toMatch(/SyntaxError/);
    expect(adapter(out).equals(fullAdapter)).toBe(true);
  });

  it('5: changed inputs are refused at resume in one line naming what changed; restored, the job resumes', async () => {
    const data = path.join(fx.root, 'data5.jsonl');
    fs.copyFileSync(fx.train, data);
    const out = at('changed');
    const flags = [...fixtureFlags(fx, 'changed'), ...JOB, '--dataset', data];
    const killed = await lorasft(['train', ...flags], { hooks: 'kill@after-step-2' });
    expect(killed.signal).toBe('SIGKILL');
    const original = fs.readFileSync(data, 'utf8');
    const prefix = `error: cannot resume ${out}: its inputs changed since the job started: `;

    fs.writeFileSync(data, original.replace('Dublin', 'Dublinn')); // sed -i s/Dublin/Dublinn/
    let r = await lorasft(['train', '--resume', out]);
    expect(r.status).toBe(1);
    expect(errorLines(r)).toEqual([
      `${prefix}dataset ${data} changed (${Buffer.byteLength(original)} bytes -> ${Buffer.byteLength(original) + 1} bytes, other content); restore them, or start a new job`,
    ]);

    fs.writeFileSync(data, original.split('\n').slice(0, 6).join('\n') + '\n'); // shrunk
    r = await lorasft(['train', '--resume', out]);
    expect(errorLines(r)).toHaveLength(1);
    expect(r.stderr).toMatch(/dataset .*data5\.jsonl changed \(\d+ bytes -> \d+ bytes, other content\)/);

    fs.writeFileSync(data, original);
    const rc = path.join(out, 'resolved_config.json');
    const saved = fs.readFileSync(rc, 'utf8');
    fs.writeFileSync(rc, saved.replace('"learningRate": 0.01', '"learningRate": 0.02'));
    r = await lorasft(['train', '--resume', out]);
    expect(errorLines(r)).toEqual([`${prefix}learningRate 0.01 -> 0.02; restore them, or start a new job`]);
    expect(readJob(out).state).toBe('JOB_STATE_RUNNING'); // refused: the job itself is left as it was

    fs.writeFileSync(rc, saved);
    r = await lorasft(['train', '--resume', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(adapter(out).equals(fullAdapter)).toBe(true);
  });

  it('3: a FIFO or process substitution as --dataset is refused in one line (no hang)', async () => {
    const fifo = path.join(fx.root, 'data.fifo');
    expect((await lorasft([], { shell: `mkfifo '${fifo}'` })).status).toBe(0);
    const r = await lorasft(['train', ...fixtureFlags(fx, 'fifo'), '--dataset', fifo]);
    expect(r.status).toBe(1);
    expect(errorLines(r)).toEqual([
      `error: ${fifo}: is a pipe (FIFO or process substitution like <(zcat data.jsonl.gz)); a job reads its data again on --resume, so it must be a regular file: write it to one first (e.g. zcat data.jsonl.gz > data.jsonl)`,
    ]);
    const sub = await lorasft([], {
      shell: `node '${BIN}' train ${fixtureFlags(fx, 'procsub')
        .map((a) => `'${a}'`)
        .join(' ')} --dataset <(cat '${fx.train}')`,
    });
    expect(sub.status).toBe(1);
    expect(sub.stderr).toMatch(/^error: \/dev\/fd\/\d+: is a pipe \(FIFO or process substitution/);
    expect(fs.existsSync(at('fifo'))).toBe(false);
  });

  it('3: SIGTERM while loading stops the job at once (CANCELLED, exit 130); --resume then completes it', async () => {
    const out = at('term-loading');
    const r = await lorasft(['train', ...fixtureFlags(fx, 'term-loading'), ...JOB], { hooks: 'sigterm@loading' });
    expect(r.status).toBe(130);
    const job = readJob(out);
    expect(job.state).toBe('JOB_STATE_CANCELLED');
    expect(job.status.message).toBe(
      `cancelled by SIGTERM while loading; resume with: ${lorasftCommand('train', '--resume', out)}`,
    );
    expect(r.stdout).toContain(`\n${job.status.message} (JOB_STATE_CANCELLED)\n`); // was in job.json only
    expect(trainSteps(out)).toEqual([]);
    const again = await lorasft(['train', '--resume', out]);
    expect(again.status, again.stderr).toBe(0);
    expect(adapter(out).equals(fullAdapter)).toBe(true);
  });

  it('6: a full disk names the path, leaves no temp files, ends FAILED with the reason; --resume continues', async () => {
    const out = at('full disk'); // a space: the printed resume command must quote it
    const flags = fixtureFlags(fx, 'full-disk', JOB);
    flags[flags.indexOf('--output-model') + 1] = out;
    const r = await lorasft(['train', ...flags], { hooks: 'enospc@step-000003' });
    expect(r.status).toBe(1);
    expect(errorLines(r)).toHaveLength(1);
    expect(errorLines(r)[0]).toMatch(
      new RegExp(
        `^error: ${out}/checkpoints/\\.tmp-step-000003-\\d+/state\\.safetensors: cannot write \\(ENOSPC: no space left on device\\)$`,
      ),
    );
    expect(fs.readdirSync(path.join(out, 'checkpoints'))).toEqual(['step-000001', 'step-000002']);
    expect(fs.readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const job = readJob(out);
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.status.message).toMatch(
      /^checkpoint of step 3: .*state\.safetensors: cannot write \(ENOSPC: no space left/,
    );
    const hint = `; once it can be written, resume with: ${lorasftCommand('train', '--resume', out)}`;
    expect(job.status.message.endsWith(hint), job.status.message).toBe(true);

    // metrics.jsonl on a full disk: named too.
    const m = await lorasft(['train', '--resume', out], { hooks: 'enospc@metrics.jsonl' });
    expect(m.status).toBe(1);
    expect(errorLines(m)).toEqual([
      `error: ${path.join(out, 'metrics.jsonl')}: cannot write (ENOSPC: no space left on device)`,
    ]);

    // The final adapter on a full disk: FAILED too, and resumable (the last checkpoint holds every step).
    const fin = path.join(out, 'adapter_model.safetensors');
    const a = await lorasft(['train', '--resume', out], { hooks: `enospc@${fin}` });
    expect(errorLines(a)).toEqual([`error: ${fin}: cannot write (ENOSPC: no space left on device)`]);
    expect(readJob(out).status.message).toMatch(
      /^writing the adapter: .*adapter_model\.safetensors: cannot write \(ENOSPC/,
    );
    expect(fs.readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);

    const printed = readJob(out).status.message.split('resume with: ')[1]; // run as printed, from another dir
    const resumed = await lorasft([], { shell: printed, cwd: tmpDir('cwd') });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(adapter(out).equals(fullAdapter)).toBe(true);
    expect(trainSteps(out)).toEqual(fullSteps);
  });
});
