import type { FloatArray } from './backend/types.js';
import { CACHE_LINE, lineAligned } from './backend/align.js';
import { lineOffsetHint } from './backend/select.js';
import { OptimRangeError, OptimTypeError } from './errors.js';
import { checkFloatArray, checkOptions, describe } from './validate.js';

/**
 * A trainable tensor: its values, a gradient buffer of the same type and length that the user
 * fills before each step, and a name that keys its optimizer state in checkpoints.
 */
export interface Param<T extends FloatArray = FloatArray> {
  readonly name: string;
  data: T;
  grad: T;
  /**
   * The dims of `data`, row-major: their product is `data.length`. `[data.length]` unless
   * given (`param(data, name, { shape })`, `paramArena({ w: [rows, cols] })`). A frozen array.
   * Optimizers that need a matrix (Muon) read it; the elementwise ones ignore it.
   */
  readonly shape: readonly number[];
  /**
   * A row-sparse gradient, for the optimizers that take one (SparseAdam): the rows of the param
   * that the gradient touches and their values. Set it before `step()`; `zeroGrad()` clears it
   * (sets it to undefined). The other optimizers read `grad` only. See SparseGrad.
   */
  sparseGrad?: SparseGrad<T> | undefined;
}

/**
 * A row-sparse gradient (torch's uncoalesced `sparse_coo_tensor` with one sparse dim): row
 * `indices[k]` of the param gets the gradient row `values[k·L .. (k+1)·L)`, L the row length.
 * The rows of a param of shape `[rows, ...rest]` are its `shape[0]` slices, each of
 * `product(rest)` elements (a vector's rows are its elements, L = 1). Indices may repeat (their
 * rows are summed) and come in any order; `values` is of the param's dtype, `indices.length · L`
 * long.
 */
export interface SparseGrad<T extends FloatArray = FloatArray> {
  /** Row numbers, integers in [0, rows): a Uint32Array or an array of numbers. */
  indices: Uint32Array | readonly number[];
  /** One gradient row per index, row-major, in the param's dtype. */
  values: T;
}

/** What `param(data, name, options)` takes besides the data and the name. */
export interface ParamOptions {
  /**
   * The dims of `data`, row-major (the last varies fastest): each a positive integer, their
   * product `data.length` (`[]`: a scalar, one element). Default `[data.length]`.
   */
  shape?: readonly number[];
}

let nextId = 0;

/**
 * Wraps `data` (used in place, not copied) as a parameter with a zeroed gradient. Without a
 * `name`, a unique one is generated (`param_0`, `param_1`, ...); give stable names to
 * parameters whose state you save, so a checkpoint finds them again in a changed model.
 * `options.shape` gives its dims, row-major (`param(new Float32Array(6 * 4), 'w', { shape: [6, 4] })`:
 * a 6×4 matrix, element (i, j) at 4i + j); default `[data.length]`. The shape is checked here
 * (positive integers whose product is data.length) and frozen; it describes `data`, so replace
 * `data` only by an array of the same length.
 * The grad of a small param is a view into a pooled buffer shared with other grads (see below):
 * write through it, but do not transfer `grad.buffer` to another thread.
 */
export function param<T extends FloatArray>(data: T, name?: string, options?: ParamOptions): Param<T> {
  checkFloatArray(data, 'data', 'param(data): ');
  if (name !== undefined && (typeof name !== 'string' || name === '')) {
    throw new OptimTypeError(
      `param(data, name): name must be a non-empty string, got ${name === '' ? 'an empty string' : describe(name)}`,
    );
  }
  const o = checkOptions<ParamOptions>(options, ['shape'], 'param(data, name, options)');
  const shape = o.shape === undefined ? [data.length] : checkShape(o.shape, 'options.shape', 'param(data, name, options): ', data.length, 'data');
  const grad = allocateGrad(data);
  return { name: name ?? `param_${nextId++}`, data, grad, shape: Object.freeze(shape) };
}

/**
 * Dims: an array of positive integers (a shape, row-major), returned as a copy. OptimTypeError
 * when `v` is not an array or a dim not a number, OptimRangeError for a dim that is not a
 * positive integer or a product past 2^53.
 */
export function checkDims(v: unknown, key: string, where: string): number[] {
  if (!Array.isArray(v)) {
    throw new OptimTypeError(`${where}${key} must be an array of positive integers (the dims, row-major), got ${describe(v)}`);
  }
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < v.length; i++) {
    const d: unknown = v[i];
    if (typeof d !== 'number') throw new OptimTypeError(`${where}${key}[${i}] must be a number, got ${describe(d)}`);
    if (!(Number.isSafeInteger(d) && d > 0)) throw new OptimRangeError(`${where}${key}[${i}] must be a positive integer, got ${d}`);
    dims.push(d);
    count *= d;
  }
  if (!Number.isSafeInteger(count)) throw new OptimRangeError(`${where}${key} ${formatShape(dims)} holds more than 2^53 elements`);
  return dims;
}

