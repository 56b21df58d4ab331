// A dataset upload: the multipart `file` part streamed to a temp file next to its final place (never held in
// memory; the size limit enforced while streaming), checked by `lorasft validate` in a child process (exactly its
// rules, and the server's event loop stays free while a large file is read), then renamed into place. A file that
// fails validation is a 400 listing its `line N: ...` problems and leaves nothing behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { jsonlNameProblem } from '../util/files.ts';
import { ApiError, badRequest } from './errors.ts';

export const LORASFT_BIN = new URL('../../bin/lorasft.js', import.meta.url).pathname;

export interface UploadResult {
  examples: number;
  bytes: number;
  filename: string;
}

/** Why a request's headers alone rule the upload out (not multipart, or declared too large), or null. */
function refuseHeaders(req: IncomingMessage, maxBytes: number): ApiError | null {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(type))
    return badRequest(
      `expected a multipart/form-data body with a 'file' part (curl -F file=@data.jsonl), got content-type ${JSON.stringify(type)}`,
    );
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes + 64 * 1024)
    return new ApiError(
      413,
      `upload is ${declared} bytes; this server accepts at most ${maxBytes} (serve --max-upload-mb)`,
    );
  return null;
}

/** Why a multipart part is refused before anything of it is written: not the `file` part, or not named *.jsonl. */
function refusePart(field: string, filename: string | undefined): ApiError | null {
  if (field !== 'file') return badRequest(`unexpected multipart part '${field}' (send the dataset as the 'file' part)`);
  // The managed service takes .jsonl files only (jsonlNameProblem).
  if (!filename) return badRequest("the 'file' part has no file name; send a .jsonl file (curl -F file=@data.jsonl)");
  const problem = jsonlNameProblem(filename);
  return problem ? badRequest(`${filename}: ${problem}`) : null;
}

/** Streams the multipart `file` part of `req` to a temp file in `dir`; resolves with its path, size and name. */
function receiveFile(
  req: IncomingMessage,
  dir: string,
  maxBytes: number,
): Promise<{ tmp: string; bytes: number; filename: string }> {
  const refused = refuseHeaders(req, maxBytes);
  if (refused) return Promise.reject(refused);
  fs.mkdirSync(dir, { recursive: true });
  // Named *.jsonl: `lorasft validate` checks the name too.
  const tmp = path.join(dir, `.upload-${randomBytes(6).toString('hex')}.jsonl`);
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { fileSize: maxBytes, files: 1, fields: 20 } });
    } catch (e) {
      return reject(badRequest(`malformed multipart body: ${(e as Error).message}`));
    }
    let failure: ApiError | null = null;
    let got: { bytes: number; filename: string } | null = null;
    let writing: Promise<void> = Promise.resolve();
    let out: fs.WriteStream | undefined;
    const fail = (e: ApiError) => (failure ??= e);
    bb.on('file', (field, stream, info) => {
      const refused = refusePart(field, info.filename); // before the temp file is made: nothing is left behind
      if (refused) {
        fail(refused);
        return void stream.resume();
      }
      out = fs.createWriteStream(tmp);
      let bytes = 0;
      stream.on('data', (d: Buffer) => (bytes += d.length));
      stream.on('limit', () =>
        fail(
          new ApiError(
            413,
            `upload is larger than ${maxBytes} bytes, the most this server accepts (serve --max-upload-mb)`,
          ),
        ),
      );
      stream.pipe(out);
      const file = out;
      writing = new Promise<void>((res, rej) => {
        file.on('close', () => res());
        file.on('error', rej);
      }).then(() => void (got = { bytes, filename: info.filename ?? '' }));
    });
    bb.on('filesLimit', () => fail(badRequest('send exactly one file part')));
    bb.on('error', (e) => fail(badRequest(`malformed multipart body: ${(e as Error).message}`)));
    bb.on('close', () => {
      writing.then(
        () => {
          if (!failure && !got) fail(badRequest("multipart body has no 'file' part (curl -F file=@data.jsonl)"));
          if (failure) {
            fs.rmSync(tmp, { force: true });
            return reject(failure);
          }
          resolve({ tmp, ...got! });
        },
        (e) => {
          fs.rmSync(tmp, { force: true });
          reject(e);
        },
      );
    });
    // The client went away mid-body: busboy never closes, so settle here (the caller frees the dataset) once the
    // temp file is closed, and remove it.
    req.on('aborted', () => {
      fail(badRequest('the upload was interrupted: the client closed the connection before the body ended'));
      req.unpipe(bb);
      out?.destroy();
      void writing.then(cleanUp, cleanUp);
    });
    const cleanUp = () => {
      fs.rmSync(tmp, { force: true });
      reject(failure);
    };
    req.pipe(bb);
  });
}

/** Runs `lorasft validate FILE`; the example count, or the problems as `line N: ...` (first 100, then a count). */
function validateWithCli(file: string): Promise<{ ok: true; examples: number } | { ok: false; problems: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LORASFT_BIN, 'validate', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) {
        const m = /examples:\s+(\d+)/.exec(out);
        return m
          ? resolve({ ok: true, examples: Number(m[1]) })
          : reject(new Error(`lorasft validate printed no example count: ${out.slice(0, 200)}`));
      }
      const lines = err.split('\n').filter((l) => l && !l.startsWith(`${file}: INVALID:`));
      if (code !== 1 || !lines.length)
        return reject(new Error(`lorasft validate exited with ${code}: ${err.slice(-500)}`));
      // `FILE:12: msg` -> `line 12: msg`; dataset-level `FILE: msg` -> `msg`.
      resolve({
        ok: false,
        problems: lines.map((l) =>
          l.startsWith(file + ':')
            ? l
                .slice(file.length + 1)
                .replace(/^(\d+): /, 'line $1: ')
                .replace(/^ /, '')
            : l,
        ),
      });
    });
  });
}

/** Receive, validate and atomically place a dataset file at `dest`; on any failure nothing is left in `dir`. */
export async function receiveUpload(
  req: IncomingMessage,
  dir: string,
  dest: string,
  opts: { maxBytes: number; expectedCount?: number },
): Promise<UploadResult> {
  const { tmp, bytes, filename } = await receiveFile(req, dir, opts.maxBytes);
  return placeValidated(tmp, dest, filename, bytes, opts.expectedCount);
}

/** Validate the received file `tmp` and rename it to `dest`; `tmp` is gone afterwards either way. */
export async function placeValidated(
  tmp: string,
  dest: string,
  filename: string,
  bytes: number,
  expectedCount?: number,
): Promise<UploadResult> {
  const opts = { expectedCount };
  try {
    const v = await validateWithCli(tmp);
    if (!v.ok)
      throw badRequest(
        `${filename || 'the uploaded file'} is not a valid dataset (the rules of lorasft validate):\n${v.problems.join('\n')}`,
      );
    if (opts.expectedCount !== undefined && opts.expectedCount !== 0 && opts.expectedCount !== v.examples) {
      throw badRequest(
        `${filename || 'the uploaded file'} holds ${v.examples} examples, but the dataset was created with exampleCount ${opts.expectedCount}`,
      );
    }
    const fd = fs.openSync(tmp, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, dest);
    return { examples: v.examples, bytes, filename };
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
