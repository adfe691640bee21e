/**
 * The pure-TypeScript backend: every step kernel of types.ts, element by element.
 *
 * It is the oracle the native kernels are tested against, so it follows the documented formulas
 * literally, with one difference JavaScript imposes: each `fma(a, b, c)` is `a*b + c`, rounded
 * twice. Float32 tensors are computed in float64 from their stored values and the unrounded
 * scalars, and rounded once when stored; a value stored into a state buffer is read back before
 * it is used again, as torch reads the updated tensor.
 */
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { VERSION } from '../version.js';
import { ADAGRAD, ADAM, CHECK_FINITE, CHECK_ONLY, firstNonFinite, NADAM, RADAM, RMSPROP, SGD, stateCount } from './types.js';
import type { Backend, BackendInfo, FloatArray, PreparedList, StepFn, StepKernel, TensorList } from './types.js';
import { referenceLinalg } from './reference-linalg.js';

const KERNELS: Record<StepKernel, { nScalars: number; allFlags: number }> = {
  sgdStep: { nScalars: SGD.N_SCALARS, allFlags: SGD.F_WD | SGD.F_MOMENTUM | SGD.F_NESTEROV | SGD.F_FIRST },
  adagradStep: { nScalars: ADAGRAD.N_SCALARS, allFlags: ADAGRAD.F_WD },
  rmspropStep: {
    nScalars: RMSPROP.N_SCALARS,
    allFlags: RMSPROP.F_WD | RMSPROP.F_CENTERED | RMSPROP.F_MOMENTUM | RMSPROP.F_EPS_INSIDE,
  },
  adamStep: { nScalars: ADAM.N_SCALARS, allFlags: ADAM.F_WD | ADAM.F_AMSGRAD | ADAM.F_DECOUPLED },
  nadamStep: { nScalars: NADAM.N_SCALARS, allFlags: NADAM.F_WD | NADAM.F_DECOUPLED },
  radamStep: { nScalars: RADAM.N_SCALARS, allFlags: RADAM.F_WD | RADAM.F_RECTIFIED | RADAM.F_DECOUPLED },
};

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'Array';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return typeof v;
}

/**
 * A list checked once by `prepare`. Each step re-reads every array's length: a detached buffer
 * reads as length 0 and a shrunk resizable one puts its views out of bounds (also length 0),
 * so the step refuses instead of updating fewer elements than it should.
 */
class ReferencePrepared implements PreparedList {
  readonly tensors: number;
  readonly buffers: number;
  readonly #list: readonly FloatArray[];
  readonly #stride: number;
  readonly #lengths: Float64Array;

