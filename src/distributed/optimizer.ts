/**
 * Data-parallel training over a ProcessGroup, in Horovod's shape: DistributedOptimizer wraps any
 * first-order optimizer of this library and averages the gradients across ranks in fused buckets
 * (one all-reduce per bucket, not per tensor) before stepping; broadcastParameters and
 * broadcastOptimizerState make every rank start from the same point.
 */
import { DistributedError, OptimRangeError, OptimTypeError } from '../errors.js';
import type { Param } from '../param.js';
import type { StateDict } from '../optim/optimizer.js';
import type { ProcessGroup } from './index.js';

type Floats = Float32Array | Float64Array;

/** What DistributedOptimizer needs of an optimizer: every Optimizer subclass of this library. */
export interface WrappableOptimizer {
  readonly paramGroups: ReadonlyArray<{ params: Param[] }>;
  step(): unknown;
  zeroGrad(): void;
  stateDict(): StateDict;
  loadStateDict(sd: StateDict): unknown;
}

export interface DistributedOptimizerOptions {
  processGroup: ProcessGroup;
  /** The most gradient bytes fused into one all-reduce. Default 25 MiB (torch DDP's bucket_cap_mb). */
  bucketBytes?: number;
  /**
   * Backward passes accumulated locally before each exchange (Horovod's backward_passes_per_step).
   * step() is called after every pass: the first n-1 calls of each cycle only count (resolving
   * false, gradients left to accumulate, zeroGrad() does nothing), the n-th averages the summed
   * gradients across ranks, steps, and resolves true. Default 1.
   */
  backwardPassesPerStep?: number;
}

interface Bucket {
  /** The parameters whose grads it carries, with their offsets in the bucket. */
  params: Param[];
  offsets: number[];
  /** The number of elements: the sum of the grads' lengths. */
  length: number;
  ctor: Float32ArrayConstructor | Float64ArrayConstructor;
  /**
   * The fused buffer of a bucket of several grads that are not consecutive views of one buffer
   * (copied in, reduced, copied out); made on first use.
   */
  buffer?: Floats;
}

/**
 * The grads of `b` as one array, when they are already laid end to end in one buffer (a bucket of
 * one grad; consecutive views, as paramArena's): that array is reduced in place, without copies,
 * and holds the same elements in the same order as the fused buffer would.
 */
function inPlace(b: Bucket): Floats | undefined {
  const first = b.params[0]!.grad as Floats;
  if (b.params.length === 1) return first;
  let end = first.byteOffset + first.byteLength;
  for (let i = 1; i < b.params.length; i++) {
    const g = b.params[i]!.grad as Floats;
    if (g.buffer !== first.buffer || g.byteOffset !== end) return undefined;
    end += g.byteLength;
  }
  return new b.ctor(first.buffer as ArrayBuffer, first.byteOffset, b.length);
}

export class DistributedOptimizer<O extends WrappableOptimizer = WrappableOptimizer> {
  readonly processGroup: ProcessGroup;
  readonly bucketBytes: number;
  readonly backwardPassesPerStep: number;
  private passes = 0;
  private buckets: Bucket[] = [];
  private layout = '';

  constructor(readonly optimizer: O, options: DistributedOptimizerOptions) {
    if (!options || typeof options !== 'object' || !options.processGroup) {
      throw new OptimTypeError('DistributedOptimizer: options.processGroup (from initProcessGroup) is required');
    }
    this.processGroup = options.processGroup;
    const bucketBytes = options.bucketBytes ?? 25 * 1024 * 1024;
    if (!Number.isInteger(bucketBytes) || bucketBytes < 8) {
      throw new OptimRangeError(`DistributedOptimizer: bucketBytes must be an integer >= 8, got ${String(bucketBytes)}`);
    }
    const k = options.backwardPassesPerStep ?? 1;
    if (!Number.isInteger(k) || k < 1) {
      throw new OptimRangeError(`DistributedOptimizer: backwardPassesPerStep must be an integer >= 1, got ${String(k)}`);
    }
    this.bucketBytes = bucketBytes;
    this.backwardPassesPerStep = k;
  }

  /** The parameters in a fixed order (the optimizer's groups, in order): the same on every rank. */
  private params(): Param[] {
    return this.optimizer.paramGroups.flatMap((g) => g.params);
  }

