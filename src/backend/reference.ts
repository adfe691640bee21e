/**
 * The pure-TypeScript backend: a runner over the algorithms' own reference loops (each kernel
 * descriptor's `reference`, src/optim/<name>.ts), element by element.
 *
 * It is the oracle the native kernels are tested against, so the loops follow the documented
 * formulas literally, with one difference JavaScript imposes: each `fma(a, b, c)` is `a*b + c`,
 * rounded twice. This file checks a call as the addon does and applies the gradient policy.
 */
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { describe, isDetached } from '../validate.js';
import { VERSION } from '../version.js';
import { CHECK_FINITE, CHECK_ONLY, firstNonFinite } from './types.js';
import type { Backend, BackendInfo, FloatArray, PreparedList, StateArray, TensorList } from './types.js';
import { narrowBfloat16, widenBfloat16 } from './bfloat16.js';
import type { AnyKernel } from './kernel.js';
import { MAX_STATES } from './kernel.js';
import { referenceLinalg } from './reference-linalg.js';
import { specializedLoop } from './specialize.js';

/**
 * A list checked once by `prepare`. Each step re-reads every array's length: a detached buffer
 * reads as length 0 and a shrunk resizable one puts its views out of bounds (also length 0),
 * so the step refuses instead of updating fewer elements than it should.
 */
class ReferencePrepared implements PreparedList {
  readonly tensors: number;
  readonly buffers: number;
  readonly #list: readonly StateArray[];
  readonly #stride: number;
  readonly #lengths: Float64Array;

  constructor(list: readonly StateArray[], stride: number) {
    this.#list = list;
    this.#stride = stride;
    this.tensors = list.length / stride;
    this.#lengths = new Float64Array(this.tensors);
    const distinct = new Set<ArrayBufferLike>();
    for (let i = 0; i < list.length; i++) {
      if (i % stride === 0) this.#lengths[i / stride] = list[i].length;
      distinct.add(list[i].buffer);
    }
    this.buffers = distinct.size;
  }

  /** The checked list, or throws if `stride` differs or a buffer went away since `prepare`. */
  static unwrap(kernel: string, v: ReferencePrepared, stride: number): readonly StateArray[] {
    if (v.#stride !== stride) {
      throw new OptimRangeError(
        `${kernel}: the prepared list has ${v.#stride - 2} state buffers per tensor, these flags need ${stride - 2}`,
      );
    }
    const list = v.#list;
    const lengths = v.#lengths;
    for (let i = 0; i < list.length; i++) {
      if (list[i].length !== lengths[(i / stride) | 0]) {
        throw new OptimTypeError(
          `${kernel}: a buffer of the prepared list was detached or resized since it was prepared; prepare the list again`,
        );
      }
    }
    return list;
  }

  static is(v: unknown): v is ReferencePrepared {
    return typeof v === 'object' && v !== null && #list in v;
  }
}

/**
 * Checks the arrays of a list: one dtype, equal lengths within each tuple, none detached. The
 * state buffers share p's dtype, or beside float32 p are all Uint16Array (bfloat16 state) when
 * list[2] is one.
 */
function checkList(list: readonly unknown[], fn: string, stride: number): void {
  if (list.length === 0) return;
  const first = list[0];
  const ctor = first instanceof Float32Array ? Float32Array : first instanceof Float64Array ? Float64Array : undefined;
  if (ctor === undefined) {
    throw new OptimTypeError(`${fn}: list[0] must be a Float32Array or Float64Array, got ${describe(first)}`);
  }
  const stateCtor = stride > 2 && ctor === Float32Array && list[2] instanceof Uint16Array ? Uint16Array : ctor;
  let n = 0;
  for (let i = 0; i < list.length; i++) {
    const el = list[i];
    const want = i % stride < 2 ? ctor : stateCtor;
    if (!(el instanceof want)) {
      throw new OptimTypeError(`${fn}: list[${i}] must be a ${want.name} like list[${i % stride < 2 ? 0 : 2}], got ${describe(el)}`);
    }
    if (isDetached(el)) {
      throw new OptimTypeError(`${fn}: list[${i}] is backed by a detached ArrayBuffer`);
    }
    if (i % stride === 0) {
      n = el.length;
    } else if (el.length !== n) {
      throw new OptimRangeError(
        `${fn}: list[${i}] has length ${el.length}, but its parameter list[${i - (i % stride)}] has length ${n}`,
      );
    }
  }
}