/** The number of elements of a shape: the product of its dims (1 for `[]`). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A shape (see checkDims) whose product is `length`, the length of the array `lengthKey` it
 * describes; returns a copy. OptimRangeError naming both when they differ.
 */
export function checkShape(v: unknown, key: string, where: string, length: number, lengthKey: string): number[] {
  const dims = checkDims(v, key, where);
  const count = shapeSize(dims);
  if (count !== length) {
    throw new OptimRangeError(
      `${where}${key} ${formatShape(dims)} holds ${count} element${count === 1 ? '' : 's'} but ${lengthKey} has length ${length}`,
    );
  }
  return dims;
}

/** A shape as messages write it: `[6, 4]`. */
export function formatShape(shape: readonly unknown[]): string {
  return `[${shape.map((d) => String(d)).join(', ')}]`;
}

/**
 * Gradients come from pooled chunks (views into a few large ArrayBuffers) rather than one
 * allocation each: a model's gradients then lie together in memory, in creation order, and a
 * step checks a few buffers instead of one per gradient (see Backend.prepare). Each grad starts
 * at a cache-line boundary, or, when the native backend will step it, where its data starts
 * within a line (align.ts: every vector load of the step then stays within one line).
 */
const CHUNK_BYTES = 1 << 22;
const pools: Record<'float32' | 'float64', { buf: ArrayBuffer | null; used: number }> = {
  float32: { buf: null, used: 0 },
  float64: { buf: null, used: 0 },
};

function allocateGrad<T extends FloatArray>(data: T): T {
  const Ctor = (data instanceof Float32Array ? Float32Array : Float64Array) as unknown as new (
    b: ArrayBuffer, offset?: number, length?: number) => T;
  const size = data.BYTES_PER_ELEMENT;
  const bytes = data.length * size;
  const lineOffset = lineOffsetHint();
  const slack = lineOffset === undefined ? 0 : CACHE_LINE;
  if (bytes > CHUNK_BYTES / 4) {
    const buf = new ArrayBuffer(bytes + slack);
    return new Ctor(buf, lineAligned(lineOffset, new Ctor(buf), 0, data) * size, data.length);
  }
  const pool = pools[size === 4 ? 'float32' : 'float64'];
  if (pool.buf === null || pool.used + bytes + slack > pool.buf.byteLength) {
    pool.buf = new ArrayBuffer(CHUNK_BYTES);
    pool.used = 0;
  }
  const at = lineAligned(lineOffset, new Ctor(pool.buf), pool.used / size, data) * size;
  pool.used = (at + bytes + CACHE_LINE - 1) & ~(CACHE_LINE - 1);
  return new Ctor(pool.buf, at, data.length);
}

/**
 * Allocates several parameters at once, each `data` and each `grad` a view into one shared
 * buffer (a flat parameter arena, as PyTorch's flat params): the layout that steps fastest,
 * since a step over the whole model walks three or four contiguous streams and checks four
 * buffers. `sizes` maps names to lengths (an integer >= 0: a vector, shape `[n]`) or to shapes
 * (an array of positive integers, row-major: the param gets that shape and their product as its
 * length); data starts at zero.
 *
 *   const { w1, b1, w2 } = paramArena({ w1: [784, 128], b1: 128, w2: [128, 10] });
 *   w1.shape;   // [784, 128]; w1.data.length === 784 * 128
 */
export function paramArena(
  sizes: Record<string, number | readonly number[]>,
  options: { dtype?: 'float32' | 'float64' } = {},
): Record<string, Param> {
  if (sizes === null || typeof sizes !== 'object' || Array.isArray(sizes)) {
    throw new OptimTypeError(`paramArena(sizes): sizes must be an object mapping names to lengths or shapes, got ${describe(sizes)}`);
  }
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new OptimRangeError(`paramArena: options.dtype must be 'float32' or 'float64', got ${String(dtype)}`);
  }
  const shapes: Array<[string, number, readonly number[]]> = [];
  let total = 0;
  for (const [name, n] of Object.entries(sizes)) {
    let length: number;
    let shape: number[];
    if (Array.isArray(n)) {
      shape = checkDims(n, `sizes.${name}`, 'paramArena: ');
      length = shapeSize(shape);
    } else {
      if (!Number.isInteger(n) || (n as number) < 0) {
        throw new OptimRangeError(`paramArena: sizes.${name} must be an integer >= 0 (a length) or an array of positive integers (a shape), got ${String(n)}`);
      }
      length = n as number;
      shape = [length];
    }
    shapes.push([name, length, Object.freeze(shape)]);
    total += length;
  }
  const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
  const data = new Ctor(total);
  const grad = new Ctor(total);
  const out: Record<string, Param> = {};
  let offset = 0;
  for (const [name, n, shape] of shapes) {
    out[name] = { name, data: data.subarray(offset, offset + n), grad: grad.subarray(offset, offset + n), shape };
    offset += n;
  }
  return out;
}
