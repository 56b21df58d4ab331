// `lorasft serve`: the HTTP server (node:http). Startup: open the store, recover from a crash (trainers of a killed
// server are gone or are killed now; their jobs are queued again to resume from their checkpoints), register the
// demo model on first start, listen, then start the queue. Every /v1 request needs the API key when one is set.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { processRunning } from '../util/process.ts';
import { UserError } from '../errors.ts';
import { demoModelDir, ensureDemoModel } from '../train/demo.ts';
import { ApiError } from './errors.ts';
import { keepIdleConnections, sendError, sendJson } from './http.ts';
import { dispatch } from './routes.ts';
import { loadSecret, serveDownload } from './download.ts';
import { receiveSignedUpload } from './bigupload.ts';
import { ADDON_FILES, importBaseModel } from './models.ts';
import { JobQueue } from './queue.ts';
import { handleDashboard } from './dashboard_routes.ts';
import { DeploymentService } from './deployment_service.ts';
import { OpenAIError } from './openai_params.ts';
import { handleInference, INFERENCE_PREFIX } from './inference_routes.ts';
import { StoreModelRegistry } from './store_registry.ts';
import type { ServeOptions, Service } from './service.ts';
import { openStore, type Store } from './store.ts';

const DEMO_MODEL_NAME = 'accounts/fireworks/models/lorasft-demo';

export interface RunningServer {
  url: string;
  svc: Service;
  close(): Promise<void>;
}

function authorized(req: http.IncomingMessage, key: string): boolean {
  if (!key) return true;
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1].trim());
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function handle(svc: Service, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const raw = req.url ?? '/';
  const q = raw.indexOf('?');
  const rawPath = q === -1 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1));
  try {
    if (handleDashboard(req, res, rawPath)) return;
    if (rawPath === '/healthz') return sendJson(res, 200, { status: 'SERVING', runningJobs: svc.queue.size });
    if (rawPath.startsWith('/download/')) return serveDownload(svc.store, svc.secret, rawPath, query, res, ADDON_FILES);
    if (rawPath.startsWith('/upload/')) return await receiveSignedUpload(svc, rawPath, query, req, res);
    const inference = rawPath === INFERENCE_PREFIX || rawPath.startsWith(`${INFERENCE_PREFIX}/`);
    if (!authorized(req, svc.opts.apiKey)) {
      const message = 'missing or wrong API key (send Authorization: Bearer $LORASFT_API_KEY)';
      if (!inference) throw new ApiError(401, message);
      req.resume();
      return sendJson(res, 401, new OpenAIError(401, message, null, 'invalid_api_key').body()); // OpenAI's shape
    }
    if (inference) return await handleInference(svc.deployments, req, res, rawPath);
    await dispatch(svc, req, res, rawPath, query);
  } catch (e) {
    if (!(e instanceof ApiError))
      console.error(`error: ${req.method} ${rawPath.slice(0, 200)}: ${(e as Error).stack ?? e}`);
    sendError(res, e instanceof ApiError ? e : new ApiError(500, `internal error: ${(e as Error).message}`));
    req.resume(); // drain an unread body so the client sees the answer
  }
}

/** After a crash: a trainer that outlived its server is killed (it is ours when its cmdline names the job dir); its job is queued again. */
async function recover(store: Store): Promise<number> {
  const stale = store.inStates('job', ['JOB_STATE_VALIDATING', 'JOB_STATE_RUNNING', 'JOB_STATE_CANCELLING']);
  for (const r of stale) {
    const pid = r.meta.pid as number | null;
    let cmd = '';
    try {
      cmd = pid ? fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
    } catch {
      /* gone */
    }
    if (pid && cmd.includes(r.meta.dir as string)) {
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 200 && processRunning(pid); i++) await new Promise((res) => setTimeout(res, 50));
    }
    const cancelled = r.state === 'JOB_STATE_CANCELLING';
    const state = cancelled ? 'JOB_STATE_CANCELLED' : 'JOB_STATE_PENDING';
    const now = new Date().toISOString();
    const status = cancelled
      ? { code: 'CANCELLED', message: 'cancelled' }
      : { code: 'OK', message: 'the server restarted; the job resumes from its last checkpoint' };
    store.update('job', r.name, {
      state,
      body: { ...r.body, state, status, updateTime: now, ...(cancelled ? { completedTime: now } : {}) },
      meta: { ...r.meta, pid: null },
    });
  }
  return stale.length;
}

/** One server per data dir: DIR/serve.pid names it; a pid that is gone (a killed server) is taken over. */
function lockDataDir(dataDir: string): () => void {
  const f = path.join(dataDir, 'serve.pid');
  let pid = 0;
  try {
    pid = Number(fs.readFileSync(f, 'utf8').trim());
  } catch {
    /* no server yet */
  }
  let cmd = '';
  try {
    cmd = pid && pid !== process.pid ? fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
  } catch {
    /* gone */
  }
  if (pid && processRunning(pid) && cmd.includes('serve'))
    throw new UserError(
      `${dataDir}: already served by lorasft serve (pid ${pid}); stop it, or choose another --data-dir`,
    );
  fs.writeFileSync(f, `${process.pid}\n`);
  return () => fs.rmSync(f, { force: true });
}

/** On the first start of a data dir: generate (once per cache) and register the demo base model. */
function registerDemo(store: Store, dataDir: string, log: (m: string) => void): void {
  const marker = path.join(dataDir, 'demo-model-registered');
  if (fs.existsSync(marker)) return;
  const dir = ensureDemoModel(log);
  importBaseModel(store, DEMO_MODEL_NAME, dir, 'lorasft demo (tiny random Qwen3)');
  fs.writeFileSync(marker, demoModelDir() + '\n');
  log(`registered the demo base model ${DEMO_MODEL_NAME}`);
}

export async function startServer(
  opts: ServeOptions,
  o: { demo: boolean; log?: (m: string) => void } = { demo: true },
): Promise<RunningServer> {
  const log = o.log ?? ((m: string) => console.log(m));
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const unlock = lockDataDir(opts.dataDir);
  const store = openStore(opts.dataDir);
  const svc = { store, opts, secret: loadSecret(opts.dataDir), uploading: new Set<string>(), baseUrl: '' } as Service;
  svc.queue = new JobQueue(svc);
  svc.deployments = new DeploymentService(new StoreModelRegistry(store), { log, store });
  const requeued = await recover(store);
  if (requeued)
    log(`recovered ${requeued} job(s) that were running when the server stopped; they resume from their checkpoints`);
  if (o.demo) registerDemo(store, opts.dataDir, log);
  const restored = await svc.deployments.restore();
  if (restored)
    log(`loading ${restored} deployment(s) again, with the LoRA models they served when the server stopped`);

  const server = keepIdleConnections(http.createServer((req, res) => void handle(svc, req, res)));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new UserError(`${opts.host}:${opts.port} is already in use (pick another --port)`)
          : e,
      ),
    );
    server.listen(opts.port, opts.host, resolve);
  });
  const addr = server.address() as { address: string; port: number };
  const host = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  svc.baseUrl = `http://${host}:${addr.port}`;
  svc.queue.start();
  return {
    url: svc.baseUrl,
    svc,
    async close() {
      server.close();
      server.closeAllConnections();
      await svc.queue.close();
      await svc.deployments.close();
      store.close();
      unlock();
    },
  };
}
