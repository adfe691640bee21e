import type { AnyKernel } from './kernel.js';

/**
 * The contract between the optimizers and the two backends (native addon, pure TypeScript).
 *
 * Every step kernel is multi-tensor: one call covers every tensor of a parameter group that
 * shares a dtype. Tensors travel as one flat array `list` laid out tuple after tuple:
 *
 *   list[i*stride + 0] = param   (updated in place)
 *   list[i*stride + 1] = grad    (read only)
 *   list[i*stride + 2 ...] = state buffers, in the order of the kernel's descriptor (updated in place)
 *
 * All arrays of one call share one dtype, and all arrays of one tuple share one length.
 * Hyperparameters arrive already folded into scalars (bias corrections, signs, decayed rates) in
 * a Float64Array laid out by the kernel's descriptor (src/backend/kernel.ts); float32 kernels round each scalar to
 * float32 once, as torch does for float32 tensors. `flags` is a bitmask of the kernel's options.
 *
 * The native backend reproduces torch 2.13's CPU arithmetic (single-tensor path), including where ATen fuses a
 * multiply-add (`add(alpha)` = fma(alpha, y, x); `addcmul(value)` = fma(value*t1, t2, x)),
 * when the CPU has FMA. The reference backend rounds every operation separately (JavaScript
 * has no fma) and computes float32 tensors in float64, rounding once on store.
 */

export type FloatArray = Float32Array | Float64Array;
export type DType = 'float32' | 'float64';
/**
 * A state buffer: the param's dtype, or bfloat16 bit patterns (Uint16Array) beside float32
 * params (`stateDtype: 'bfloat16'`): the kernels widen them to float32, run the float32 loop and
 * round back to nearest even.
 */
export type StateArray = FloatArray | Uint16Array;
/** [p0, g0, state..., p1, g1, state..., ...]: p and g float arrays, the state as StateArray. */
export type TensorList = StateArray[];

/**
 * A tensor list validated once by `Backend.prepare(list, stride)`, accepted by every step kernel
 * in place of the list. Optimizers prepare each (group, dtype) list once and step through the
 * handle, so a step over a thousand tensors costs one check per distinct ArrayBuffer instead of
 * one unwrap per typed array. A step through a handle whose buffers were detached or resized
 * since refuses to run (OptimTypeError for the reference backend, TypeError from the addon).
 */
export interface PreparedList {
  readonly tensors: number;
  /** Distinct ArrayBuffers behind the list (what a step checks). */
  readonly buffers: number;
}

export interface BackendInfo {
  backend: 'native' | 'wasm' | 'reference';
  /** Instruction set of the step kernels in use. */
  simd: 'avx512' | 'avx2' | 'sse2' | 'neon' | 'wasm-simd128' | 'scalar';
  /** Whether the native kernels fuse multiply-adds the way ATen does on an FMA CPU. */
  fma: boolean;
  blas: 'openblas' | 'builtin' | 'none';
  /** Threads the linear algebra may use (OpenBLAS's cap; 1 for the built-in kernels). */
  threads: number;
  /** Threads a large step is split across, the caller's included (`setNumThreads`). */
  stepThreads: number;
  version: string;
  /** Why the native backend is not in use, when `auto` fell back from it. */
  fallbackReason?: string;
}

/**
 * Flag bits every step kernel accepts, above its own. CHECK_FINITE: before writing anything, scan
 * every gradient of the call; if one holds a NaN or an infinity, update nothing and return the
 * index (within the call) of the first such tensor. CHECK_ONLY (with CHECK_FINITE): scan only,
 * never update, so a step made of several calls checks them all before the first one writes.
 */
export const CHECK_FINITE = 256;
export const CHECK_ONLY = 512;

/** The index of the first element of `g` that is NaN or infinite, or -1. */
export function firstNonFinite(g: ArrayLike<number>): number {
  for (let i = 0; i < g.length; i++) if (!Number.isFinite(g[i])) return i;
  return -1;
}


export interface Backend {
  readonly name: 'native' | 'wasm' | 'reference';
  info(): BackendInfo;
  /** Validates `list` (dtype, lengths, stride = 2 + state buffers per tensor) once. */
  prepare(list: TensorList, stride: number): PreparedList;
  /**
   * Runs `kernel` over every tensor of `list` in place (see src/backend/kernel.ts for the layout
   * of scalars and flags). Returns undefined, or with CHECK_FINITE the index of the first tensor
   * whose grad is not finite (then nothing was written).
   */
  step(kernel: AnyKernel, list: TensorList | PreparedList, scalars: Float64Array, flags: number): number | undefined;
  /**
   * The byte offset of `a[0]` within its cache line, on backends that step arrays where they lie
   * (native): allocators use it to start state and grads where their param starts (align.ts).
   */
  readonly lineOffset?: (a: StateArray) => number;

  // Linear algebra (src/linalg is the public face, which validates and allocates). Matrices are
  // row-major, every array of one call shares one dtype, lengths are exact. Outputs must not
  // share memory with inputs, except where noted (in place).
  /** c = alpha * op(a) * op(b) + beta * c; op(a) m×k, op(b) k×n; c is not read when beta == 0. */
  gemm(a: FloatArray, b: FloatArray, c: FloatArray, m: number, n: number, k: number,
    transA: boolean, transB: boolean, alpha: number, beta: number): void;
  /** c = op(a) op(a)^T, full n×n; a is rows×cols, op(a) = trans ? a^T : a. */
  syrk(a: FloatArray, c: FloatArray, rows: number, cols: number, trans: boolean): void;
  /**
   * out = L, the lower Cholesky factor of the n×n matrix whose lower triangle is in a (the upper
   * one is not read), strictly upper triangle zeroed. out === a factors in place. Throws
   * CholeskyError (the first non-positive pivot) or OptimRangeError (a non-finite entry, before
   * writing anything); after a CholeskyError, out's contents are unspecified.
   */
  potrf(a: FloatArray, out: FloatArray, n: number): void;
  /** x = (L L^T)^{-1} b; b, x n×nrhs; x === b solves in place. */
  potrs(L: FloatArray, b: FloatArray, x: FloatArray, n: number, nrhs: number): void;
  /** Eigenvalues ascending; eigenvectors in the columns of `vectors`, largest component positive. */
  syevd(a: FloatArray, values: FloatArray, vectors: FloatArray, n: number): void;
  gemmAsync(a: FloatArray, b: FloatArray, c: FloatArray, m: number, n: number, k: number,
    transA: boolean, transB: boolean, alpha: number, beta: number): Promise<void>;
  potrfAsync(a: FloatArray, out: FloatArray, n: number): Promise<void>;
  potrsAsync(L: FloatArray, b: FloatArray, x: FloatArray, n: number, nrhs: number): Promise<void>;
  syevdAsync(a: FloatArray, values: FloatArray, vectors: FloatArray, n: number): Promise<void>;
}