  /**
   * Buckets of consecutive same-dtype grads up to bucketBytes. A bucket whose grads lie end to end
   * in one buffer (one grad; consecutive views of a paramArena) is reduced in place at each step,
   * the others through a fused buffer (copied in, reduced, copied out). Rebuilt when the params
   * change.
   */
  private plan(params: Param[]): Bucket[] {
    const layout = params.map((p) => `${p.name}:${p.grad.constructor.name}:${p.grad.length}`).join('|');
    if (layout === this.layout) return this.buckets;
    const buckets: Bucket[] = [];
    let open: Bucket | undefined;
    const close = (): void => {
      if (open) buckets.push(open);
      open = undefined;
    };
    for (const p of params) {
      const g = p.grad;
      if (!(g instanceof Float32Array) && !(g instanceof Float64Array)) {
        throw new OptimTypeError(`DistributedOptimizer: ${p.name}.grad must be a Float32Array or a Float64Array`);
      }
      const ctor = g.constructor as Float32ArrayConstructor | Float64ArrayConstructor;
      if (g.byteLength >= this.bucketBytes) {
        close();
        buckets.push({ params: [p], offsets: [0], length: g.length, ctor });  // reduced in place, no copy
        continue;
      }
      if (open && (open.ctor !== ctor || (open.length + g.length) * g.BYTES_PER_ELEMENT > this.bucketBytes)) close();
      open ??= { params: [], offsets: [], length: 0, ctor };
      open.params.push(p);
      open.offsets.push(open.length);
      open.length += g.length;
    }
    close();
    this.buckets = buckets;
    this.layout = layout;
    return buckets;
  }

  /**
   * Averages the gradients across ranks and steps the wrapped optimizer (every
   * backwardPassesPerStep-th call; see the option). Every rank must call it the same number of
   * times. Resolves true when it stepped.
   */
  async step(): Promise<boolean> {
    this.passes++;
    if (this.passes < this.backwardPassesPerStep) return false;
    this.passes = 0;
    await this.synchronize();
    this.optimizer.step();
    return true;
  }

  /** Averages the gradients across ranks, in place, without stepping (Horovod's synchronize()). */
  async synchronize(): Promise<void> {
    const params = this.params();
    for (const p of params) {
      if (p.sparseGrad !== undefined) {
        throw new OptimTypeError(`DistributedOptimizer: ${p.name} has a sparse gradient; only dense gradients are averaged`);
      }
    }
    const buckets = this.plan(params);
    const pg = this.processGroup;
    // Every bucket's all-reduce is queued at once (they run in order on the group's thread),
    // each right after its copy-in, so copying the next bucket in overlaps the current exchange,
    // and each fused bucket is copied out as soon as its own all-reduce settles, while the next
    // ones are still in flight. The all-reduce applies the 1/worldSize of 'avg' itself.
    const pending: Array<Promise<void>> = [];
    for (const b of buckets) {
      const span = inPlace(b);
      if (span) {
        pending.push(pg.allReduce(span, { op: 'avg' }));
        continue;
      }
      const buffer = (b.buffer ??= new b.ctor(b.length));
      for (let i = 0; i < b.params.length; i++) buffer.set(b.params[i]!.grad as Floats, b.offsets[i]);
      pending.push(pg.allReduce(buffer, { op: 'avg' }).then(() => {
        for (let i = 0; i < b.params.length; i++) {
          const g = b.params[i]!.grad as Floats;
          g.set(buffer.subarray(b.offsets[i], b.offsets[i]! + g.length));
        }
      }));
    }
    if (pending.length === 1) return pending[0];
    const settled = await Promise.allSettled(pending);
    const failed = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
  }

  /** Zeroes the gradients, except between the passes of an accumulation cycle. */
  zeroGrad(): void {
    if (this.passes === 0) this.optimizer.zeroGrad();
  }

  stateDict(): StateDict {
    return this.optimizer.stateDict();
  }

  loadStateDict(sd: StateDict): unknown {
    return this.optimizer.loadStateDict(sd);
  }
}

