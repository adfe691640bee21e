/**
 * The contract between the optimizers and the two backends (native addon, pure TypeScript).
 *
 * Every step kernel is multi-tensor: one call covers every tensor of a parameter group that
 * shares a dtype. Tensors travel as one flat array `list` laid out tuple after tuple:
 *
 *   list[i*stride + 0] = param   (updated in place)
 *   list[i*stride + 1] = grad    (read only)
 *   list[i*stride + 2 ...] = state buffers, in the order each kernel documents (updated in place)
 *
 * All arrays of one call share one dtype, and all arrays of one tuple share one length.
 * Hyperparameters arrive already folded into scalars (bias corrections, signs, decayed rates) in
 * a Float64Array whose layout each kernel documents below; float32 kernels round each scalar to
 * float32 once, as torch does for float32 tensors. `flags` is a bitmask of the kernel's options.
 *
 * The native backend reproduces torch 1.13's CPU arithmetic, including where ATen fuses a
 * multiply-add (`add(alpha)` = fma(alpha, y, x); `addcmul(value)` = fma(value*t1, t2, x)),
 * when the CPU has FMA. The reference backend rounds every operation separately (JavaScript
 * has no fma) and computes float32 tensors in float64, rounding once on store.
 */

export type FloatArray = Float32Array | Float64Array;
export type DType = 'float32' | 'float64';
export type TensorList = FloatArray[];

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
  backend: 'native' | 'reference';
  /** Instruction set of the step kernels in use. */
  simd: 'avx512' | 'avx2' | 'sse2' | 'neon' | 'scalar';
  /** Whether the native kernels fuse multiply-adds the way ATen does on an FMA CPU. */
  fma: boolean;
  blas: 'openblas' | 'builtin' | 'none';
  threads: number;
  version: string;
  /** Why the native backend is not in use, when it is not. */
  fallbackReason?: string;
}

/**
 * SGD. State per tensor: [momentumBuffer] when flags has MOMENTUM (stride 3), else none (stride 2).
 * d = sign*g; WD: d = fma(wd, p, d); MOMENTUM: buf = FIRST ? d : fma(1-dampening, d, buf*momentum);
 * NESTEROV: d = fma(momentum, buf, d) else d = buf; p = fma(-lr, d, p).
 */
export const SGD = {
  S_WD: 0, S_MOMENTUM: 1, S_ONE_MINUS_DAMPENING: 2, S_NEG_LR: 3, S_SIGN: 4, N_SCALARS: 5,
  F_WD: 1, F_MOMENTUM: 2, F_NESTEROV: 4, F_FIRST: 8,
} as const;

/**
 * Adagrad. State per tensor: [sum] (stride 3).
 * g = sign*g; WD: g = fma(wd, p, g); sum = fma(g, g, sum); p = p + (-clr*g) / (sqrt(sum) + eps),
 * clr = lr / (1 + (t-1)*lrDecay).
 */
export const ADAGRAD = {
  S_WD: 0, S_NEG_CLR: 1, S_EPS: 2, S_SIGN: 3, N_SCALARS: 4,
  F_WD: 1,
} as const;

/**
 * RMSprop. State per tensor: [squareAvg, gradAvg if CENTERED, momentumBuffer if MOMENTUM].
 * g = sign*g; WD: g = fma(wd, p, g); sq = fma((1-alpha)*g, g, sq*alpha);
 * CENTERED: ga = fma(1-alpha, g, ga*alpha), avg = sqrt(fma(-ga, ga, sq)) else avg = sqrt(sq);
 * avg = avg + eps (EPS_INSIDE: avg = sqrt(x + eps) instead, the lecture-book form);
 * MOMENTUM: buf = buf*momentum + g/avg, p = fma(-lr, buf, p); else p = p + (-lr*g)/avg.
 */
export const RMSPROP = {
  S_WD: 0, S_ALPHA: 1, S_ONE_MINUS_ALPHA: 2, S_EPS: 3, S_MOMENTUM: 4, S_NEG_LR: 5, S_SIGN: 6,
  N_SCALARS: 7,
  F_WD: 1, F_CENTERED: 2, F_MOMENTUM: 4, F_EPS_INSIDE: 8,
} as const;

/**
 * Adam / AdamW. State per tensor: [expAvg, expAvgSq, maxExpAvgSq if AMSGRAD].
 * DECOUPLED: p = p*decayMul (decayMul = 1 - lr*wd, AdamW) first.
 * g = sign*g; WD (coupled L2): g = fma(wd, p, g); m = fma(1-b1, g, m*b1);
 * v = fma((1-b2)*g, g, v*b2); AMSGRAD: vmax = max(vmax, v), use vmax for v;
 * p = p + (negStepSize*m) / (sqrt(v)/bc2Sqrt + eps), negStepSize = -lr/(1-b1^t), bc2Sqrt = sqrt(1-b2^t).
 */
