// BufferPool: recycles the large Float32Array outputs of the 'native' backend by exact length. A training
// step allocates the same [T, C], [T, I], ... outputs every step; reusing the freed ones saves the zero fill,
// the page faults of fresh memory and GC churn.
//
// Safety rules (enforced by NativeBackend): only buffers the pool allocated itself are ever recycled (never
// a user's array passed to tf.tensor), only when no dataId references them any more (cpu Slice makes
// subarray views of its input), and never once their values were handed out by readSync/read (dataSync()).

/** Smallest pooled length (floats): smaller arrays are cheap to allocate. */
const MIN_LENGTH = 1 << 14;

export class BufferPool {
  enabled = true;
  hits = 0;
  bytes = 0; // bytes held in the free lists
  private free = new Map<number, Float32Array[]>(); // exact length -> free arrays
  private owned = new WeakSet<ArrayBuffer>(); // allocated here and never read out

  /** At most `maxBytes` are kept free; beyond that, released buffers are left to the GC. */
  constructor(readonly maxBytes = 1024 * 1024 * 1024) {}

  /** n floats; contents are arbitrary unless `zero` (callers that overwrite every element skip the fill). */
  alloc(n: number, zero = false): Float32Array {
    if (!this.enabled || n < MIN_LENGTH) return new Float32Array(n);
    const a = this.free.get(n)?.pop();
    if (a) {
      this.hits++;
      this.bytes -= a.byteLength;
      return zero ? a.fill(0) : a;
    }
    const b = new Float32Array(n);
    this.owned.add(b.buffer);
    return b;
  }

  owns(buf: ArrayBufferLike): boolean {
    return this.owned.has(buf as ArrayBuffer);
  }

  /** The buffer's contents escaped (readSync): never recycle it. */
  disown(buf: ArrayBufferLike): void {
    this.owned.delete(buf as ArrayBuffer);
  }

  /** Called when the last dataId referencing an owned buffer is gone. */
  release(buf: ArrayBufferLike): void {
    if (!this.enabled || !this.owns(buf) || this.bytes + buf.byteLength > this.maxBytes) return;
    const a = new Float32Array(buf as ArrayBuffer);
    const list = this.free.get(a.length);
    if (list) list.push(a);
    else this.free.set(a.length, [a]);
    this.bytes += a.byteLength;
  }

  /** Drops every free buffer (the GC reclaims them). */
  clear(): void {
    this.free.clear();
    this.bytes = 0;
  }
}