function checkRoot(pg: ProcessGroup, root: number, fn: string): void {
  if (!Number.isInteger(root) || root < 0 || root >= pg.worldSize) {
    throw new OptimRangeError(`${fn}: root must be a rank from 0 to ${pg.worldSize - 1}, got ${String(root)}`);
  }
}

/** Copies root's parameter values into every rank's parameters (same names, order and lengths). */
export async function broadcastParameters(
  params: Param[], options: { processGroup: ProcessGroup; root?: number },
): Promise<void> {
  const pg = options.processGroup;
  const root = options.root ?? 0;
  checkRoot(pg, root, 'broadcastParameters');
  const all = await Promise.allSettled(params.map((p) => {
    if (!(p.data instanceof Float32Array) && !(p.data instanceof Float64Array)) {
      throw new OptimTypeError(`broadcastParameters: ${p.name}.data must be a Float32Array or a Float64Array`);
    }
    return pg.broadcast(p.data, { root });
  }));
  const failed = all.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
  if (failed) throw failed.reason;
}

// ---- a state dict as bytes: JSON for the structure, the typed arrays in a binary tail ----

const TYPED: Record<string, { new (b: ArrayBuffer, o: number, n: number): ArrayBufferView & { length: number } ; BYTES_PER_ELEMENT: number }> = {
  Float32Array, Float64Array, Uint16Array,
} as never;

export function encodeState(sd: StateDict): Uint8Array {
  const blobs: Uint8Array[] = [];
  let at = 0;
  const json = JSON.stringify(sd, (_key, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return { $num: String(v) };
    if (ArrayBuffer.isView(v) && (v.constructor.name in TYPED)) {
      const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      const pad = (8 - (at % 8)) % 8;
      if (pad) blobs.push(new Uint8Array(pad));
      at += pad;
      const ref = { $ta: v.constructor.name, at, length: (v as unknown as { length: number }).length };
      blobs.push(bytes.slice());
      at += bytes.length;
      return ref;
    }
    return v;
  });
  const head = new TextEncoder().encode(json);
  const headPad = (8 - ((8 + head.length) % 8)) % 8;
  const out = new Uint8Array(8 + head.length + headPad + at);
  new DataView(out.buffer).setFloat64(0, head.length, true);
  out.set(head, 8);
  let p = 8 + head.length + headPad;
  for (const b of blobs) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

export function decodeState(bytes: Uint8Array): StateDict {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLen = view.getFloat64(0, true);
  const head = new TextDecoder().decode(bytes.subarray(8, 8 + headLen));
  const base = 8 + headLen + ((8 - ((8 + headLen) % 8)) % 8);
  return JSON.parse(head, (_key, v: unknown) => {
    if (v && typeof v === 'object' && '$num' in v) return Number((v as { $num: string }).$num);
    if (v && typeof v === 'object' && '$ta' in v) {
      const { $ta, at, length } = v as { $ta: string; at: number; length: number };
      const Ctor = TYPED[$ta]!;
      const start = bytes.byteOffset + base + at;
      return new Ctor(bytes.buffer.slice(start, start + length * Ctor.BYTES_PER_ELEMENT) as ArrayBuffer, 0, length);
    }
    return v;
  }) as StateDict;
}

/**
 * Makes every rank's optimizer state (step counts, buffers, hyperparameters of each group) equal
 * to root's, through its stateDict: two broadcasts (the size, then the bytes).
 */
export async function broadcastOptimizerState(
  optimizer: WrappableOptimizer, options: { processGroup: ProcessGroup; root?: number },
): Promise<void> {
  const pg = options.processGroup;
  const root = options.root ?? 0;
  checkRoot(pg, root, 'broadcastOptimizerState');
  const mine = pg.rank === root ? encodeState(optimizer.stateDict()) : undefined;
  const size = new Float64Array([mine ? mine.length : 0]);
  await pg.broadcast(size, { root });
  const n = size[0]!;
  if (!Number.isInteger(n) || n < 8) throw new DistributedError(`broadcastOptimizerState: root sent a bad size ${n}`, 'broken');
  const words = new Float64Array(Math.ceil(n / 8));
  const bytes = new Uint8Array(words.buffer, 0, n);
  if (mine) bytes.set(mine);
  await pg.broadcast(words, { root });
  if (pg.rank !== root) optimizer.loadStateDict(decodeState(bytes));
}