export const ADAM = {
  S_WD: 0, S_BETA1: 1, S_ONE_MINUS_BETA1: 2, S_BETA2: 3, S_ONE_MINUS_BETA2: 4,
  S_NEG_STEP_SIZE: 5, S_BC2_SQRT: 6, S_EPS: 7, S_SIGN: 8, S_DECAY_MUL: 9, N_SCALARS: 10,
  F_WD: 1, F_AMSGRAD: 2, F_DECOUPLED: 4,
} as const;

/**
 * NAdam (torch >= 2.0). State per tensor: [expAvg, expAvgSq].
 * DECOUPLED: p = p*decayMul first. g = sign*g; WD: g = fma(wd, p, g);
 * m = lerp(m, g, 1-b1) (ATen lerp: w < 0.5 ? m + w*(g-m) : g - (g-m)*(1-w));
 * v = fma((1-b2)*g, g, v*b2); denom = sqrt(v / bc2) + eps;
 * p = p + (coefGrad*g)/denom; p = p + (coefAvg*m)/denom,
 * coefGrad = -lr*(1-mu_t)/(1-prod mu), coefAvg = -lr*mu_{t+1}/(1-prod mu * mu_{t+1}).
 */
export const NADAM = {
  S_WD: 0, S_ONE_MINUS_BETA1: 1, S_BETA2: 2, S_ONE_MINUS_BETA2: 3, S_BC2: 4, S_EPS: 5,
  S_COEF_GRAD: 6, S_COEF_AVG: 7, S_SIGN: 8, S_DECAY_MUL: 9, N_SCALARS: 10,
  F_WD: 1, F_DECOUPLED: 2,
} as const;

/**
 * RAdam (torch >= 2.0). State per tensor: [expAvg, expAvgSq].
 * DECOUPLED: p = p*decayMul first. g = sign*g; WD: g = fma(wd, p, g); m = lerp(m, g, 1-b1);
 * v = fma((1-b2)*g, g, v*b2); mh = m / bc1;
 * RECTIFIED: p = p - ((mh*lr) * (bc2Sqrt / (sqrt(v) + eps))) * rect; else p = p - mh*lr.
 */
export const RADAM = {
  S_WD: 0, S_ONE_MINUS_BETA1: 1, S_BETA2: 2, S_ONE_MINUS_BETA2: 3, S_BC1: 4, S_LR: 5,
  S_BC2_SQRT: 6, S_EPS: 7, S_RECT: 8, S_SIGN: 9, S_DECAY_MUL: 10, N_SCALARS: 11,
  F_WD: 1, F_RECTIFIED: 2, F_DECOUPLED: 4,
} as const;

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

/** Number of state buffers each kernel expects per tensor, given its flags. */
export function stateCount(kernel: StepKernel, flags: number): number {
  switch (kernel) {
    case 'sgdStep': return flags & SGD.F_MOMENTUM ? 1 : 0;
    case 'adagradStep': return 1;
    case 'rmspropStep':
      return 1 + (flags & RMSPROP.F_CENTERED ? 1 : 0) + (flags & RMSPROP.F_MOMENTUM ? 1 : 0);
    case 'adamStep': return flags & ADAM.F_AMSGRAD ? 3 : 2;
    case 'nadamStep': return 2;
    case 'radamStep': return 2;
  }
}

export type StepKernel =
  | 'sgdStep' | 'adagradStep' | 'rmspropStep' | 'adamStep' | 'nadamStep' | 'radamStep';

/**
 * A step kernel: updates every tensor of `list` in place. Returns undefined, or with CHECK_FINITE
 * the index of the first tensor whose grad is not finite (then nothing was written).
 */
export type StepFn = (list: TensorList | PreparedList, scalars: Float64Array, flags: number) => number | undefined;

export interface Backend {
  readonly name: 'native' | 'reference';
  info(): BackendInfo;
  /** Validates `list` (dtype, lengths, stride = 2 + state buffers per tensor) once. */
  prepare(list: TensorList, stride: number): PreparedList;
  sgdStep: StepFn;
  adagradStep: StepFn;
  rmspropStep: StepFn;
  adamStep: StepFn;
  nadamStep: StepFn;
  radamStep: StepFn;

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
