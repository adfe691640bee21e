import type { FloatArray } from '../backend/types.js';
import { checkInteger } from '../validate.js';
import type { Design } from './design.js';
import { buildObjective, classifier } from './objective.js';
import type { Model } from './objective.js';
import { setup, targets } from './options.js';
import type { ClassifierObjective, ObjectiveOptions } from './types.js';

/**
 * Row i of Z (n×K) to probabilities in P: pᵢₖ = e^(zᵢₖ − m)/Σₖ' e^(zᵢₖ' − m) with m = maxₖ zᵢₖ,
 * so no exponential overflows; returns log Σₖ e^zᵢₖ = m + log Σₖ e^(zᵢₖ − m).
 */
function softmaxRow(Z: FloatArray, P: FloatArray, i: number, K: number): number {
  const o = i * K;
  let m = -Infinity;
  for (let k = 0; k < K; k++) if (Z[o + k] > m) m = Z[o + k];
  let s = 0;
  for (let k = 0; k < K; k++) {
    const e = Math.exp(Z[o + k] - m);
    P[o + k] = e;
    s += e;
  }
  for (let k = 0; k < K; k++) P[o + k] /= s;
  return m + Math.log(s);
}

/** The index of the largest of the K scores in row i of Z (the first on a tie). */
function argmax(Z: FloatArray, i: number, K: number): number {
  let best = 0;
  for (let k = 1; k < K; k++) if (Z[i * K + k] > Z[i * K + best]) best = k;
  return best;
}

function softmaxModel<T extends FloatArray>(design: Design<T>, y: Float64Array): Model<T> {
  const K = design.outputs;
  return {
    data(X, n, rowOf, w, scale, grad, hessian) {
      const Z = design.work('z', n * K);
      const P = design.work64('prob', n * K);
      design.scores(X, n, w, Z);
      let loss = 0;
      for (let i = 0; i < n; i++) {
        const label = y[rowOf === null ? i : rowOf[i]];
        loss += softmaxRow(Z, P, i, K) - Z[i * K + label];
      }
      if (grad !== null) {
        const R = design.work('residual', n * K);
        for (let i = 0; i < n * K; i++) R[i] = P[i];
        for (let i = 0; i < n; i++) R[i * K + y[rowOf === null ? i : rowOf[i]]] -= 1;
        design.backprop(X, n, R, scale, grad);
      }
      if (hessian !== null) blockHessian(design, X, n, P, scale, hessian);
      return scale * loss;
    },
    hvp(X, n, _rowOf, w, v, scale, out) {
      const Z = design.work('z', n * K);
      const P = design.work64('prob', n * K);
      const A = design.work('residual', n * K);
      design.scores(X, n, w, Z);
      for (let i = 0; i < n; i++) softmaxRow(Z, P, i, K);
      design.scores(X, n, v, A);
      // Row i: (diag(pᵢ) − pᵢpᵢᵀ)·aᵢ = pᵢ ⊙ (aᵢ − pᵢ·aᵢ).
      for (let i = 0; i < n; i++) {
        const o = i * K;
        let pa = 0;
        for (let k = 0; k < K; k++) pa += P[o + k] * A[o + k];
        for (let k = 0; k < K; k++) A[o + k] = P[o + k] * (A[o + k] - pa);
      }
      design.backprop(X, n, A, scale, out);
    },
  };
}

/**
 * H[(j,k), (j',k')] = scale·Σᵢ x̃ᵢⱼ x̃ᵢⱼ' (pᵢₖ δₖₖ' − pᵢₖ pᵢₖ'): one weighted Gram block per class
 * pair k ≤ k'. The weights have one sign per block (pₖ(1 − pₖ) ≥ 0 on the diagonal, −pₖpₖ' ≤ 0
 * off it), so each block is a syrk of rows scaled by √|weight|, negated off the diagonal.
 */