function prepare(list: TensorList, stride: number): PreparedList {
  if (!Array.isArray(list)) throw new OptimTypeError('prepare: list must be an Array of typed arrays');
  if (typeof stride !== 'number') throw new OptimTypeError('prepare: stride must be a number');
  if (!(Number.isInteger(stride) && stride >= 2 && stride <= 2 + MAX_STATES)) {
    throw new OptimRangeError(`prepare: stride must be an integer from 2 to ${2 + MAX_STATES}`);
  }
  if (list.length % stride !== 0) {
    throw new OptimRangeError(`prepare: list length ${list.length} is not a multiple of stride ${stride}`);
  }
  checkList(list, 'prepare', stride);
  return new ReferencePrepared([...list], stride);
}

/**
 * Checks a call the way the native binding does, in the same order, and returns the arrays to
 * update. Nothing is written before this returns, so a refused call changes no buffer.
 */
function resolve(k: AnyKernel, list: unknown, scalars: unknown, flags: unknown): readonly StateArray[] {
  const kernel = k.exportName;
  const prepared = ReferencePrepared.is(list);
  if (!prepared && !Array.isArray(list)) {
    throw new OptimTypeError(`${kernel}: list must be an Array of typed arrays or a prepared list`);
  }
  if (typeof flags !== 'number') throw new OptimTypeError(`${kernel}: flags must be a number`);
  const all = k.allFlags | CHECK_FINITE | CHECK_ONLY;
  if (!(Number.isInteger(flags) && flags >= 0 && flags <= all) || (flags & ~all) !== 0) {
    throw new OptimRangeError(`${kernel}: flags must be an integer bitmask within ${all}, got ${flags}`);
  }
  if ((flags & CHECK_ONLY) !== 0 && (flags & CHECK_FINITE) === 0) {
    throw new OptimRangeError(`${kernel}: flags: CHECK_ONLY (512) needs CHECK_FINITE (256)`);
  }
  if (!(scalars instanceof Float64Array)) {
    throw new OptimTypeError(`${kernel}: scalars must be a Float64Array, got ${describe(scalars)}`);
  }
  if (scalars.length !== k.nScalars) {
    throw new OptimRangeError(`${kernel}: scalars must have length ${k.nScalars}, got ${scalars.length}`);
  }
  const stride = k.stride(flags);
  if (prepared) return ReferencePrepared.unwrap(kernel, list, stride);
  const arr = list as unknown[];
  if (arr.length % stride !== 0) {
    throw new OptimRangeError(
      `${kernel}: list length ${arr.length} is not a multiple of ${stride} ` +
        `(param, grad and ${stride - 2} state buffers per tensor for these flags)`,
    );
  }
  checkList(arr, kernel, stride);
  return arr as StateArray[];
}

/**
 * Elements per call of a kernel's loop. Every loop is elementwise (as the native kernels, which
 * the native runner splits across threads), so a tensor is run as consecutive chunks with the
 * same bits as in one call. Short calls keep the loops in their regular optimized code: one long
 * call per tensor would run in the code V8 compiles on-stack for a loop already running, and
 * after any deoptimization V8 may never leave it, at up to twice the time per element.
 */
const CHUNK = 4096;

/** The objects a kernel's loop reads its scalars, flags and buffers from, reused by every call. */
interface Scratch {
  s: Record<string, number>;
  on: Record<string, boolean>;
  /** The state buffers of the tensor or chunk being run. */
  state: FloatArray[];
  /** bfloat16 state, widened a chunk at a time. */
  wide: Float32Array[];
}
/** Per kernel, one for float32 tensors and one for float64. */
const scratch = new WeakMap<AnyKernel, [Scratch, Scratch]>();
const EMPTY = new Float64Array(0);

/**
 * A kernel's records, built once with every field: the scalars start as non-integral doubles, so
 * V8 gives each field the double representation from the start and a later value (an integral
 * one reads as a small integer) never changes the record's shape, which would deoptimize the
 * loop that reads it.
 */
function newScratch(kernel: AnyKernel): Scratch {
  const s: Record<string, number> = {};
  for (const name of kernel.scalars as readonly string[]) s[name] = 0.5;
  const on: Record<string, boolean> = {};
  for (const bit of kernel.flags as readonly string[]) on[bit] = false;
  return { s, on, state: [], wide: [] };
}

function scratchOf(kernel: AnyKernel, f32: boolean): Scratch {
  let sc = scratch.get(kernel);
  if (sc === undefined) {
    sc = [newScratch(kernel), newScratch(kernel)];
    scratch.set(kernel, sc);
  }
  return sc[f32 ? 0 : 1];
}

