// Signed download URLs, the way the managed API hands out model files: `/download/accounts/A/models/ID/FILE
// ?expires=UNIX&signature=HMAC` works without the API key until it expires; the HMAC key stays in the data dir.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { ApiError, badRequest, notFound } from './errors.ts';
import { isValidId, resourceName } from './ids.ts';
import { layout } from './service.ts';
import type { Store } from './store.ts';

/** URLs stay valid this long. */
const URL_TTL_S = 3600;

export function loadSecret(dataDir: string): Buffer {
  const f = layout.secret(dataDir);
  if (!fs.existsSync(f)) {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(f, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
  }
  return Buffer.from(fs.readFileSync(f, 'utf8').trim(), 'hex');
}

const sign = (secret: Buffer, name: string, file: string, expires: number) =>
  createHmac('sha256', secret).update(`${name}/${file}\n${expires}`).digest('base64url');

export function signedUrl(secret: Buffer, base: string, modelName: string, file: string, now = Date.now()): string {
  const expires = Math.floor(now / 1000) + URL_TTL_S;
  return `${base}/download/${modelName}/${file}?expires=${expires}&signature=${sign(secret, modelName, file, expires)}`;
}

/** Serves GET /download/accounts/A/models/ID/FILE for a valid signature; 400 / 401 / 404 otherwise. */
export function serveDownload(
  store: Store,
  secret: Buffer,
  rawPath: string,
  query: URLSearchParams,
  res: ServerResponse,
  allowed: string[],
): void {
  const segs = rawPath.split('/');
  // ['', 'download', 'accounts', A, 'models', ID, FILE]
  if (segs.length !== 7 || segs[2] !== 'accounts' || segs[4] !== 'models' || !isValidId(segs[3]) || !isValidId(segs[5]))
    throw badRequest('malformed download path');
  const file = segs[6];
  if (!allowed.includes(file))
    throw notFound(`no file ${JSON.stringify(file.slice(0, 80))} to download (files: ${allowed.join(', ')})`);
  const name = resourceName(segs[3], 'models', segs[5]);
  const expires = Number(query.get('expires'));
  const given = Buffer.from(query.get('signature') ?? '', 'base64url');
  const want = Buffer.from(sign(secret, name, file, expires), 'base64url');
  if (!Number.isInteger(expires) || given.length !== want.length || !timingSafeEqual(given, want))
    throw new ApiError(401, 'invalid download signature (get a fresh URL from :getDownloadEndpoint)');
  if (expires < Date.now() / 1000)
    throw new ApiError(401, 'download URL expired (get a fresh one from :getDownloadEndpoint)');
  const r = store.get('model', name);
  if (!r) throw notFound(`model ${name} not found`);
  const p = path.join(r.meta.dir as string, file);
  const size = fs.statSync(p).size;
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': size,
    'content-disposition': `attachment; filename="${file}"`,
  });
  fs.createReadStream(p).pipe(res);
}
