// The REST client the firectl-like verbs use: LORASFT_API_BASE (default http://127.0.0.1:8080), LORASFT_API_KEY,
// account `local` unless -a/--account says otherwise. An API error becomes one UserError line with its status.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { requireFile } from '../util/files.ts';

export type Json = Record<string, unknown>;

export interface ClientOptions {
  base?: string;
  apiKey?: string;
  account?: string;
}

export class ApiClient {
  readonly base: string;
  readonly account: string;
  private apiKey: string;

  constructor(o: ClientOptions = {}) {
    this.base = (o.base ?? process.env.LORASFT_API_BASE ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
    this.apiKey = o.apiKey ?? process.env.LORASFT_API_KEY ?? '';
    this.account = o.account ?? process.env.LORASFT_ACCOUNT ?? 'local';
  }

  /** `/v1/accounts/{account}/` + rest. */
  url(rest: string): string {
    return `${this.base}/v1/accounts/${encodeURIComponent(this.account)}/${rest}`;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}), ...extra };
  }

  /** `rest` is relative to the account (`datasets/x`), or a full URL (refPath). */
  async request(
    method: string,
    rest: string,
    body?: unknown,
    query: Record<string, string | undefined> = {},
  ): Promise<Json> {
    const qs = new URLSearchParams(
      Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''),
    ).toString();
    const init: RequestInit = {
      method,
      headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    return this.send((/^https?:/.test(rest) ? rest : this.url(rest)) + (qs ? `?${qs}` : ''), init);
  }

  /**
   * fetch, or one line saying the server cannot be reached. A GET whose reused keep-alive socket the server closed
   * as the request went out (its idle timer fires late when its event loop was busy, e.g. loading a model) is sent
   * once more, on a new connection: a GET is safe to repeat.
   */
  private async fetchOrExplain(url: string, init: RequestInit): Promise<Response> {
    const codeOf = (e: unknown) => (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fetch(url, init);
      } catch (e) {
        const cause = codeOf(e);
        const stale = cause === 'ECONNRESET' || cause === 'UND_ERR_SOCKET';
        if (init.method === 'GET' && stale && attempt === 0) continue;
        throw new UserError(
          `cannot reach ${this.base} (${cause}); start the server with 'lorasft serve' or set LORASFT_API_BASE`,
        );
      }
    }
  }

  private async send(url: string, init: RequestInit): Promise<Json> {
    const res = await this.fetchOrExplain(url, init);
    const text = await res.text();
    let j: Json = {};
    try {
      j = text ? (JSON.parse(text) as Json) : {};
    } catch {
      throw new UserError(`${init.method} ${url}: HTTP ${res.status}, not a JSON answer: ${text.slice(0, 200)}`);
    }
    if (!res.ok) {
      const err = (j.error ?? {}) as Json;
      throw new UserError(`${err.status ?? `HTTP ${res.status}`}: ${err.message ?? text.slice(0, 500)}`);
    }
    return j;
  }

  /** Streams `file` as the multipart `file` part of `POST datasets/{id}:upload` (never read whole into memory). */
  async upload(datasetId: string, file: string): Promise<Json> {
    requireFile(file, 'the dataset JSONL to upload');
    const form = new FormData();
    form.append('file', await fs.openAsBlob(file), path.basename(file));
    return this.send(this.url(`datasets/${encodeURIComponent(datasetId)}:upload`), {
      method: 'POST',
      headers: this.headers(),
      body: form,
    });
  }

  /** Downloads `url` (a signed URL: no API key needed) to `dest`, through a temp file. */
  async download(url: string, dest: string): Promise<number> {
    const res = await fetch(url);
    if (!res.ok)
      throw new UserError(`download ${url.split('?')[0]}: HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const buf = Buffer.from(await res.arrayBuffer());
    const tmp = `${dest}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, buf);
    fs.renameSync(tmp, dest);
    return buf.length;
  }
}

/** A resource name or a bare id, as firectl takes them: `accounts/A/C/ID` keeps its account; `ID` is in ours. */
export function refPath(client: ApiClient, collection: string, nameOrId: string): string {
  const m = /^accounts\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(nameOrId);
  if (m) {
    if (m[2] !== collection)
      throw new UserError(
        `${nameOrId}: not a ${collection.replace(/s$/, '')} name (accounts/ACCOUNT/${collection}/ID)`,
      );
    return `${client.base}/v1/accounts/${encodeURIComponent(m[1])}/${collection}/${encodeURIComponent(m[3])}`;
  }
  return client.url(`${collection}/${encodeURIComponent(nameOrId)}`);
}
