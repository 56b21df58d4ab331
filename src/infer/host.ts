// The inference process of one deployment (started by hosted.ts): loads the base model, then answers the server's
// messages over IPC (encode, decode, complete with its text pieces streamed, cancel, load / unload LoRA, close), so
// that prefills and decoding steps never hold up the server's event loop. It exits when the server goes away.
import { initBackend } from '../backend/index.ts';
import { UserError } from '../errors.ts';
import { Deployment, type Prompt } from './deployment.ts';
import type { SamplingParams } from './sequence.ts';

/** What the server sends (`id`: the request's number, echoed in the answer). */
export type HostRequest =
  | { t: 'encode'; id: number; prompt: Prompt }
  | { t: 'decode'; id: number; ids: number[] }
  | { t: 'complete'; id: number; ids: number[]; adapter: string | null; params: SamplingParams }
  | { t: 'cancel'; id: number }
  | { t: 'load'; id: number; name: string; dir: string }
  | { t: 'unload'; id: number; name: string }
  | { t: 'close' };

/** What the host sends: once `ready` or `failed`, then answers (`user`: a UserError, the client's fault). */
export type HostMessage =
  | { t: 'ready'; backend: string }
  | { t: 'failed'; message: string }
  | { t: 'text'; id: number; piece: string }
  | { t: 'reply'; id: number; value: unknown }
  | { t: 'error'; id: number; message: string; user: boolean };

/** The host's settings, passed in the LORASFT_HOST environment variable as JSON. */
export interface HostConfig {
  baseDir: string;
  maxBatch?: number;
  backend?: string;
  threads?: number;
}

// Once the server is gone (its 'disconnect' may wait behind a long model load), a send that fails ends the process.
const send = (m: HostMessage) =>
  void (process.connected && process.send!(m, undefined, undefined, (e: Error | null) => e && process.exit(0)));

async function answer(dep: Deployment, m: Exclude<HostRequest, { t: 'cancel' | 'close' }>, signal: AbortSignal) {
  switch (m.t) {
    case 'encode':
      return dep.encode(m.prompt);
    case 'decode':
      return dep.decode(m.ids);
    case 'complete':
      return dep.complete(m.ids, m.adapter, m.params, {
        signal,
        onText: (piece) => send({ t: 'text', id: m.id, piece }),
      });
    case 'load':
      return dep.loadLora(m.name, m.dir);
    case 'unload':
      return dep.unloadLora(m.name);
  }
}

export async function runHost(cfg: HostConfig): Promise<void> {
  process.on('disconnect', () => process.exit(0)); // the server is gone
  let dep: Deployment;
  try {
    const b = await initBackend({ backend: cfg.backend, threads: cfg.threads });
    dep = await Deployment.load(cfg.baseDir, { maxBatch: cfg.maxBatch });
    send({ t: 'ready', backend: `${b.name} (${b.reason})` });
  } catch (e) {
    send({ t: 'failed', message: (e as Error).message });
    process.disconnect();
    return;
  }
  const aborts = new Map<number, AbortController>();
  process.on('message', (m: HostRequest) => {
    if (m.t === 'cancel') return aborts.get(m.id)?.abort();
    if (m.t === 'close') return void dep.close().then(() => process.disconnect());
    const ac = new AbortController();
    aborts.set(m.id, ac);
    void (async () => {
      try {
        send({ t: 'reply', id: m.id, value: (await answer(dep, m, ac.signal)) ?? null });
      } catch (e) {
        send({ t: 'error', id: m.id, message: (e as Error).message, user: e instanceof UserError });
      } finally {
        aborts.delete(m.id);
      }
    })();
  });
}