  constructor(list: readonly FloatArray[], stride: number) {
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
  static unwrap(kernel: StepKernel, v: ReferencePrepared, stride: number): readonly FloatArray[] {
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
 * Whether a (zero-length) array's buffer was detached: a transferred buffer must be refused, not
 * taken for an empty tensor. Node 20 has no `ArrayBuffer.prototype.detached`, but a view cannot
 * be constructed on a detached buffer.
 */
function isDetached(a: FloatArray): boolean {
  const buffer = a.buffer;
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength !== 0) return false;
  try {
    new Uint8Array(buffer);
    return false;
  } catch {
    return true;
  }
}

/** Checks the arrays of a list: one dtype, equal lengths within each tuple, none detached. */
function checkList(fn: string, list: readonly unknown[], stride: number): void {
  if (list.length === 0) return;
  const first = list[0];
  const ctor = first instanceof Float32Array ? Float32Array : first instanceof Float64Array ? Float64Array : undefined;
  if (ctor === undefined) {
    throw new OptimTypeError(`${fn}: list[0] must be a Float32Array or Float64Array, got ${typeName(first)}`);
  }
  let n = 0;
  for (let i = 0; i < list.length; i++) {
    const el = list[i];
    if (!(el instanceof ctor)) {
      throw new OptimTypeError(`${fn}: list[${i}] must be a ${ctor.name} like list[0], got ${typeName(el)}`);
    }
    if (el.length === 0 && isDetached(el)) {
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
  if (!(Number.isInteger(stride) && stride >= 2 && stride <= 5)) {
    throw new OptimRangeError('prepare: stride must be an integer from 2 to 5');
  }
  if (list.length % stride !== 0) {
    throw new OptimRangeError(`prepare: list length ${list.length} is not a multiple of stride ${stride}`);
  }
  checkList('prepare', list, stride);
  return new ReferencePrepared([...list], stride);
}

/**
 * Checks a call the way the native binding does, in the same order, and returns the arrays to
 * update. Nothing is written before this returns, so a refused call changes no buffer.
 */
function resolve(kernel: StepKernel, list: unknown, scalars: unknown, flags: unknown): readonly FloatArray[] {
  const k = KERNELS[kernel];
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
    throw new OptimTypeError(`${kernel}: scalars must be a Float64Array, got ${typeName(scalars)}`);
  }
  if (scalars.length !== k.nScalars) {
    throw new OptimRangeError(`${kernel}: scalars must have length ${k.nScalars}, got ${scalars.length}`);
  }
  const stride = 2 + stateCount(kernel, flags);
  if (prepared) return ReferencePrepared.unwrap(kernel, list, stride);
  const arr = list as unknown[];
  if (arr.length % stride !== 0) {
    throw new OptimRangeError(
      `${kernel}: list length ${arr.length} is not a multiple of ${stride} ` +
        `(param, grad and ${stride - 2} state buffers per tensor for these flags)`,
    );
  }
  checkList(kernel, arr, stride);
  return arr as FloatArray[];
}

function sgdRun(list: readonly FloatArray[], stride: number, scalars: Float64Array, flags: number): void {
  const wd = scalars[SGD.S_WD];
  const momentum = scalars[SGD.S_MOMENTUM];
  const oneMinusDampening = scalars[SGD.S_ONE_MINUS_DAMPENING];
  const negLr = scalars[SGD.S_NEG_LR];
  const sign = scalars[SGD.S_SIGN];
  const hasWd = (flags & SGD.F_WD) !== 0;
  const hasMomentum = (flags & SGD.F_MOMENTUM) !== 0;
  const nesterov = (flags & SGD.F_NESTEROV) !== 0;
  const first = (flags & SGD.F_FIRST) !== 0;
  for (let t = 0; t < list.length; t += stride) {
    const p = list[t];
    const g = list[t + 1];
    const n = p.length;
    if (!hasMomentum) {
      for (let i = 0; i < n; i++) {
        let d = sign * g[i];
        if (hasWd) d = wd * p[i] + d;
        p[i] = negLr * d + p[i];
      }
      continue;
    }
    const buf = list[t + 2];
    for (let i = 0; i < n; i++) {
      let d = sign * g[i];
      if (hasWd) d = wd * p[i] + d;
      buf[i] = first ? d : oneMinusDampening * d + buf[i] * momentum;
      const b = buf[i];
      d = nesterov ? momentum * b + d : b;
      p[i] = negLr * d + p[i];
    }
  }
}

function adagradRun(list: readonly FloatArray[], stride: number, scalars: Float64Array, flags: number): void {
  const wd = scalars[ADAGRAD.S_WD];
  const negClr = scalars[ADAGRAD.S_NEG_CLR];
  const eps = scalars[ADAGRAD.S_EPS];
  const sign = scalars[ADAGRAD.S_SIGN];
  const hasWd = (flags & ADAGRAD.F_WD) !== 0;
  for (let t = 0; t < list.length; t += stride) {
    const p = list[t];
    const g = list[t + 1];
    const sum = list[t + 2];
    const n = p.length;
    for (let i = 0; i < n; i++) {
      let gi = sign * g[i];
      if (hasWd) gi = wd * p[i] + gi;
      sum[i] = gi * gi + sum[i];
      p[i] = p[i] + (negClr * gi) / (Math.sqrt(sum[i]) + eps);
    }
  }
}

function rmspropRun(list: readonly FloatArray[], stride: number, scalars: Float64Array, flags: number): void {
  const wd = scalars[RMSPROP.S_WD];
  const alpha = scalars[RMSPROP.S_ALPHA];
  const oneMinusAlpha = scalars[RMSPROP.S_ONE_MINUS_ALPHA];
  const eps = scalars[RMSPROP.S_EPS];
  const momentum = scalars[RMSPROP.S_MOMENTUM];
  const negLr = scalars[RMSPROP.S_NEG_LR];
  const sign = scalars[RMSPROP.S_SIGN];
  const hasWd = (flags & RMSPROP.F_WD) !== 0;
  const centered = (flags & RMSPROP.F_CENTERED) !== 0;
  const hasMomentum = (flags & RMSPROP.F_MOMENTUM) !== 0;
  const epsInside = (flags & RMSPROP.F_EPS_INSIDE) !== 0;
  for (let t = 0; t < list.length; t += stride) {
    const p = list[t];
    const g = list[t + 1];
    const sq = list[t + 2];
    // Unused slots alias `sq` so the loop needs no optional buffers; they are never written then.
    const ga = centered ? list[t + 3] : sq;
    const buf = hasMomentum ? list[t + 2 + (centered ? 2 : 1)] : sq;
    const n = p.length;
    for (let i = 0; i < n; i++) {
      let gi = sign * g[i];
      if (hasWd) gi = wd * p[i] + gi;
      sq[i] = oneMinusAlpha * gi * gi + sq[i] * alpha;
      let x = sq[i];
      if (centered) {
        ga[i] = oneMinusAlpha * gi + ga[i] * alpha;
        const gav = ga[i];
        x = -gav * gav + x;
      }
      const avg = epsInside ? Math.sqrt(x + eps) : Math.sqrt(x) + eps;
      if (hasMomentum) {
        buf[i] = buf[i] * momentum + gi / avg;
        p[i] = negLr * buf[i] + p[i];
      } else {
        p[i] = p[i] + (negLr * gi) / avg;
      }
    }
  }
}

function adamRun(list: readonly FloatArray[], stride: number, scalars: Float64Array, flags: number): void {
  const wd = scalars[ADAM.S_WD];
  const beta1 = scalars[ADAM.S_BETA1];
  const oneMinusBeta1 = scalars[ADAM.S_ONE_MINUS_BETA1];
  const beta2 = scalars[ADAM.S_BETA2];
  const oneMinusBeta2 = scalars[ADAM.S_ONE_MINUS_BETA2];
  const negStepSize = scalars[ADAM.S_NEG_STEP_SIZE];
  const bc2Sqrt = scalars[ADAM.S_BC2_SQRT];
  const eps = scalars[ADAM.S_EPS];
  const sign = scalars[ADAM.S_SIGN];
  const decayMul = scalars[ADAM.S_DECAY_MUL];
  const hasWd = (flags & ADAM.F_WD) !== 0;
  const amsgrad = (flags & ADAM.F_AMSGRAD) !== 0;
  const decoupled = (flags & ADAM.F_DECOUPLED) !== 0;
  for (let t = 0; t < list.length; t += stride) {
    const p = list[t];
    const g = list[t + 1];
    const m = list[t + 2];
    const v = list[t + 3];
    const vmax = amsgrad ? list[t + 4] : v;
    const n = p.length;
    for (let i = 0; i < n; i++) {
      if (decoupled) p[i] = p[i] * decayMul;
      let gi = sign * g[i];
      if (hasWd) gi = wd * p[i] + gi;
      m[i] = oneMinusBeta1 * gi + m[i] * beta1;
      v[i] = oneMinusBeta2 * gi * gi + v[i] * beta2;
      if (amsgrad) vmax[i] = Math.max(vmax[i], v[i]);
      const denom = Math.sqrt(vmax[i]) / bc2Sqrt + eps;
      p[i] = p[i] + (negStepSize * m[i]) / denom;
    }
  }
}

/** ATen's lerp, whose two branches keep the result exact at both ends of the weight. */
function lerpInto(m: FloatArray, i: number, g: number, w: number, oneMinusW: number): void {
  const mi = m[i];
  m[i] = w < 0.5 ? mi + w * (g - mi) : g - (g - mi) * oneMinusW;
}

function nadamRun(list: readonly FloatArray[], stride: number, scalars: Float64Array, flags: number): void {
  const wd = scalars[NADAM.S_WD];
  const w = scalars[NADAM.S_ONE_MINUS_BETA1];
  const oneMinusW = 1 - w;
  const beta2 = scalars[NADAM.S_BETA2];
  const oneMinusBeta2 = scalars[NADAM.S_ONE_MINUS_BETA2];
  const bc2 = scalars[NADAM.S_BC2];
  const eps = scalars[NADAM.S_EPS];
  const coefGrad = scalars[NADAM.S_COEF_GRAD];
  const coefAvg = scalars[NADAM.S_COEF_AVG];
  const sign = scalars[NADAM.S_SIGN];
  const decayMul = scalars[NADAM.S_DECAY_MUL];
  const hasWd = (flags & NADAM.F_WD) !== 0;
  const decoupled = (flags & NADAM.F_DECOUPLED) !== 0;
  for (let t = 0; t < list.length; t += stride) {
    const p = list[t];
    const g = list[t + 1];
    const m = list[t + 2];
    const v = list[t + 3];
    const n = p.length;
    for (let i = 0; i < n; i++) {
      if (decoupled) p[i] = p[i] * decayMul;
      let gi = sign * g[i];
      if (hasWd) gi = wd * p[i] + gi;
      lerpInto(m, i, gi, w, oneMinusW);
      v[i] = oneMinusBeta2 * gi * gi + v[i] * beta2;
      const denom = Math.sqrt(v[i] / bc2) + eps;
      p[i] = p[i] + (coefGrad * gi) / denom;
      p[i] = p[i] + (coefAvg * m[i]) / denom;
    }
  }
}

function radamRun(list: readonly FloatArray[], stride: number, scalars: Float64Array, flags: number): void {
  const wd = scalars[RADAM.S_WD];
  const w = scalars[RADAM.S_ONE_MINUS_BETA1];
  const oneMinusW = 1 - w;
  const beta2 = scalars[RADAM.S_BETA2];
  const oneMinusBeta2 = scalars[RADAM.S_ONE_MINUS_BETA2];
  const bc1 = scalars[RADAM.S_BC1];
  const lr = scalars[RADAM.S_LR];
  const bc2Sqrt = scalars[RADAM.S_BC2_SQRT];
  const eps = scalars[RADAM.S_EPS];
  const rect = scalars[RADAM.S_RECT];
  const sign = scalars[RADAM.S_SIGN];
  const decayMul = scalars[RADAM.S_DECAY_MUL];
  const hasWd = (flags & RADAM.F_WD) !== 0;
  const rectified = (flags & RADAM.F_RECTIFIED) !== 0;
  const decoupled = (flags & RADAM.F_DECOUPLED) !== 0;
  for (let t = 0; t < list.length; t += stride) {
    const p = list[t];
    const g = list[t + 1];
    const m = list[t + 2];
    const v = list[t + 3];
    const n = p.length;
    for (let i = 0; i < n; i++) {
      if (decoupled) p[i] = p[i] * decayMul;
      let gi = sign * g[i];
      if (hasWd) gi = wd * p[i] + gi;
      lerpInto(m, i, gi, w, oneMinusW);
      v[i] = oneMinusBeta2 * gi * gi + v[i] * beta2;
      const mh = m[i] / bc1;
      p[i] = rectified ? p[i] - mh * lr * (bc2Sqrt / (Math.sqrt(v[i]) + eps)) * rect : p[i] - mh * lr;
    }
  }
}

/**
 * The kernel with the gradient policy of the flags: with CHECK_FINITE every gradient of the call
 * is scanned before anything is written, and the index of the first tensor holding a NaN or an
 * infinity is returned with nothing updated; CHECK_ONLY scans and never updates.
 */
function stepWith(kernel: StepKernel, run: typeof sgdRun): StepFn {
  return (input, scalars, flags) => {
    const list = resolve(kernel, input, scalars, flags);
    const stride = 2 + stateCount(kernel, flags);
    if ((flags & CHECK_FINITE) !== 0) {
      const t = firstNonFiniteTensor(list, stride);
      if (t >= 0) return t;
      if ((flags & CHECK_ONLY) !== 0) return undefined;
    }
    run(list, stride, scalars, flags);
    return undefined;
  };
}

/** The index (in tensors) of the first tuple whose grad holds a NaN or an infinity, or -1. */
function firstNonFiniteTensor(list: readonly FloatArray[], stride: number): number {
  for (let t = 0; t < list.length; t += stride) if (firstNonFinite(list[t + 1]) >= 0) return t / stride;
  return -1;
}

const sgdStep = stepWith('sgdStep', sgdRun);
const adagradStep = stepWith('adagradStep', adagradRun);
const rmspropStep = stepWith('rmspropStep', rmspropRun);
const adamStep = stepWith('adamStep', adamRun);
const nadamStep = stepWith('nadamStep', nadamRun);
const radamStep = stepWith('radamStep', radamRun);

export const referenceBackend: Backend = {
  name: 'reference',
  info(): BackendInfo {
    return { backend: 'reference', simd: 'scalar', fma: false, blas: 'none', threads: 1, version: VERSION };
  },
  prepare,
  sgdStep,
  adagradStep,
  rmspropStep,
  adamStep,
  nadamStep,
  radamStep,
  ...referenceLinalg,
};
