// Small HTTP helpers for node:http: JSON bodies in (bounded, objects only) and out, query parameters, pages, the
// servers' keep-alive.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ApiError, badRequest, errorBody } from './errors.ts';
import type { Json, Page } from './store.ts';

/** Largest JSON request body read (uploads go through their own streaming path). */
const MAX_JSON_BYTES = 1 << 20;

/**
 * Keep idle keep-alive connections for 65 s (Node's default is 5 s). A client whose event loop is busy (a test
 * decoding in-process, a script loading a model) may reuse an idle connection after the server's timer closed it,
 * and its request then fails with "other side closed"; clients expire idle connections before the server's hint
 * only if their own timers run on time. server.close() (Node >= 19) still drops idle connections at once.
 */
export function keepIdleConnections(server: Server): Server {
  server.keepAliveTimeout = 65_000;
  return server;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendError(res: ServerResponse, e: ApiError): void {
  if (res.headersSent) return void res.destroy();
  sendJson(res, e.httpStatus, errorBody(e));
}

/** The request body as a JSON object (an empty body is `{}`); 400 for anything else, 413 when too large. */
export async function readJsonBody(req: IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_JSON_BYTES) throw new ApiError(413, `request body is over ${MAX_JSON_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw badRequest(`request body is not valid JSON (${(e as Error).message.slice(0, 120)})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest('request body must be a JSON object');
  return v as Json;
}

/** Rejects any key of `obj` not in `known`, by name (as `train --config` does). */
export function rejectUnknown(obj: Json, known: readonly string[], where: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) throw badRequest(`${where}: unknown field '${k}' (known: ${known.join(', ')})`);
  }
}

/** Query parameters; a parameter not in `known` is a 400 naming it. */
export function queryParams(search: URLSearchParams, known: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of search) {
    if (!known.includes(k)) throw badRequest(`unknown query parameter '${k}' (known: ${known.join(', ') || 'none'})`);
    out[k] = v;
  }
  return out;
}

const DEFAULT_PAGE = 50;
const MAX_PAGE = 200;

/** pageSize (default 50, at most 200) and the seq a pageToken continues after. */
export function pageArgs(q: Record<string, string>): { pageSize: number; after?: number } {
  let pageSize = DEFAULT_PAGE;
  if (q.pageSize !== undefined) {
    const n = Number(q.pageSize);
    if (!/^\d+$/.test(q.pageSize) || !Number.isSafeInteger(n))
      throw badRequest(`pageSize must be a non-negative integer, got ${JSON.stringify(q.pageSize)}`);
    pageSize = n === 0 ? DEFAULT_PAGE : Math.min(n, MAX_PAGE);
  }
  if (!q.pageToken) return { pageSize };
  const m = /^s(\d+)$/.exec(Buffer.from(q.pageToken, 'base64url').toString('latin1'));
  if (!m)
    throw badRequest(
      `invalid pageToken ${JSON.stringify(q.pageToken.slice(0, 80))} (pass the nextPageToken of the previous page)`,
    );
  return { pageSize, after: Number(m[1]) };
}

/** The token of the page that continues after `seq` (pageArgs reads it back). */
export const pageToken = (seq: number) => Buffer.from(`s${seq}`, 'latin1').toString('base64url');

/** A list response: `{ [field]: [...], nextPageToken, totalSize }`. */
export function pageBody(field: string, page: Page, show: (body: Json) => Json = (b) => b): Json {
  return {
    [field]: page.items.map((r) => show(r.body)),
    nextPageToken: page.next === undefined ? '' : pageToken(page.next),
    totalSize: page.total,
  };
}

/** One percent-encoded path segment, decoded; malformed encoding is a 400, not a crash. */
export function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw badRequest(`malformed percent-encoding in path segment ${JSON.stringify(s.slice(0, 80))}`);
  }
}
