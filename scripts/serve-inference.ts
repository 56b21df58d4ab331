// Standalone inference server: deployments and the OpenAI-compatible API over models given on the command line
// (no store). Prints `listening on http://HOST:PORT` once ready.
//   npx tsx scripts/serve-inference.ts --base accounts/local/models/base=MODEL_DIR \
//     [--adapter accounts/local/models/ft=accounts/local/models/base:ADAPTER_DIR]... [--deploy MODEL[=ID]]...
//     [--host 127.0.0.1] [--port 8080] [--max-batch 32] [--backend NAME] [--threads N]
import { parseArgs } from 'node:util';
import { UserError } from '../src/errors.ts';
import { InMemoryRegistry } from '../src/infer/registry.ts';
import { DeploymentService } from '../src/serve/deployment_service.ts';
import { createInferenceServer, listen } from '../src/serve/infer_server.ts';

function split(v: string, sep: string, flag: string, form: string): [string, string] {
  const i = v.indexOf(sep);
  if (i <= 0 || i === v.length - 1) throw new UserError(`--${flag} ${v}: expected ${form}`);
  return [v.slice(0, i), v.slice(i + 1)];
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      base: { type: 'string', multiple: true, default: [] },
      adapter: { type: 'string', multiple: true, default: [] },
      deploy: { type: 'string', multiple: true, default: [] },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8080' },
      'max-batch': { type: 'string', default: '32' },
      backend: { type: 'string' },
      threads: { type: 'string' },
    },
  });
  const registry = new InMemoryRegistry();
  for (const b of v.base) registry.addBase(...split(b, '=', 'base', 'NAME=MODEL_DIR'));
  for (const a of v.adapter) {
    const [name, rest] = split(a, '=', 'adapter', 'NAME=BASE_NAME:ADAPTER_DIR');
    registry.addAdapter(name, ...split(rest, ':', 'adapter', 'NAME=BASE_NAME:ADAPTER_DIR'));
  }
  const svc = new DeploymentService(registry, {
    maxBatch: Number(v['max-batch']),
    backend: v.backend,
    threads: v.threads === undefined ? undefined : Number(v.threads),
    log: (m) => console.error(m),
  });
  for (const d of v.deploy) {
    const [model, id] = d.includes('=') ? split(d, '=', 'deploy', 'MODEL[=ID]') : [d, undefined];
    const rec = await svc.create(model.split('/')[1] ?? 'local', id, { baseModel: model });
    await svc.resolve(rec.baseModel); // waits until it is loaded
  }
  const server = createInferenceServer(svc);
  const url = await listen(server, v.host!, Number(v.port));
  console.log(`listening on ${url}`);
  const stop = () => {
    server.close(() => void svc.close().then(() => process.exit(0)));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
