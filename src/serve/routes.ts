// The REST router: `/v1/accounts/{account}/{collection}[/{id}[:verb]]`. Each resource module (datasets, jobs,
// models; deployments next) contributes a list of routes; this file only parses paths and dispatches, so a new
// collection is one more import in ROUTES.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, badRequest, notFound } from './errors.ts';
import { requireId } from './ids.ts';
import { decodeSegment, sendJson } from './http.ts';
import type { Service } from './service.ts';
import { DATASET_ROUTES } from './datasets.ts';
import { JOB_ROUTES } from './jobs.ts';
import { MODEL_ROUTES } from './models.ts';
import * as path from 'node:path';
import { deploymentRoutes } from './deployment_routes.ts';
import { metricsStreamRoute, type JobLookup } from './dashboard_routes.ts';
import { resourceName } from './ids.ts';
import { logFile, outDir } from './worker.ts';

/** A job's state and metrics.jsonl, for the dashboard's live loss curves. */
const jobLookup = (svc: Service): JobLookup => ({
  job(account, id) {
    const r = svc.store.get('job', resourceName(account, 'supervisedFineTuningJobs', id));
    return (
      r && {
        state: r.state,
        metricsFile: path.join(outDir(r.meta.dir as string), 'metrics.jsonl'),
        logFile: logFile(r.meta.dir as string),
      }
    );
  },
});

type Method = 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';

export interface Ctx {
  svc: Service;
  req: IncomingMessage;
  res: ServerResponse;
  account: string;
  /** The resource id of an item route (already checked against the id rules). */
  id: string;
  query: URLSearchParams;
}

export interface Route {
  method: Method;
  collection: string;
  /** true for `/{collection}/{id}...`, false for `/{collection}`. */
  item: boolean;
  /** The custom verb after the id (`upload` in `{id}:upload`). */
  verb?: string;
  /** The JSON answered with 200; `undefined` when the handler has answered itself (a file download). */
  handle(ctx: Ctx): unknown | Promise<unknown>;
}

const ROUTES: Route[] = [
  ...DATASET_ROUTES,
  ...JOB_ROUTES,
  ...MODEL_ROUTES,
  ...deploymentRoutes<Ctx>((c) => c.svc.deployments),
  metricsStreamRoute<Ctx>((c) => jobLookup(c.svc)),
];

interface Parsed {
  account: string;
  collection: string;
  id?: string;
  verb?: string;
}

/** Splits a raw request path (never normalised, so '..' stays a segment and is refused as an id). */
function parsePath(rawPath: string): Parsed {
  const segs = rawPath.split('/').map(decodeSegment);
  if (segs[0] !== '' || segs[1] !== 'v1' || segs[2] !== 'accounts' || segs.length < 5 || segs.length > 6) {
    throw notFound(`no such route: ${rawPath.slice(0, 200)} (the API lives under /v1/accounts/{account_id}/...)`);
  }
  const account = requireId(segs[3], 'account id');
  const collection = segs[4];
  if (segs.length === 5) return { account, collection };
  const last = segs[5];
  const colon = last.indexOf(':');
  const id = colon === -1 ? last : last.slice(0, colon);
  return { account, collection, id, verb: colon === -1 ? undefined : last.slice(colon + 1) };
}

/** The route for a request, or a 404 / 405 saying what exists. */
function matchRoute(method: string, p: Parsed): Route {
  const forPath = ROUTES.filter((r) => r.collection === p.collection);
  if (!forPath.length)
    throw notFound(
      `no such collection '${p.collection.slice(0, 80)}' (known: ${[...new Set(ROUTES.map((r) => r.collection))].join(', ')})`,
    );
  const shape = forPath.filter((r) => r.item === (p.id !== undefined) && r.verb === p.verb);
  if (!shape.length)
    throw notFound(`no such method '${p.verb ?? ''}' on ${p.collection}${p.id !== undefined ? '/{id}' : ''}`);
  const route = shape.find((r) => r.method === method);
  if (!route)
    throw new ApiError(405, `${method} is not allowed here (allowed: ${shape.map((r) => r.method).join(', ')})`);
  return route;
}

export async function dispatch(
  svc: Service,
  req: IncomingMessage,
  res: ServerResponse,
  rawPath: string,
  query: URLSearchParams,
): Promise<void> {
  const p = parsePath(rawPath);
  const route = matchRoute(req.method ?? 'GET', p);
  // '-' is every account (AIP-159), which only a list of models or datasets takes (a job may use any account's):
  // nothing is made in, or read from, '-'.
  const everyAccount = ['models', 'datasets'].includes(route.collection) && !route.item && route.method === 'GET';
  if (p.account === '-' && !everyAccount)
    throw badRequest(
      "account '-' means every account: only GET /v1/accounts/-/models and /v1/accounts/-/datasets take it; name one account",
    );
  const id = p.id === undefined ? '' : requireId(p.id, `${p.collection.replace(/s$/, '')} id`);
  const out = await route.handle({ svc, req, res, account: p.account, id, query });
  if (out !== undefined && !res.headersSent) sendJson(res, 200, out);
}
