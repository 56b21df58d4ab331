// Helpers for the service tests: a real `lorasft serve` process on a free loopback port, raw HTTP requests (paths
// sent exactly as written), and polling with generous deadlines (never fixed sleeps as synchronisation).
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN } from '../helpers/index.ts';
import { importBaseModel } from '../../src/serve/models.ts';
import { openStore } from '../../src/serve/store.ts';
import { makeFixture, type Fixture } from '../train/fixture.ts';

/** A JSON body of any of the API's many shapes (each test reads the fields it checks). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export interface Serve {
  url: string;
  child: ChildProcess;
  output: () => string;
  /** SIGTERM (then SIGKILL after a deadline); resolves when the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash; resolves when the process has exited. */
  kill(): Promise<void>;
}

/** The training tests' fixture and a service data dir, FIXTURE/data, whose store holds its model as base model `id`. */
export function serveFixture(id: string): { fx: Fixture; data: string } {
  const fx = makeFixture();
  const data = path.join(fx.root, 'data');
  const store = openStore(data);
  importBaseModel(store, id, fx.model);
  store.close();
  return { fx, data };
}

const servers = new Set<Serve>();

/** Starts `lorasft serve --port 0 --data-dir DIR ...` and resolves once it prints its URL. */
export function startServe(dataDir: string, args: string[] = [], env: Record<string, string> = {}): Promise<Serve> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Below the test runner's priority (its trainers inherit it): on a loaded 2-core machine the runner must still
  // get the CPU to answer its workers.
  try {
    os.setPriority(child.pid!, 10);
  } catch {
    /* not permitted: run at normal priority */
  }
  let out = '';
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  const waitExit = (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    return exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lorasft serve did not start within 120 s:\n${out}`));
    }, 120_000);
    const onData = (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      const s: Serve = {
        url: m[1],
        child,
        output: () => out,
        async stop() {
          const t = setTimeout(() => child.kill('SIGKILL'), 90_000);
          await waitExit('SIGTERM');
          clearTimeout(t);
          servers.delete(s);
        },
        async kill() {
          await waitExit('SIGKILL');
          servers.delete(s);
        },
      };
      servers.add(s);
      resolve(s);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!/listening on/.test(out)) reject(new Error(`lorasft serve exited with ${code}:\n${out}`));
    });
  });
}

/** Kills every server still running (for afterAll). */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...servers].map((s) => s.kill()));
}

export interface Reply {
  status: number;
  json: Json;
  text: string;
}

/** One HTTP request with the path sent as-is (no URL normalisation of '..'). */
export function request(
  base: string,
  method: string,
  rawPath: string,
  opts: { body?: unknown; key?: string; headers?: Record<string, string>; raw?: Buffer | string } = {},
): Promise<Reply> {
  const u = new URL(base);
  const headers: Record<string, string> = {
    ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}),
    ...(opts.headers ?? {}),
  };
  let payload: Buffer | undefined;
  if (opts.raw !== undefined) payload = Buffer.from(opts.raw);
  else if (opts.body !== undefined) {
    payload = Buffer.from(JSON.stringify(opts.body));
    headers['content-type'] ??= 'application/json';
  }
  if (payload) headers['content-length'] = String(payload.length);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: rawPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, json, text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Polls `fn` every `everyMs` until it returns a value other than undefined / false, or throws after `deadlineMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  deadlineMs = 600_000,
  everyMs = 250,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A dataset file of the first `n` rows of `from`. */
export function sliceDataset(from: string, to: string, n: number): string {
  fs.writeFileSync(to, fs.readFileSync(from, 'utf8').trim().split('\n').slice(0, n).join('\n') + '\n');
  return to;
}

/** The job dir of job `id` in account `local`. */
export const jobDir = (dataDir: string, id: string) => path.join(dataDir, 'jobs', 'local', id);

/** Lines of a job's runs.log (`start ...` / `exit ...`). */
export function runsLog(dataDir: string, id: string): string[] {
  const f = path.join(jobDir(dataDir, id), 'runs.log');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n') : [];
}

/** Polls job `id` until its state is one of `states`; returns the job. */
export function waitForJob(
  base: string,
  key: string | undefined,
  id: string,
  states: string[],
  deadlineMs = 600_000,
): Promise<Json> {
  return waitFor(
    `job ${id} to reach ${states.join('/')}`,
    async () => {
      const r = await request(base, 'GET', `/v1/accounts/local/supervisedFineTuningJobs/${id}`, { key });
      if (r.status !== 200) throw new Error(`GET job ${id}: ${r.status} ${r.text}`);
      return states.includes(r.json.state) ? r.json : undefined;
    },
    deadlineMs,
  );
}
