// `lorasft serve`: the managed workflow on this machine, a Fireworks-shaped REST API for datasets, supervised
// fine-tuning jobs and models (src/serve/). Ctrl-C / SIGTERM: trainers checkpoint, their jobs stay queued.
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { numberFlag, parseFlags } from '../util/args.ts';
import { MAX_THREADS } from '../backend/threads.ts';
import { startServer } from '../serve/server.ts';

const HELP = `usage: lorasft serve [--host 127.0.0.1] [--port 8080] [--data-dir DIR] [--workers 1] [--api-key KEY]

Serves /v1/accounts/{account}/datasets, /supervisedFineTuningJobs, /models and /deployments as the managed API
does, the OpenAI-compatible /inference/v1 of its deployments and a dashboard at /, with state in DIR/lorasft.db
(SQLite, WAL) and files under DIR. Jobs run first in first out, each in its own trainer process. Prints
'listening on http://HOST:PORT' once ready. With an API key (flag or LORASFT_API_KEY) every request needs
'Authorization: Bearer KEY'. Client verbs: lorasft dataset | sftj | model | deployment (LORASFT_API_BASE,
LORASFT_API_KEY).

  --host H             address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --port N             port (default 8080; 0 picks a free one)
  --data-dir DIR       state, datasets, job dirs and models (default ./lorasft-data)
  --workers N          jobs trained at the same time (default 1; 0: accept and queue jobs, run none)
  --threads-per-job N  compute threads of each trainer (default: cores / workers)
  --api-key KEY        require this bearer token (default $LORASFT_API_KEY; none: no auth)
  --max-upload-mb N    largest dataset upload (default 1024)
  --no-demo-model      do not register the demo base model on the first start`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('serve', argv, {
    host: { type: 'string' },
    port: { type: 'string' },
    'data-dir': { type: 'string' },
    workers: { type: 'string' },
    'threads-per-job': { type: 'string' },
    'api-key': { type: 'string' },
    'max-upload-mb': { type: 'string' },
    'no-demo-model': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length)
    throw new UserError(
      `lorasft serve: unexpected argument '${positionals[0]}' (flags only; see lorasft serve --help)`,
    );
  const workers = numberFlag('workers', values.workers, { integer: true, min: 0 }) ?? 1;
  const cores = os.availableParallelism();
  const server = await startServer(
    {
      host: values.host ?? '127.0.0.1',
      port: numberFlag('port', values.port, { integer: true, min: 0, max: 65535 }) ?? 8080,
      dataDir: path.resolve(values['data-dir'] ?? 'lorasft-data'),
      workers,
      apiKey: values['api-key'] ?? process.env.LORASFT_API_KEY ?? '',
      maxUploadBytes: Math.round(
        (numberFlag('max-upload-mb', values['max-upload-mb'], { above: 0 }) ?? 1024) * 1024 * 1024,
      ),
      threadsPerJob:
        numberFlag('threads-per-job', values['threads-per-job'], { integer: true, min: 1, max: MAX_THREADS }) ??
        Math.max(1, Math.floor(cores / Math.max(1, workers))),
    },
    { demo: !values['no-demo-model'] },
  );
  console.log(`listening on ${server.url}`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      console.log(`${sig}: stopping (running jobs checkpoint and stay queued)`);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      server.close().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}
