// Half-precision <-> float32 conversions for safetensors (bit-exact decode; encode rounds to nearest even).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bfloat16 is the top 16 bits of a float32. */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return new Float32Array(out.buffer);
}

/** float32 -> bfloat16, round to nearest even; NaN stays a (quiet) NaN. */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const b = bits[i];
    if ((b & 0x7fffffff) > 0x7f800000) out[i] = (b >>> 16) | 0x40;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** IEEE half (1 sign, 5 exponent, 10 mantissa bits) -> float32, subnormals and inf/NaN included. */
export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 31) out[i] = mant ? NaN : sign * Infinity;
    else {
      u32[0] = ((h & 0x8000) << 16) | ((exp - 15 + 127) << 23) | (mant << 13);
      out[i] = f32[0];
    }
  }
  return out;
}

/** float32 -> IEEE half, round to nearest even (subnormals kept, 65520 and up -> Inf); NaN stays a (quiet) NaN. */
export function f32ToF16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = halfBits(bits[i], src[i]);
  return out;
}

/** One float32 (bits b, value x) as half bits. */
function halfBits(b: number, x: number): number {
  const sign = (b >>> 16) & 0x8000;
  const abs = b & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00; // NaN
  if (abs >= 0x477ff000) return sign | 0x7c00; // Inf, or past halfway between 65504 and 65536
  if (abs < 0x38800000) {
    // below 2^-14: a subnormal half, |x| / 2^-24 rounded to nearest even (1024 carries into the smallest normal)
    const q = Math.abs(x) * 2 ** 24;
    const f = Math.floor(q);
    return sign | (q - f > 0.5 || (q - f === 0.5 && f % 2 === 1) ? f + 1 : f);
  }
  const r = abs - ((127 - 15) << 23); // exponent rebiased from 127 to 15; mantissa 23 -> 10 bits below
  return sign | ((r + 0xfff + ((r >>> 13) & 1)) >>> 13);
}
