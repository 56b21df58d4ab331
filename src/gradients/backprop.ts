// The engine's gradient walk, freeing as it goes (as PyTorch's autograd does). tfjs-core's Engine.gradients keeps
// every activation gradient, every summed-in partial gradient and every tensor saved for the backward until the
// walk ends, so a training step peaked at its activations plus all their gradients. This walk visits the same
// filtered tape in the same order and sums gradients in the same order (results are bit-identical); it frees a
// node's output gradients and saved tensors once the node is done, and each partial gradient once it is summed in.
import * as tf from '@tensorflow/tfjs-core';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: Array<tf.Tensor | null>) => Record<string, () => tf.Tensor>;
}

interface Engine {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(nameOrFn: string | (() => T), fn?: () => T): T;
}

type Gradients = (
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
  allowNoGradients?: boolean,
) => { value: tf.Tensor; grads: tf.Tensor[] };

let tfjsGradients: Gradients | undefined;

/**
 * tf.grad/grads/variableGrads/valueAndGrads walk the tape with gradients() below (on: registerAllKernels does
 * this) or with tfjs-core's own walk (off: tests and benchmarks compare the two).
 */
export function useFreeingBackprop(on = true): void {
  const proto = Object.getPrototypeOf(tf.engine()) as { gradients: Gradients };
  tfjsGradients ??= proto.gradients;
  proto.gradients = on ? gradients : tfjsGradients;
}

/** Engine.gradients' contract: y = f() recorded on a tape, then dy/dx for each x (undefined when y ignores x). */
function gradients(
  this: Engine,
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
  allowNoGradients = false,
): { value: tf.Tensor; grads: tf.Tensor[] } {
  if (xs.length === 0) throw new Error('gradients() received an empty list of xs.');
  if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
  const y = this.scopedRun(
    () => this.startTape(),
    () => this.endTape(),
    () => this.tidy('forward', f),
  );
  if (!(y instanceof tf.Tensor)) throw new Error('The result y returned by f() must be a tensor.');
  const tape = pathsFromXsToY(this.state.activeTape ?? [], xs, y);
  if (!allowNoGradients && tape.length === 0)
    throw new Error('Cannot compute gradient of y=f(x) with respect to x: f does not use x on the way to y.');
  return this.tidy('backward', () => {
    const acc = new Accumulated(dy);
    acc.set(y.id, dy ?? tf.ones(y.shape));
    const free = this.state.gradientDepth === 0; // not inside a higher-order gradient: saved tensors may go
    const keep = new Set(xs.map((x) => x.id));
    for (let i = tape.length - 1; i >= 0; i--) walkNode(this, tape[i], acc, keep, free);
    const grads = xs.map((x) => acc.get(x.id)) as tf.Tensor[];
    if (free) {
      for (const node of this.state.activeTape ?? []) for (const t of node.saved ?? []) t.dispose();
      this.state.activeTape = null;
    }
    return { value: y, grads };
  });
}

/** Backprop through one node: sum its inputs' gradients in, then free what only this node needed. */
function walkNode(engine: Engine, node: TapeNode, acc: Accumulated, keep: Set<number>, free: boolean): void {
  const dys = node.outputs.map((o) => acc.get(o.id) ?? null);
  if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
  const names = Object.keys(node.inputs);
  // One tidy per node: what the gradient function makes besides the input gradients goes with it.
  const dxs = engine.tidy(() => {
    const fns = node.gradient!(dys);
    return names.map((name) => {
      if (!(name in fns))
        throw new Error(`Cannot backprop through input ${name}. Available gradients: ${Object.keys(fns)}.`);
      return fns[name]();
    });
  });
  names.forEach((name, i) => {
    const x = node.inputs[name];
    const dx = dxs[i];
    if (dx.dtype !== 'float32')
      throw new Error(`Error in gradient for op ${node.kernelName}: the gradient of input '${name}' is ${dx.dtype}`);
    if (!tf.util.arraysEqual(dx.shape, x.shape))
      throw new Error(
        `Error in gradient for op ${node.kernelName}: the gradient of input '${name}' has shape ${dx.shape}, ` +
          `the input ${x.shape}`,
      );
    acc.sumIn(x.id, dx);
  });
  for (const o of node.outputs) if (!keep.has(o.id)) acc.drop(o.id);
  // (A gradient function may hand back a saved tensor itself as a gradient: that one stays.)
  if (free) for (const t of node.saved ?? []) if (!acc.holds(t)) t.dispose();
}

/** Tensor id -> its gradient so far; a gradient tensor is disposed when no entry holds it (never the caller's dy). */
class Accumulated {
  private byId = new Map<number, tf.Tensor>();
  private holders = new Map<tf.Tensor, number>(); // a gradient function may hand the same tensor to two inputs

  constructor(private readonly callerDy?: tf.Tensor) {}

  holds(t: tf.Tensor): boolean {
    return this.holders.has(t);
  }

  get(id: number): tf.Tensor | undefined {
    return this.byId.get(id);
  }

  set(id: number, t: tf.Tensor): void {
    this.byId.set(id, t);
    this.holders.set(t, (this.holders.get(t) ?? 0) + 1);
  }

  /** The first gradient of x is kept as is; later ones are added in (tfjs-core's order: old + new). */
  sumIn(id: number, dx: tf.Tensor): void {
    const cur = this.byId.get(id);
    if (!cur) return this.set(id, dx);
    const sum = tf.add(cur, dx);
    this.drop(id);
    this.set(id, sum);
    this.release(dx);
  }

  drop(id: number): void {
    const t = this.byId.get(id);
    if (!t) return;
    this.byId.delete(id);
    const n = this.holders.get(t)! - 1;
    if (n > 0) this.holders.set(t, n);
    else {
      this.holders.delete(t);
      this.release(t);
    }
  }

  private release(t: tf.Tensor): void {
    if (t !== this.callerDy && !this.holders.has(t)) t.dispose();
  }
}

/**
 * The nodes on a path from some x to y, in tape order, each with only the inputs that depend on an x (the
 * others need no gradient): tfjs-core's filter, written out here because it is not exported.
 */
function pathsFromXsToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (!Object.values(node.inputs).some((t) => fromX.has(t.id))) continue;
    nodesFromX.add(node.id);
    for (const o of node.outputs) fromX.add(o.id);
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (!node.outputs.some((o) => toY.has(o.id))) continue;
    nodesToY.add(node.id);
    for (const t of Object.values(node.inputs)) toY.add(t.id);
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [name, t] of Object.entries(node.inputs)) if (fromX.has(t.id)) inputs[name] = t;
    out.push({ ...node, inputs });
  }
  return out;
}
