// The dashboard: static pages at `/` (src/serve/dashboard/: one page, vanilla JS over the REST API) with uPlot
// served from its npm package (no CDN), the create-job form's fields (the trainer config's FIELDS: kind, default,
// help), and the live loss curve feed: a job's metrics.jsonl as server-sent events while it runs.
import * as fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIELDS } from '../train/config_fields.ts';
import { TERMINAL_STATES } from '../train/job.ts';
import { notFound } from './errors.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const UPLOT = path.dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));

/** URL path -> [file, content type]. */
const STATIC: Record<string, [string, string]> = {
  '/': [path.join(HERE, 'dashboard', 'index.html'), 'text/html; charset=utf-8'],
  '/ui/app.js': [path.join(HERE, 'dashboard', 'app.js'), 'text/javascript; charset=utf-8'],
  '/ui/app.css': [path.join(HERE, 'dashboard', 'app.css'), 'text/css; charset=utf-8'],
  '/ui/uPlot.iife.min.js': [path.join(UPLOT, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8'],
  '/ui/uPlot.min.css': [path.join(UPLOT, 'uPlot.min.css'), 'text/css; charset=utf-8'],
};

/**
 * What the service takes where FIELDS' help speaks of the CLI's files and directories: resource names (ids in the
 * request's account, or full accounts/A/... names), the output model's default, the template as text.
 */
const SERVICE_HELP: Record<string, { help: string; defaultText?: string; multiline?: boolean }> = {
  dataset: { help: 'training data: a dataset id or accounts/A/datasets/ID (required)' },
  evaluationDataset: { help: 'evaluation data: a dataset id or accounts/A/datasets/ID (instead of a carve-out)' },
  baseModel: { help: 'the base model: a model id or accounts/A/models/ID (this or warmStartFrom)' },
  warmStartFrom: {
    help: 'a PEFT addon model to continue training: a model id or accounts/A/models/ID (its base model, rank and alpha win)',
  },
  outputModel: {
    help: 'the model the adapter is registered as: a model id or accounts/A/models/ID',
    defaultText: 'the job id',
  },
  jinjaTemplate: { help: "chat template text (Jinja) instead of the model's own", multiline: true },
};

/** The create-job form's fields, in the config's order (jobId is the ?supervisedFineTuningJobId= parameter). */
function jobFormFields(): Array<{
  name: string;
  kind: string;
  default: unknown;
  help: string;
  defaultText?: string;
  choices?: string[];
  multiline?: boolean;
}> {
  return Object.entries(FIELDS)
    .filter(([k]) => k !== 'jobId')
    .map(([name, f]) => ({
      name,
      kind: f.kind,
      default: f.default,
      choices: (f as { choices?: string[] }).choices,
      ...(SERVICE_HELP[name] ?? { help: f.help, defaultText: f.defaultText }),
    }));
}

/** Serves the dashboard's files; false when `pathname` is not one of them (the caller routes it on). */
export function handleDashboard(req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (pathname === '/ui/job-fields.json') {
    const text = JSON.stringify(jobFormFields());
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
    return true;
  }
  const hit = STATIC[pathname === '/index.html' ? '/' : pathname];
  if (!hit) return false;
  const body = fs.readFileSync(hit[0]);
  res.writeHead(200, { 'content-type': hit[1], 'content-length': body.length, 'cache-control': 'no-cache' });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}

/** What the metrics feed needs to know about a job: its state and its metrics.jsonl path. */
export interface JobLookup {
  /** logFile: the trainer's log, where it names the backend it runs on (`backend: native (...)`). */
  job(account: string, id: string): { state: string; metricsFile: string; logFile?: string } | undefined;
}

/** The backend the trainer logged, or undefined before it has. */
function loggedBackend(logFile: string | undefined): string | undefined {
  if (!logFile || !fs.existsSync(logFile)) return undefined;
  const fd = fs.openSync(logFile, 'r');
  const buf = Buffer.alloc(64 * 1024);
  const n = fs.readSync(fd, buf, 0, buf.length, 0);
  fs.closeSync(fd);
  return /backend: (.+)/.exec(buf.subarray(0, n).toString('utf8'))?.[1].trim();
}

/** A state after which the stream has nothing more to send ('DELETED': the job is gone). */
const ended = (state: string) => state === 'DELETED' || (TERMINAL_STATES as string[]).includes(state);

/**
 * `GET .../supervisedFineTuningJobs/{id}:streamMetrics`: server-sent events, one `metrics` event per metrics.jsonl
 * row (train and eval rows as the trainer writes them), a `state` event whenever the job state changes, a `backend`
 * event once the trainer has named its backend; the
 * stream ends after the job reaches a terminal state and its last rows are sent. Polls the file twice a second.
 */
export function metricsStreamRoute<
  C extends { req: IncomingMessage; res: ServerResponse; account: string; id: string },
>(of: (c: C) => JobLookup) {
  return {
    method: 'GET' as const,
    collection: 'supervisedFineTuningJobs',
    item: true,
    verb: 'streamMetrics',
    handle(c: C): undefined {
      const lookup = of(c);
      if (!lookup.job(c.account, c.id))
        throw notFound(`job accounts/${c.account}/supervisedFineTuningJobs/${c.id} not found`);
      c.res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      let offset = 0;
      let partial = '';
      let state = '';
      let backend: string | undefined;
      const tick = () => {
        const j = lookup.job(c.account, c.id);
        if (j && backend === undefined && (backend = loggedBackend(j.logFile)) !== undefined)
          c.res.write(`event: backend\ndata: ${JSON.stringify({ backend })}\n\n`);
        if (j && fs.existsSync(j.metricsFile)) {
          const size = fs.statSync(j.metricsFile).size;
          if (size < offset) offset = 0; // rewritten on resume: start over
          if (size > offset) {
            const fd = fs.openSync(j.metricsFile, 'r');
            const buf = Buffer.alloc(size - offset);
            fs.readSync(fd, buf, 0, buf.length, offset);
            fs.closeSync(fd);
            offset = size;
            const lines = (partial + buf.toString('utf8')).split('\n');
            partial = lines.pop()!; // a line still being written
            for (const l of lines) if (l.trim()) c.res.write(`event: metrics\ndata: ${l}\n\n`);
          }
        }
        const now = j?.state ?? 'DELETED';
        if (now !== state) c.res.write(`event: state\ndata: ${JSON.stringify({ state: (state = now) })}\n\n`);
        if (ended(now)) stop();
      };
      const timer = setInterval(tick, 500);
      const stop = () => {
        clearInterval(timer);
        if (!c.res.writableEnded) c.res.end();
      };
      c.res.on('close', stop);
      tick();
      return undefined;
    },
  };
}
