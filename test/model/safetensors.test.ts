import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/model/dtypes.ts';
import {
  listModelTensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from '../../src/model/safetensors.ts';
import { UserError } from '../../src/errors.ts';
import { tmpDir } from '../helpers/index.ts';

/** A raw safetensors file from a header object and a data buffer. */
function rawFile(file: string, header: unknown, data: Uint8Array, lenOverride?: bigint): string {
  const jb = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(jb.length));
  fs.writeFileSync(file, Buffer.concat([len, jb, data]));
  return file;
}

describe('safetensors', () => {
  it('round-trips F32 tensors, sorted names, 8-byte padded header and metadata', () => {
    const dir = tmpDir('st');
    const f = path.join(dir, 'a.safetensors');
    const b = { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 4, 5, 6e-8]) };
    const a = { shape: [4], data: Float32Array.from([0.1, 0.2, 0.3, -0]) };
    writeSafetensors(
      f,
      { 'z.weight': b, 'a.weight': a, empty: { shape: [0, 3], data: new Float32Array(0) } },
      { format: 'pt' },
    );
    const h = readSafetensorsHeader(f);
    expect(h.metadata).toEqual({ format: 'pt' });
    const hlen = Number(fs.readFileSync(f).readBigUInt64LE(0));
    expect(hlen % 8).toBe(0);
    expect([...h.tensors.keys()]).toEqual(['a.weight', 'empty', 'z.weight']);
    expect(h.tensors.get('a.weight')!.begin).toBe(8 + hlen); // sorted: a first in the data section
    const r = readSafetensors(f);
    expect(r.get('z.weight')).toEqual({ dtype: 'F32', shape: [2, 3], data: b.data });
    expect(Array.from(r.get('a.weight')!.data)).toEqual(Array.from(a.data));
    expect(readSafetensors(f, { names: ['a.weight'] }).size).toBe(1);
    expect(fs.readdirSync(dir)).toEqual(['a.safetensors']); // no temp file left behind
  });

  it('converts BF16 and F16 to float32 exactly, and writes BF16 with round-to-nearest-even', () => {
    const dir = tmpDir('st');
    const vals = Float32Array.from([1, -2.5, 0.15625, 65504, 3.0517578125e-5, 5.960464477539063e-8, -0, Infinity]);
    // F16 bits of the values above, then BF16 bits.
    const f16 = Uint16Array.from([0x3c00, 0xc100, 0x3100, 0x7bff, 0x0200, 0x0001, 0x8000, 0x7c00]);
    expect(Array.from(f16ToF32(f16))).toEqual(Array.from(vals));
    const bf = f32ToBf16(vals.subarray(0, 3));
    expect(Array.from(bf)).toEqual([0x3f80, 0xc020, 0x3e20]);
    expect(Array.from(bf16ToF32(bf))).toEqual([1, -2.5, 0.15625]);
    // 1 + 2^-8 is halfway between two bf16 values: ties to even (1.0); 1 + 3*2^-8 rounds up to 1 + 2^-6.
    expect(Array.from(bf16ToF32(f32ToBf16(Float32Array.from([1 + 2 ** -8, 1 + 3 * 2 ** -8]))))).toEqual([
      1,
      1 + 2 ** -6,
    ]);
    const f = rawFile(
      path.join(dir, 'h.safetensors'),
      {
        h: { dtype: 'F16', shape: [8], data_offsets: [0, 16] },
        b: { dtype: 'BF16', shape: [3], data_offsets: [16, 22] },
      },
      Buffer.concat([Buffer.from(f16.buffer), Buffer.from(bf.buffer)]),
    );
    const r = readSafetensors(f);
    expect(Array.from(r.get('h')!.data)).toEqual(Array.from(vals));
    expect(Array.from(r.get('b')!.data)).toEqual([1, -2.5, 0.15625]);
    const g = path.join(dir, 'w.safetensors');
    writeSafetensors(g, { x: { shape: [3], data: vals.subarray(0, 3) } }, undefined, { dtype: 'BF16' });
    expect(readSafetensors(g).get('x')).toEqual({
      dtype: 'BF16',
      shape: [3],
      data: Float32Array.from([1, -2.5, 0.15625]),
    });
  });

  it('writes F16 with round-to-nearest-even (every half value round-trips), and a dtype per tensor name', () => {
    const halves = Uint16Array.from({ length: 0x7c01 }, (_, i) => i); // +0 .. +Inf: subnormals, normals, Inf
    expect(Array.from(f32ToF16(f16ToF32(halves)))).toEqual(Array.from(halves));
    // Ties go to even: 1 + 2^-11 -> 1, 1 + 3 * 2^-11 -> 1 + 2^-9; 2^-25 * 3 (subnormal tie) -> 2 * 2^-24; 65520 -> Inf.
    const x = Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11, -3 * 2 ** -25, 65519, 65520, NaN]);
    expect(Array.from(f32ToF16(x))).toEqual([0x3c00, 0x3c02, 0x8002, 0x7bff, 0x7c00, 0x7e00]);
    const f = path.join(tmpDir('st'), 'mixed.safetensors');
    const t = { shape: [2], data: Float32Array.from([1.5, -0.25]) };
    const dtypes = { a: 'F16', b: 'BF16', c: 'F32' } as const;
    writeSafetensors(f, { a: t, b: t, c: t }, undefined, { dtype: (n) => dtypes[n as keyof typeof dtypes] });
    const r = readSafetensors(f);
    for (const n of ['a', 'b', 'c'] as const) expect(r.get(n)).toEqual({ ...t, dtype: dtypes[n] });
  });

  it('rejects corrupt and truncated files with errors naming the file', () => {
    const dir = tmpDir('st');
    const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const data = new Uint8Array(8);
    const cases: Array<[string, () => string, RegExp]> = [
      [
        'tiny',
        () => (fs.writeFileSync(path.join(dir, 'tiny'), 'abc'), path.join(dir, 'tiny')),
        /shorter than the 8-byte header length/,
      ],
      ['hugelen', () => rawFile(path.join(dir, 'hugelen'), ok, data, 1n << 40n), /corrupt safetensors header length/],
      ['cut header', () => rawFile(path.join(dir, 'cut'), ok, new Uint8Array(0), 1000n), /truncated safetensors file/],
      [
        'bad json',
        () => {
          const f = rawFile(path.join(dir, 'json'), ok, data);
          const buf = fs.readFileSync(f);
          buf[9] = 0x7b; // '{{'
          fs.writeFileSync(f, buf);
          return f;
        },
        /invalid JSON/,
      ],
      [
        'dtype',
        () => rawFile(path.join(dir, 'dt'), { t: { dtype: 'F8', shape: [2], data_offsets: [0, 8] } }, data),
        /unknown dtype "F8"/,
      ],
      [
        'size',
        () => rawFile(path.join(dir, 'sz'), { t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data),
        /needs 12 bytes but data_offsets span 8/,
      ],
      [
        'past end',
        () =>
          rawFile(path.join(dir, 'pe'), { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(4)),
        /run past the end of the file/,
      ],
      [
        'overlap',
        () =>
          rawFile(
            path.join(dir, 'ov'),
            {
              a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
              b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
            },
            data,
          ),
        /overlaps/,
      ],
      [
        'hole (a deleted entry)',
        () =>
          rawFile(
            path.join(dir, 'hole'),
            {
              a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
              c: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
            },
            new Uint8Array(12),
          ),
        /hole: bytes 4\.\.8 of the data are not in any tensor \(a corrupt or hand-edited file\)$/,
      ],
      [
        'hole at the start',
        () => rawFile(path.join(dir, 'hole0'), { t: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data),
        /hole0: bytes 0\.\.4 of the data are not in any tensor/,
      ],
      [
        'metadata not a map',
        () => rawFile(path.join(dir, 'md'), { __metadata__: 5, ...ok }, data),
        /md: "__metadata__" is 5; expected an object of strings$/,
      ],
      [
        'metadata value not a string',
        () => rawFile(path.join(dir, 'mdv'), { __metadata__: { format: 'pt', n: 3 }, ...ok }, data),
        /mdv: "__metadata__" key "n" is 3; expected a string$/,
      ],
      [
        'tail',
        () => rawFile(path.join(dir, 'tl'), ok, new Uint8Array(12)),
        /file size 74 does not match the header \(data ends at byte 70\)/,
      ],
      [
        'missing',
        () => path.join(dir, 'nope.safetensors'),
        /nope.safetensors: no such file \(expected a .safetensors file\)/,
      ],
      ['directory', () => dir, /: is a directory \(expected a .safetensors file\)/],
    ];
    for (const [name, make, re] of cases) {
      const f = make();
      let err: unknown;
      try {
        readSafetensors(f);
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(UserError);
      expect((err as Error).message, name).toMatch(re);
      expect((err as Error).message.startsWith(f), name).toBe(true);
    }
    // Reading a non-float tensor as float is refused.
    const i = rawFile(path.join(dir, 'int'), { t: { dtype: 'I32', shape: [2], data_offsets: [0, 8] } }, data);
    expect(() => readSafetensors(i)).toThrow(/dtype I32; expected F32, F16 or BF16/);
  });

  it('lists the tensors of a sharded model.safetensors.index.json', () => {
    const dir = tmpDir('shard');
    writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), {
      a: { shape: [1], data: Float32Array.from([1]) },
    });
    writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), {
      b: { shape: [1], data: Float32Array.from([2]) },
    });
    fs.writeFileSync(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({
        metadata: {},
        weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
      }),
    );
    const t = listModelTensors(dir);
    expect(t.get('b')!.file).toBe(path.join(dir, 'model-00002-of-00002.safetensors'));
    expect([...t.keys()].sort()).toEqual(['a', 'b']);
    expect(() => listModelTensors(tmpDir('empty'))).toThrow(/no model.safetensors or model.safetensors.index.json/);
  });
});
