// safetensors reader/writer (format: https://github.com/huggingface/safetensors#format).
// File = u64 little-endian header length N | N bytes of JSON header | data. The header maps each tensor name to
// { dtype, shape, data_offsets: [begin, end] } (offsets relative to the start of the data), plus an optional
// "__metadata__" string map. Reads are streamed tensor by tensor (fs.readSync), never the whole file at once.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { writeAtomicWith } from '../util/atomic.ts';
import { openFile, readJsonObject } from '../util/files.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtypes.ts';

export interface TensorInfo {
  dtype: string;
  shape: number[];
  /** Absolute byte offsets in the file: [begin, end). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

/** A tensor as read: float32 `data`, or (readSafetensors' keep16) raw bf16 bits in `bf16` and an empty `data`. */
export type LoadedTensor = FloatTensor & { dtype: string; bf16?: Uint16Array };

const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);
/** A header larger than this is corrupt (real headers are a few MB at most). */
const MAX_HEADER = 100 * 1024 * 1024;
/** Read large tensors in pieces of this many bytes (fs.readSync caps a single read at 2 GiB). */
const READ_CHUNK = 64 * 1024 * 1024;

if (os.endianness() !== 'LE') throw new Error('lorasft safetensors I/O assumes a little-endian machine');

function readExactly(fd: number, buf: Uint8Array, pos: number, file: string, what: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, Math.min(READ_CHUNK, buf.length - done), pos + done);
    if (n === 0)
      throw new UserError(`${file}: truncated safetensors file (unexpected end of file while reading ${what})`);
    done += n;
  }
}

/** Parse and validate the header of a .safetensors file without reading any tensor data. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const fd = openFile(file, 'expected a .safetensors file');
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 8)
      throw new UserError(`${file}: not a safetensors file (${size} bytes, shorter than the 8-byte header length)`);
    const lenBuf = Buffer.alloc(8);
    readExactly(fd, lenBuf, 0, file, 'the header length');
    const n = lenBuf.readBigUInt64LE(0);
    if (n < 2n || n > BigInt(MAX_HEADER))
      throw new UserError(`${file}: corrupt safetensors header length ${n} (expected 2..${MAX_HEADER} bytes)`);
    const headerLen = Number(n);
    if (8 + headerLen > size)
      throw new UserError(
        `${file}: truncated safetensors file (header says ${headerLen} bytes, file has ${size - 8} after the length)`,
      );
    const hb = Buffer.alloc(headerLen);
    readExactly(fd, hb, 8, file, 'the header');
    return parseHeader(file, hb.toString('utf8'), 8 + headerLen, size);
  } finally {
    fs.closeSync(fd);
  }
}

function parseHeader(file: string, text: string, dataStart: number, size: number): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: corrupt safetensors header (invalid JSON: ${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new UserError(`${file}: corrupt safetensors header (expected a JSON object)`);
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') metadata = parseMetadata(file, v);
    else tensors.set(name, parseEntry(file, name, v, dataStart, size));
  }
  checkTiling(file, tensors, dataStart, size);
  return { file, tensors, metadata };
}

/** "__metadata__": null or a string -> string map (the spec's free-form text map; safetensors rejects others). */
function parseMetadata(file: string, v: unknown): Record<string, string> {
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v))
    throw new UserError(`${file}: "__metadata__" is ${JSON.stringify(v)}; expected an object of strings`);
  for (const [k, s] of Object.entries(v as Record<string, unknown>))
    if (typeof s !== 'string')
      throw new UserError(`${file}: "__metadata__" key "${k}" is ${JSON.stringify(s)}; expected a string`);
  return v as Record<string, string>;
}

/** One header entry { dtype, shape, data_offsets } -> TensorInfo with absolute offsets, checked against the file. */
function parseEntry(file: string, name: string, v: unknown, dataStart: number, size: number): TensorInfo {
  const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  const bad = (msg: string) => new UserError(`${file}: tensor '${name}': ${msg}`);
  if (typeof e !== 'object' || e === null) throw bad('header entry is not an object');
  if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES))
    throw bad(`unknown dtype ${JSON.stringify(e.dtype)} (expected one of ${Object.keys(DTYPE_BYTES).join(', ')})`);
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0))
    throw bad(`bad shape ${JSON.stringify(e.shape)}`);
  const off = e.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[0] > off[1])
    throw bad(`bad data_offsets ${JSON.stringify(off)}`);
  const count = (e.shape as number[]).reduce((a, b) => a * b, 1);
  const bytes = count * DTYPE_BYTES[e.dtype];
  if (off[1] - off[0] !== bytes)
    throw bad(`shape [${e.shape}] of ${e.dtype} needs ${bytes} bytes but data_offsets span ${off[1] - off[0]}`);
  if (dataStart + off[1] > size) throw bad(`data_offsets [${off}] run past the end of the file (truncated file?)`);
  return { dtype: e.dtype, shape: e.shape as number[], begin: dataStart + off[0], end: dataStart + off[1] };
}

/**
 * The tensors must tile the data back to back, as every safetensors writer packs them (no alignment padding
 * inside the data): an overlap, a hole or a tail means a corrupt or hand-edited file (safetensors rejects all three).
 */
function checkTiling(file: string, tensors: Map<string, TensorInfo>, dataStart: number, size: number): void {
  const spans = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let at = dataStart;
  for (const [name, t] of spans) {
    if (t.begin < at) throw new UserError(`${file}: tensor '${name}' overlaps the previous tensor's data`);
    if (t.begin > at)
      throw new UserError(
        `${file}: bytes ${at - dataStart}..${t.begin - dataStart} of the data are not in any tensor (a corrupt or hand-edited file)`,
      );
    at = t.end;
  }
  if (at !== size)
    throw new UserError(`${file}: file size ${size} does not match the header (data ends at byte ${at})`);
}