/**
 * Runs a kernel with the gradient policy of the flags: with CHECK_FINITE every gradient of the
 * call is scanned before anything is written, and the index of the first tensor holding a NaN or
 * an infinity is returned with nothing updated; CHECK_ONLY scans and never updates.
 */
function step(kernel: AnyKernel, input: TensorList | PreparedList, scalars: Float64Array, flags: number): number | undefined {
  const list = resolve(kernel, input, scalars, flags);
  const stride = kernel.stride(flags);
  if ((flags & CHECK_FINITE) !== 0) {
    const t = firstNonFiniteTensor(list, stride);
    if (t >= 0) return t;
    if ((flags & CHECK_ONLY) !== 0) return undefined;
  }
  if (list.length === 0) return undefined;
  // The scalars in the tensors' type, as the native kernels read them (T(s[i])) and torch uses a
  // Python float on a float32 tensor: a call's tensors share one dtype.
  const f32 = list[0] instanceof Float32Array;
  const { s, on, state, wide } = scratchOf(kernel, f32);
  const names = kernel.scalars;
  for (let i = 0; i < names.length; i++) s[names[i]] = f32 ? Math.fround(scalars[i]) : scalars[i];
  const bits = kernel.flags;
  for (let i = 0; i < bits.length; i++) on[bits[i]] = (flags & (1 << i)) !== 0;
  // The kernel's loop, copied for these flags and this dtype (src/backend/specialize.ts).
  const loop = specializedLoop(kernel, flags, f32);
  const n = stride - 2;
  state.length = n;
  if (n > 0 && list[2] instanceof Uint16Array) {
    stepBfloat16(list, stride, loop, state, wide, s, on);
  } else {
    for (let t = 0; t < list.length; t += stride) {
      const p = list[t] as FloatArray;
      const g = list[t + 1] as FloatArray;
      if (p.length <= CHUNK) {
        for (let j = 0; j < n; j++) state[j] = list[t + 2 + j] as FloatArray;
        loop(p, g, state, s, on);
        continue;
      }
      for (let off = 0; off < p.length; off += CHUNK) {
        const end = Math.min(off + CHUNK, p.length);
        for (let j = 0; j < n; j++) state[j] = (list[t + 2 + j] as FloatArray).subarray(off, end);
        loop(p.subarray(off, end), g.subarray(off, end), state, s, on);
      }
    }
  }
  state.fill(EMPTY);
  return undefined;
}

/** Elements per chunk of a bfloat16-state call (the native runner's chunk). */
const BF16_CHUNK = 1024;

/**
 * The bfloat16-state runner, as the native one: each chunk's state widened to float32, the
 * kernel's loop run on it, the state rounded back to nearest even.
 */
function stepBfloat16(
  list: readonly StateArray[],
  stride: number,
  loop: AnyKernel['reference'],
  state: FloatArray[],
  wide: Float32Array[],
  s: Record<string, number>,
  on: Record<string, boolean>,
): void {
  const n = stride - 2;
  while (wide.length < n) wide.push(new Float32Array(BF16_CHUNK));
  for (let t = 0; t < list.length; t += stride) {
    const p = list[t] as FloatArray;
    const g = list[t + 1] as FloatArray;
    for (let off = 0; off < p.length; off += BF16_CHUNK) {
      const m = Math.min(BF16_CHUNK, p.length - off);
      for (let j = 0; j < n; j++) {
        const view = m === BF16_CHUNK ? wide[j] : wide[j].subarray(0, m);
        widenBfloat16(list[t + 2 + j] as Uint16Array, off, m, view);
        state[j] = view;
      }
      loop(p.subarray(off, off + m), g.subarray(off, off + m), state, s, on);
      for (let j = 0; j < n; j++) narrowBfloat16(state[j], m, list[t + 2 + j] as Uint16Array, off);
    }
  }
}

/** The index (in tensors) of the first tuple whose grad holds a NaN or an infinity, or -1. */
function firstNonFiniteTensor(list: readonly StateArray[], stride: number): number {
  for (let t = 0; t < list.length; t += stride) if (firstNonFinite(list[t + 1]) >= 0) return t / stride;
  return -1;
}

/** The checks of a step call (shared with the wasm backend, which refuses the same calls). */
export { resolve as checkStepCall };

export const referenceBackend: Backend = {
  name: 'reference',
  info(): BackendInfo {
    return { backend: 'reference', simd: 'scalar', fma: false, blas: 'none', threads: 1, stepThreads: 1, version: VERSION };
  },
  prepare,
  step,
  ...referenceLinalg,
};
