// Starts scripts/serve-inference.ts (or any server entry) as a real process on a free loopback port and waits (bounded) for its
// `listening on URL` line; stop() kills it.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import OpenAI from 'openai';

const ROOT = path.resolve(new URL('../..', import.meta.url).pathname);

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  /** Everything it printed (stdout and stderr), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export function startInferenceServer(args: string[], timeoutMs = 150_000): Promise<ServerProcess> {
  return startProcess(
    ['--import', 'tsx', path.join(ROOT, 'scripts/serve-inference.ts'), '--host', '127.0.0.1', '--port', '0', ...args],
    timeoutMs,
  );
}

/** `node ARGS...` as a server process that prints `listening on URL`. */
export async function startProcess(nodeArgs: string[], timeoutMs = 150_000): Promise<ServerProcess> {
  const proc = spawn(process.execPath, nodeArgs, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within ${timeoutMs} ms: ${err}`)), timeoutMs);
    proc.stdout!.on('data', (d) => {
      out += d;
      err += d;
      const m = /listening on (http:\/\/\S+)\r?\n/.exec(out); // a whole line: a chunk may end inside the port
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.stderr!.on('data', (d) => (err += d));
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      err += `\n[server exited: code ${code}, signal ${signal}]\n`;
      reject(new Error(`server exited with ${code}: ${err}`));
    });
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  return { url, proc, stop, output: () => err };
}

/** Polls `probe` until it returns a value (not undefined), at most `tries` times, `everyMs` apart. */
export async function until<T>(probe: () => Promise<T | undefined>, tries = 1800, everyMs = 100): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`condition not met after ${tries} polls`);
}

/** An OpenAI-style error body. */
export interface ErrorJson {
  error: { type: string; code: string; param: string | null; message: string };
}

/** POST `body` as JSON to `url`: the status and the parsed answer. */
export async function postJson(url: string, body: unknown): Promise<{ status: number; json: ErrorJson }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

/**
 * An inference server with `model` (a local model dir) as base model `base` of account `local`, one deployment
 * `id` of it waited for until READY, and the official openai client on its inference API.
 */
export async function startDeployment(
  model: string,
  base: string,
  id: string,
): Promise<{ srv: ServerProcess; client: OpenAI }> {
  const srv = await startInferenceServer(['--base', `${base}=${model}`]);
  const client = new OpenAI({ baseURL: `${srv.url}/inference/v1`, apiKey: 'unused', timeout: 120_000, maxRetries: 0 });
  const api = `${srv.url}/v1/accounts/local/deployments`;
  const created = await postJson(`${api}?deploymentId=${id}`, { baseModel: base });
  if (created.status !== 200) throw new Error(`deployment ${id}: ${JSON.stringify(created.json)}\n${srv.output()}`);
  await until(async () => {
    const r = await fetch(`${api}/${id}`).then((x) => x.json());
    if (r.state === 'FAILED') throw new Error(JSON.stringify(r));
    return r.state === 'READY' ? true : undefined;
  });
  return { srv, client };
}