/** Convert raw little-endian bytes of a float dtype to float32. */
function toFloat32(dtype: string, raw: Uint8Array, count: number): Float32Array {
  if (dtype === 'F32') return new Float32Array(raw.buffer, raw.byteOffset, count);
  if (dtype === 'BF16') return bf16ToF32(new Uint16Array(raw.buffer, raw.byteOffset, count));
  return f16ToF32(new Uint16Array(raw.buffer, raw.byteOffset, count));
}

/** A tensor's raw bytes as bf16 bits: BF16 as is (no copy), F32/F16 rounded to nearest even. */
function toBf16(dtype: string, raw: Uint8Array, count: number): Uint16Array {
  if (dtype === 'BF16') return new Uint16Array(raw.buffer, raw.byteOffset, count);
  return f32ToBf16(toFloat32(dtype, raw, count));
}

/**
 * Read float tensors (F32/F16/BF16 -> Float32Array), one fs read per tensor. `names` limits what is read;
 * tensors for which `keep16(name, shape)` is true come back as bf16 bits (`bf16`), never as a float32 array.
 */
export function readSafetensors(
  file: string,
  opts: { names?: string[]; keep16?: (name: string, shape: number[]) => boolean } = {},
): Map<string, LoadedTensor> {
  const header = readSafetensorsHeader(file);
  const names = opts.names ?? [...header.tensors.keys()];
  const out = new Map<string, LoadedTensor>();
  const fd = fs.openSync(file, 'r');
  try {
    for (const name of names) {
      const t = header.tensors.get(name);
      if (!t) throw new UserError(`${file}: tensor '${name}' not found`);
      if (!FLOAT_DTYPES.has(t.dtype))
        throw new UserError(`${file}: tensor '${name}' has dtype ${t.dtype}; expected F32, F16 or BF16`);
      const count = t.shape.reduce((a, b) => a * b, 1);
      const raw = new Uint8Array(t.end - t.begin); // fresh buffer: aligned for the typed-array views below
      readExactly(fd, raw, t.begin, file, `tensor '${name}'`);
      if (opts.keep16?.(name, t.shape))
        out.set(name, { dtype: t.dtype, shape: t.shape, data: new Float32Array(0), bf16: toBf16(t.dtype, raw, count) });
      else out.set(name, { dtype: t.dtype, shape: t.shape, data: toFloat32(t.dtype, raw, count) });
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

/**
 * Tensors of an HF model dir: `model.safetensors`, or the shards listed in `model.safetensors.index.json`
 * ({ weight_map: { name: shardFile } }). Returns name -> file so callers can read tensor by tensor.
 */
export function listModelTensors(dir: string): Map<string, { file: string; info: TensorInfo }> {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  const files: string[] = [];
  if (fs.existsSync(single)) files.push(single);
  else if (fs.existsSync(index)) {
    const map = readJsonObject(index).weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map))
      throw new UserError(`${index}: missing "weight_map" object`);
    for (const f of new Set(Object.values(map))) {
      if (typeof f !== 'string')
        throw new UserError(`${index}: "weight_map" values must be shard file names, got ${JSON.stringify(f)}`);
      files.push(path.join(dir, f));
    }
  } else {
    throw new UserError(
      `${dir}: no model.safetensors or model.safetensors.index.json (expected a Hugging Face model directory)`,
    );
  }
  const out = new Map<string, { file: string; info: TensorInfo }>();
  for (const f of files) {
    for (const [name, info] of readSafetensorsHeader(f).tensors) out.set(name, { file: f, info });
  }
  return out;
}

/** What writeSafetensors stores; F16 and BF16 are rounded from float32 to nearest even. */
export type WriteDtype = 'F32' | 'F16' | 'BF16';
type TensorsIn = Map<string, FloatTensor> | Record<string, FloatTensor>;

function encode(t: FloatTensor, dtype: WriteDtype): Uint8Array {
  const data = dtype === 'F32' ? t.data : dtype === 'BF16' ? f32ToBf16(t.data) : f32ToF16(t.data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Write float tensors as F32 safetensors (or as opts.dtype: one for all, or one per tensor name), names sorted,
 * packed back to back, header padded with spaces to a multiple of 8, streamed to a temp file then renamed (readers
 * never see a half-written file).
 */
export function writeSafetensors(
  file: string,
  tensors: TensorsIn,
  metadata?: Record<string, string>,
  opts: { dtype?: WriteDtype | ((name: string) => WriteDtype) } = {},
): void {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).sort((a, b) =>
    a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0,
  );
  const d = opts.dtype ?? 'F32';
  const dtypeOf = typeof d === 'string' ? () => d : d;
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const [name, t] of entries) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new Error(`writeSafetensors: '${name}' has shape [${t.shape}] but ${t.data.length} values`);
    const bytes = count * DTYPE_BYTES[dtypeOf(name)];
    header[name] = { dtype: dtypeOf(name), shape: t.shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const jb = Buffer.from(json, 'utf8');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(jb.length));

  writeAtomicWith(file, (fd) => {
    fs.writeSync(fd, lenBuf);
    fs.writeSync(fd, jb);
    for (const [name, t] of entries) {
      const bytes = encode(t, dtypeOf(name));
      for (let i = 0; i < bytes.length; i += READ_CHUNK)
        fs.writeSync(fd, bytes, i, Math.min(READ_CHUNK, bytes.length - i));
    }
  });
}
