// A Deployment in its own process (host.ts): the server's side. The same calls as Deployment (encode, decode,
// complete, load / unload LoRA, close), answered over IPC, so that a long prefill or a batch of decoding steps never
// stalls the server's HTTP handling, and a deployment that runs out of memory takes only its own process down.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import type { Prompt } from './deployment.ts';
import type { SubmitOptions } from './engine.ts';
import type { HostConfig, HostMessage, HostRequest } from './host.ts';
import type { Completion, SamplingParams } from './sequence.ts';

const HOST_MAIN = path.join(path.dirname(new URL(import.meta.url).pathname), 'host_main.mjs');

const how = (code: number | null, signal: string | null) => (signal ? `signal ${signal}` : `code ${code}`);

/** How long a request whose write failed waits for the process's 'exit' (and its reason) before it fails anyway. */
const EXIT_WAIT_MS = 5000;

/** An error because the inference process ended (killed, out of memory), not because a request was wrong. */
export const exited = (message: string) => Object.assign(new Error(message), { exited: true });
export const isExited = (e: unknown) => (e as { exited?: boolean } | null)?.exited === true;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onText?: (piece: string) => void;
}

type Ask = HostRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class HostedDeployment {
  /** Requests sent and not answered yet (the least busy deployment takes the next request). */
  inFlight = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly exited: Promise<void>;
  private gone?: string;
  private closing = false;
  /** The inference process's pid. */
  readonly pid: number;
  /** Why the process ended, once it has. */
  get exitReason(): string | undefined {
    return this.gone;
  }

  private constructor(
    private readonly child: ChildProcess,
    /** Called once if the process ends without close() (killed, out of memory): why, in words. */
    private readonly onExit: (why: string) => void,
  ) {
    this.pid = child.pid!;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.gone = `the deployment's inference process exited (${how(code, signal)})`;
        for (const p of this.pending.values()) p.reject(exited(this.gone));
        this.pending.clear();
        if (!this.closing) this.onExit(this.gone);
        resolve();
      }),
    );
    child.on('message', (m: HostMessage) => this.receive(m));
  }

  /** Starts the process and loads the base model in it; resolves once it is ready, with the backend it chose. */
  static start(cfg: HostConfig, onExit: (why: string) => void): Promise<{ dep: HostedDeployment; backend: string }> {
    // Its own process group: a Ctrl-C at the terminal reaches the server, which closes its deployments (a server
    // that dies closes the IPC channel, and the host exits).
    const child = spawn(process.execPath, [HOST_MAIN], {
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, LORASFT_HOST: JSON.stringify(cfg) },
    });
    return new Promise((resolve, reject) => {
      const early = (code: number | null, signal: string | null) =>
        reject(exited(`the inference process exited while loading (${how(code, signal)})`));
      child.once('exit', early);
      child.once('message', (m: HostMessage) => {
        child.off('exit', early);
        if (m.t === 'ready') resolve({ dep: new HostedDeployment(child, onExit), backend: m.backend });
        else {
          reject(new Error(m.t === 'failed' ? m.message : `unexpected first message ${m.t}`));
          child.kill('SIGKILL');
        }
      });
    });
  }

  private receive(m: HostMessage): void {
    if (m.t === 'ready' || m.t === 'failed') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.t === 'text') return p.onText?.(m.piece);
    this.pending.delete(m.id);
    if (m.t === 'reply') p.resolve(m.value);
    else p.reject(m.user ? new UserError(m.message) : new Error(m.message));
  }

  private ask<T>(req: Ask, onText?: (piece: string) => void, signal?: AbortSignal): Promise<T> {
    if (this.gone) return Promise.reject(exited(this.gone));
    const id = this.nextId++;
    this.inFlight++;
    const cancel = () => this.send({ t: 'cancel', id });
    signal?.addEventListener('abort', cancel, { once: true });
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onText });
      // A process that died a moment ago: its 'exit' may not have come yet, and the write fails (EPIPE). The request
      // stays pending, so that 'exit' rejects it with why the process ended (a signal, an exit code); should 'exit'
      // not come, the failed write does, after EXIT_WAIT_MS.
      this.send({ ...req, id } as HostRequest, (e) => {
        setTimeout(() => {
          if (this.pending.delete(id))
            reject(exited(this.gone ?? `the deployment's inference process is gone (${e.message})`));
        }, EXIT_WAIT_MS).unref();
      });
      if (signal?.aborted) cancel();
    }).finally(() => {
      this.inFlight--;
      signal?.removeEventListener('abort', cancel);
    });
  }

  /**
   * Sends to the process; a failed write (the process is gone) calls `failed` instead of becoming an uncaught
   * 'error' event, which would take the server down with it.
   */
  private send(req: HostRequest, failed: (e: Error) => void = () => {}): void {
    if (!this.child.connected) return failed(new Error('IPC channel closed'));
    this.child.send(req, (e: Error | null) => e && failed(e));
  }

  /** Token ids of a prompt (the chat template with the generation prompt, raw text, or ids checked against V). */
  encode(prompt: Prompt): Promise<number[]> {
    return this.ask({ t: 'encode', prompt });
  }

  /** Text of token ids, special tokens included. */
  decode(ids: number[]): Promise<string> {
    return this.ask({ t: 'decode', ids });
  }

  /** One completion with adapter `adapter` (null: the base model); see Deployment.complete. */
  complete(
    ids: number[],
    adapter: string | null,
    params: SamplingParams,
    opts: SubmitOptions = {},
  ): Promise<Completion> {
    return this.ask({ t: 'complete', ids, adapter, params }, opts.onText, opts.signal);
  }

  async loadLora(name: string, dir: string): Promise<void> {
    await this.ask({ t: 'load', name, dir });
  }

  async unloadLora(name: string): Promise<void> {
    await this.ask({ t: 'unload', name });
  }

  /** Cancels the requests in flight, frees the weights and ends the process. */
  async close(): Promise<void> {
    this.closing = true;
    this.send({ t: 'close' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(t);
  }
}
