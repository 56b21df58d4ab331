// BufferPool: recycles the large Float32Array outputs of the 'native' backend. A training step allocates the
// same [T, C], [T, I], ... outputs every step; reusing the freed ones saves the zero fill, the page faults of
// fresh memory (~2.5 GB/s here) and GC churn.
//
// Safety rules (enforced by NativeBackend): only buffers the pool allocated itself are ever recycled (never
// a user's array passed to tf.tensor), only when no dataId references them any more (cpu Slice makes
// subarray views of its input), and never once their values were handed out by readSync/read (dataSync()).
//
// Sizes: a buffer's length is rounded up to a size class (8 per octave, at most 12.5% spare), and the caller
// gets a view of its first n floats, so packed rows of different lengths T still find buffers. The free lists
// hold at most SLACK times as many bytes as the pool's buffers have ever had live at once (a step's own
// high-water mark); when a release would go over, buffers of the classes released least recently go first. The
// slack: each class peaks at its own moment in a step, so recycling every buffer of a step takes the sum of the
// classes' peaks, a few % over the high-water mark (a bf16 Qwen3-0.6B step: 1.26 GB against 1.24; with no slack,
// 36 MB a step were evicted and allocated afresh).

/** Smallest pooled length (floats): smaller arrays are cheap to allocate. */
const MIN_LENGTH = 1 << 14;

/** Free bytes held, at most, as a multiple of the high-water mark of live bytes. */
const SLACK = 1.125;

/** n rounded up to 4 significant bits (the top one always set): 8 classes per octave. */
export function sizeClass(n: number): number {
  const step = 2 ** Math.max(0, Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

export class BufferPool {
  enabled = true;
  hits = 0;
  bytes = 0; // bytes held in the free lists
  live = 0; // bytes of owned buffers handed out and not yet released or disowned
  highWater = 0; // the most `live` has been
  freshBytes = 0; // bytes of the buffers allocated anew (not recycled), ever
  private free = new Map<number, ArrayBuffer[]>(); // class length -> free buffers, least recently released first
  private owned = new WeakSet<ArrayBuffer>(); // allocated here and never read out

  /** n floats; contents are arbitrary unless `zero` (callers that overwrite every element skip the fill). */
  alloc(n: number, zero = false): Float32Array {
    if (!this.enabled || n < MIN_LENGTH) return new Float32Array(n);
    const len = sizeClass(n);
    this.live += len * 4;
    this.highWater = Math.max(this.highWater, this.live);
    const buf = this.free.get(len)?.pop();
    if (buf) {
      this.hits++;
      this.bytes -= buf.byteLength;
      const a = new Float32Array(buf, 0, n);
      return zero ? a.fill(0) : a;
    }
    const b = new Float32Array(new ArrayBuffer(len * 4), 0, n);
    this.freshBytes += len * 4;
    this.owned.add(b.buffer);
    return b;
  }

  owns(buf: ArrayBufferLike): boolean {
    return this.owned.has(buf as ArrayBuffer);
  }

  /** The buffer's contents escaped (readSync): never recycle it. */
  disown(buf: ArrayBufferLike): void {
    if (this.owned.delete(buf as ArrayBuffer)) this.live -= buf.byteLength;
  }

  /** Called when the last dataId referencing an owned buffer is gone. */
  release(buf: ArrayBufferLike): void {
    if (!this.owns(buf)) return;
    this.live -= buf.byteLength;
    if (!this.enabled || !this.makeRoom(buf.byteLength)) return;
    const len = buf.byteLength / 4;
    const list = this.free.get(len) ?? [];
    list.push(buf as ArrayBuffer);
    this.free.delete(len); // re-inserted last: the most recently released class
    this.free.set(len, list);
    this.bytes += buf.byteLength;
  }

  /** Lets go of buffers of the least recently released classes until `n` more bytes fit under the cap. */
  private makeRoom(n: number): boolean {
    const cap = this.highWater * SLACK;
    for (const [len, list] of this.free) {
      if (this.bytes + n <= cap) break;
      if (len === n / 4) continue;
      while (list.length && this.bytes + n > cap) this.bytes -= list.pop()!.byteLength;
      if (!list.length) this.free.delete(len);
    }
    return this.bytes + n <= cap;
  }

  /** Drops every free buffer (the GC reclaims them). */
  clear(): void {
    this.free.clear();
    this.bytes = 0;
    this.highWater = this.live;
  }
}
