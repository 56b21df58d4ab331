// The managed API's large-file upload path: `:getUploadEndpoint` ({"filenameToSize": {"data.jsonl": N}}) answers
// a signed URL served by this server; the client PUTs the file there (streamed to disk, exactly N bytes);
// `:validateUpload` then checks it with `lorasft validate`'s rules and makes the dataset READY, or answers 400
// with the problems and drops the file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { jsonlNameProblem } from '../util/files.ts';
import { ApiError, badRequest, conflict, notFound } from './errors.ts';
import { queryParams, readJsonBody, rejectUnknown, sendJson } from './http.ts';
import { isValidId, resourceName } from './ids.ts';
import type { Ctx } from './routes.ts';
import { layout, type Service } from './service.ts';
import type { Json } from './store.ts';
import { placeValidated } from './upload.ts';

const TTL_S = 3600;
const PENDING = '.pending-upload.jsonl'; // named *.jsonl: `lorasft validate` checks the name too

const sign = (secret: Buffer, name: string, size: number, expires: number) =>
  createHmac('sha256', secret).update(`upload\n${name}\n${size}\n${expires}`).digest('base64url');

export async function getUploadEndpoint(c: Ctx): Promise<Json> {
  queryParams(c.query, []);
  const body = await readJsonBody(c.req);
  rejectUnknown(body, ['filenameToSize'], 'GetDatasetUploadEndpointRequest');
  const f = body.filenameToSize as Json;
  if (typeof f !== 'object' || f === null || Array.isArray(f) || Object.keys(f).length !== 1)
    throw badRequest('filenameToSize must map exactly one file name to its size in bytes');
  const [filename, sizeRaw] = Object.entries(f)[0];
  if (!/^[^/\\\0]{1,255}$/.test(filename) || filename === '.' || filename === '..')
    throw badRequest(`filenameToSize: ${JSON.stringify(filename.slice(0, 80))} is not a plain file name`);
  const problem = jsonlNameProblem(filename);
  if (problem) throw badRequest(`filenameToSize: ${filename} is ${problem}`);
  const size = typeof sizeRaw === 'string' && /^\d+$/.test(sizeRaw) ? Number(sizeRaw) : sizeRaw;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0)
    throw badRequest(
      `filenameToSize: the size of ${filename} must be a positive integer, got ${JSON.stringify(sizeRaw)}`,
    );
  if (size > c.svc.opts.maxUploadBytes)
    throw new ApiError(
      413,
      `${filename} is ${size} bytes; this server accepts at most ${c.svc.opts.maxUploadBytes} (serve --max-upload-mb)`,
    );
  const name = resourceName(c.account, 'datasets', c.id);
  const r = c.svc.store.get('dataset', name);
  if (!r) throw notFound(`dataset ${name} not found`);
  if (r.state === 'READY') throw conflict(`dataset ${name} already holds an uploaded file`);
  c.svc.store.update('dataset', name, { meta: { ...r.meta, pendingUpload: { filename, size } } });
  const expires = Math.floor(Date.now() / 1000) + TTL_S;
  const base = `http://${c.req.headers.host ?? c.svc.baseUrl.slice('http://'.length)}`;
  return {
    filenameToSignedUrls: {
      [filename]: `${base}/upload/${name}?size=${size}&expires=${expires}&signature=${sign(c.svc.secret, name, size, expires)}`,
    },
  };
}

/** PUT /upload/accounts/A/datasets/ID?size&expires&signature: the file's bytes, exactly `size` of them. */
export async function receiveSignedUpload(
  svc: Service,
  rawPath: string,
  query: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'PUT') throw new ApiError(405, 'PUT the file to this URL');
  const segs = rawPath.split('/'); // ['', 'upload', 'accounts', A, 'datasets', ID]
  if (
    segs.length !== 6 ||
    segs[2] !== 'accounts' ||
    segs[4] !== 'datasets' ||
    !isValidId(segs[3]) ||
    !isValidId(segs[5])
  )
    throw badRequest('malformed upload path');
  const name = resourceName(segs[3], 'datasets', segs[5]);
  const size = Number(query.get('size'));
  const expires = Number(query.get('expires'));
  const given = Buffer.from(query.get('signature') ?? '', 'base64url');
  const want = Buffer.from(sign(svc.secret, name, size, expires), 'base64url');
  if (!Number.isInteger(expires) || given.length !== want.length || !timingSafeEqual(given, want))
    throw new ApiError(401, 'invalid upload signature (get a fresh URL from :getUploadEndpoint)');
  if (expires < Date.now() / 1000)
    throw new ApiError(401, 'upload URL expired (get a fresh one from :getUploadEndpoint)');
  const r = svc.store.get('dataset', name);
  if (!r || r.state === 'READY') throw notFound(`dataset ${name} is not waiting for an upload`);
  if (svc.uploading.has(name)) throw conflict(`dataset ${name}: another upload is in progress`);
  svc.uploading.add(name);
  const dir = layout.dataset(svc.opts.dataDir, segs[3], segs[5]);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `${PENDING}.part`);
  try {
    let n = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        cb(n > size ? badRequest(`more than the ${size} bytes announced to :getUploadEndpoint`) : null, chunk);
      },
    });
    await pipeline(req, count, fs.createWriteStream(tmp));
    if (n !== size) throw badRequest(`received ${n} bytes, ${size} were announced to :getUploadEndpoint`);
    fs.renameSync(tmp, path.join(dir, PENDING));
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    req.resume();
    throw e instanceof ApiError ? e : badRequest(`upload failed: ${(e as Error).message}`);
  } finally {
    svc.uploading.delete(name);
  }
  sendJson(res, 200, {});
}

export async function validateUpload(c: Ctx): Promise<Json> {
  queryParams(c.query, []);
  rejectUnknown(await readJsonBody(c.req), [], 'ValidateDatasetUploadRequest');
  const name = resourceName(c.account, 'datasets', c.id);
  const r = c.svc.store.get('dataset', name);
  if (!r) throw notFound(`dataset ${name} not found`);
  if (r.state === 'READY') throw conflict(`dataset ${name} already holds an uploaded file`);
  const dir = layout.dataset(c.svc.opts.dataDir, c.account, c.id);
  const pending = path.join(dir, PENDING);
  const p = r.meta.pendingUpload as { filename: string; size: number } | undefined;
  if (!p || !fs.existsSync(pending))
    throw badRequest(
      `dataset ${name} has no uploaded file to validate (:getUploadEndpoint, then PUT the file to its URL)`,
    );
  if (c.svc.uploading.has(name)) throw conflict(`dataset ${name}: an upload is in progress`);
  c.svc.uploading.add(name);
  try {
    const meta = { ...r.meta };
    delete meta.pendingUpload;
    let done;
    try {
      done = await placeValidated(
        pending,
        layout.datasetFile(c.svc.opts.dataDir, c.account, c.id),
        p.filename,
        p.size,
        (r.meta.expectedCount as number | null) ?? undefined,
      );
    } catch (e) {
      c.svc.store.update('dataset', name, { meta });
      throw e;
    }
    const body = {
      ...r.body,
      state: 'READY',
      status: { code: 'OK', message: '' },
      exampleCount: String(done.examples),
      updateTime: new Date().toISOString(),
    };
    c.svc.store.update('dataset', name, {
      state: 'READY',
      body,
      meta: { ...meta, bytes: done.bytes, filename: done.filename },
    });
    return body;
  } finally {
    c.svc.uploading.delete(name);
  }
}
