import type { FloatArray } from './backend/types.js';
import { OptimRangeError, OptimTypeError } from './errors.js';
import { checkFloatArray, describe } from './validate.js';

/**
 * A trainable tensor: its values, a gradient buffer of the same type and length that the user
 * fills before each step, and a name that keys its optimizer state in checkpoints.
 */
export interface Param<T extends FloatArray = FloatArray> {
  readonly name: string;
  data: T;
  grad: T;
}

let nextId = 0;

/**
 * Wraps `data` (used in place, not copied) as a parameter with a zeroed gradient. Without a
 * `name`, a unique one is generated (`param_0`, `param_1`, ...); give stable names to
 * parameters whose state you save, so a checkpoint finds them again in a changed model.
 * The grad of a small param is a view into a pooled buffer shared with other grads (see below):
 * write through it, but do not transfer `grad.buffer` to another thread.
 */
export function param<T extends FloatArray>(data: T, name?: string): Param<T> {
  checkFloatArray(data, 'data', 'param(data): ');
  if (name !== undefined && (typeof name !== 'string' || name === '')) {
    throw new OptimTypeError(
      `param(data, name): name must be a non-empty string, got ${name === '' ? 'an empty string' : describe(name)}`,
    );
  }
  const grad = allocate(data instanceof Float32Array ? 'float32' : 'float64', data.length) as T;
  return { name: name ?? `param_${nextId++}`, data, grad };
}

/**
 * Gradients come from pooled chunks (views into a few large ArrayBuffers, 64-byte aligned)
 * rather than one allocation each: a model's gradients then lie together in memory, in creation
 * order, and a step checks a few buffers instead of one per gradient (see Backend.prepare).
 */
const CHUNK_BYTES = 1 << 22;
const pools: Record<'float32' | 'float64', { buf: ArrayBuffer | null; used: number }> = {
  float32: { buf: null, used: 0 },
  float64: { buf: null, used: 0 },
};

function allocate(dtype: 'float32' | 'float64', length: number): FloatArray {
  const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
  const bytes = length * Ctor.BYTES_PER_ELEMENT;
  if (bytes > CHUNK_BYTES / 4) return new Ctor(length);
  const pool = pools[dtype];
  if (pool.buf === null || pool.used + bytes > pool.buf.byteLength) {
    pool.buf = new ArrayBuffer(CHUNK_BYTES);
    pool.used = 0;
  }
  const view = new Ctor(pool.buf, pool.used, length);
  pool.used += (bytes + 63) & ~63;
  return view;
}

/**
 * Allocates several parameters at once, each `data` and each `grad` a view into one shared
 * buffer (a flat parameter arena, as PyTorch's flat params): the layout that steps fastest,
 * since a step over the whole model walks three or four contiguous streams and checks four
 * buffers. `sizes` maps names to lengths; data starts at zero.
 *
 *   const { w1, b1, w2 } = paramArena({ w1: 784 * 128, b1: 128, w2: 128 * 10 });
 */
export function paramArena(
  sizes: Record<string, number>,
  options: { dtype?: 'float32' | 'float64' } = {},
): Record<string, Param> {
  if (sizes === null || typeof sizes !== 'object' || Array.isArray(sizes)) {
    throw new OptimTypeError(`paramArena(sizes): sizes must be an object mapping names to lengths, got ${describe(sizes)}`);
  }
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new OptimRangeError(`paramArena: options.dtype must be 'float32' or 'float64', got ${String(dtype)}`);
  }
  let total = 0;
  for (const [name, n] of Object.entries(sizes)) {
    if (!Number.isInteger(n) || n < 0) {
      throw new OptimRangeError(`paramArena: sizes.${name} must be an integer >= 0, got ${String(n)}`);
    }
    total += n;
  }
  const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
  const data = new Ctor(total);
  const grad = new Ctor(total);
  const out: Record<string, Param> = {};
  let offset = 0;
  for (const [name, n] of Object.entries(sizes)) {
    out[name] = { name, data: data.subarray(offset, offset + n), grad: grad.subarray(offset, offset + n) };
    offset += n;
  }
  return out;
}