function blockHessian<T extends FloatArray>(design: Design<T>, X: T, n: number, P: Float64Array, scale: number, H: T): void {
  const { outputs: K, width: d, size } = design;
  const block = design.work('block', d * d);
  const c = design.work64('blockWeights', n);
  for (let k = 0; k < K; k++) {
    for (let k2 = k; k2 < K; k2++) {
      for (let i = 0; i < n; i++) {
        const p = P[i * K + k];
        c[i] = k === k2 ? p * (1 - p) : p * P[i * K + k2];
      }
      design.weightedGram(X, n, c, scale, block);
      const sign = k === k2 ? 1 : -1;
      for (let j = 0; j < d; j++) {
        const row = (j * K + k) * size;
        for (let j2 = 0; j2 < d; j2++) {
          const v = sign * block[j * d + j2];
          H[row + j2 * K + k2] = v;
          H[(j2 * K + k2) * size + j * K + k] = v;
        }
      }
    }
  }
}

export interface SoftmaxRegressionOptions extends ObjectiveOptions {
  /** Number of classes K (default: the largest label + 1). */
  classes?: number;
}

function classCount(fn: string, y: unknown, given: unknown): number {
  if (given !== undefined) return checkInteger(given, 'classes', `${fn}: options.`, 2);
  let max = 1;
  // Labels are checked one by one afterwards; here only the largest matters.
  if (Array.isArray(y) || ArrayBuffer.isView(y)) {
    for (const v of y as ArrayLike<unknown> as unknown[]) if (typeof v === 'number' && Number.isInteger(v) && v > max) max = v;
  }
  return max + 1;
}

/**
 * Softmax (multinomial logistic) regression, cross-entropy loss, elastic-net penalty. For rows
 * xᵢ of X, labels yᵢ ∈ {0, …, K−1}, weights W (cols×K) and intercepts b (K):
 *
 * ```
 * zᵢ = Wᵀxᵢ + b,   pᵢ = softmax(zᵢ)
 * L(W, b) = R(Σᵢ [log Σₖ e^zᵢₖ − zᵢ,yᵢ]) + λ1 Σ|W| + λ2 ΣW²      R: 1/n (mean) or 1 (sum)
 * ∇W = R(Xᵀ(P − Y)) + λ1 sign(W) + 2λ2 W,   ∇b = R((P − Y)ᵀ1)      (Y one-hot)
 * ∇²L: H[(j,k),(j',k')] = R(Σᵢ x̃ᵢⱼ x̃ᵢⱼ' (pᵢₖ δₖₖ' − pᵢₖ pᵢₖ')) + 2λ2 δ
 * H·V  = R(X̃ᵀ B),  Bᵢ = pᵢ ⊙ (aᵢ − pᵢ·aᵢ),  A = X̃V
 * ```
 *
 * log Σ e^z is computed as m + log Σ e^(z − m), m = max z (no overflow). w holds W row-major
 * (w[j·K + k]) followed by b, (cols + 1)·K entries. The full Hessian has ((cols+1)·K)² entries
 * and costs K(K+1)/2 Gram products: for small problems and checks; `hvp` (two products) is the
 * one for large ones. Without L2, the Hessian is singular (adding a constant to every class's
 * scores changes nothing).
 */
export function softmaxRegression<T extends FloatArray>(
  X: T,
  y: ArrayLike<number>,
  options?: SoftmaxRegressionOptions,
): ClassifierObjective<T> {
  const fn = 'softmaxRegression';
  const s = setup(fn, X, options, ['classes'], (opts) => classCount(fn, y, opts.classes));
  const { design } = s;
  const K = design.outputs;
  const labels = targets(fn, y, design.rows, (v) => (Number.isInteger(v) && v >= 0 && v < K ? null : `is not a class label in 0..${K - 1}`));
  return buildObjective(fn, s, softmaxModel(design, labels), (base, rowOf, checkW) =>
    classifier(design, base, rowOf, checkW, (Z, i) => argmax(Z, i, K), labels, (v) => v),
  );
}
