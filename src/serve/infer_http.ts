// HTTP helpers of the deployment and inference routes: the REST error shape
// `{"error": {"code": 404, "message": "...", "status": "NOT_FOUND"}}`, bounded JSON bodies in, JSON out.
// Same names and behaviour as the service's errors.ts / http.ts (issue 11), so these routes mount there by
// switching two imports.
import type { IncomingMessage, ServerResponse } from 'node:http';

export type Json = Record<string, unknown>;

const STATUS_NAME: Record<number, string> = {
  400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 404: 'NOT_FOUND', 405: 'UNIMPLEMENTED', 409: 'ALREADY_EXISTS', 413: 'INVALID_ARGUMENT', 500: 'INTERNAL',
};

/** An error the client caused (or may act on): answered with its HTTP status and one message. */
export class ApiError extends Error {
  constructor(readonly httpStatus: number, message: string, readonly statusName = STATUS_NAME[httpStatus] ?? 'UNKNOWN') {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (m: string) => new ApiError(400, m);
export const notFound = (m: string) => new ApiError(404, m);
export const conflict = (m: string) => new ApiError(409, m, 'FAILED_PRECONDITION');
export const alreadyExists = (m: string) => new ApiError(409, m, 'ALREADY_EXISTS');

export function errorBody(e: ApiError): { error: { code: number; message: string; status: string } } {
  return { error: { code: e.httpStatus, message: e.message, status: e.statusName } };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, e: ApiError): void {
  if (res.headersSent) return void res.destroy();
  sendJson(res, e.httpStatus, errorBody(e));
}

export const MAX_JSON_BYTES = 1 << 20;

/** The request body as text (at most `max` bytes; 413 beyond). */
export async function readBody(req: IncomingMessage, max = MAX_JSON_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > max) throw new ApiError(413, `request body is over ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The request body as a JSON object (an empty body is `{}`); 400 for anything else. */
export async function readJsonBody(req: IncomingMessage): Promise<Json> {
  const text = await readBody(req);
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

/** Rejects any key of `obj` not in `known`, by name. */
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
