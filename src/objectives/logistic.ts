import type { FloatArray } from '../backend/types.js';
import { buildObjective, classifier } from './objective.js';
import type { Model } from './objective.js';
import { setup, targets } from './options.js';
import type { Design } from './design.js';
import type { ClassifierObjective, ObjectiveOptions } from './types.js';

/** log(1 + eᶻ) without overflow for large z or loss of digits for very negative z. */
function softplus(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

/** σ(z) = 1/(1 + e⁻ᶻ), evaluated on the side where the exponential cannot overflow. */
function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** σ(z)(1 − σ(z)) = e^(−|z|)/(1 + e^(−|z|))², exact in the tails where 1 − σ rounds to 0. */
function sigmoidSlope(z: number): number {
  const e = Math.exp(-Math.abs(z));
  return e / ((1 + e) * (1 + e));
}

function logisticModel<T extends FloatArray>(design: Design<T>, y: Float64Array): Model<T> {
  return {
    data(X, n, rowOf, w, scale, grad, hessian) {
      const z = design.work('z', n);
      design.scores(X, n, w, z);
      let loss = 0;
      for (let i = 0; i < n; i++) loss += softplus(z[i]) - y[rowOf === null ? i : rowOf[i]] * z[i];
      if (grad !== null) {
        const r = design.work('residual', n);
        for (let i = 0; i < n; i++) r[i] = sigmoid(z[i]) - y[rowOf === null ? i : rowOf[i]];
        design.backprop(X, n, r, scale, grad);
      }
      if (hessian !== null) {
        const c = design.work64('slope', n);
        for (let i = 0; i < n; i++) c[i] = sigmoidSlope(z[i]);
        design.weightedGram(X, n, c, scale, hessian);
      }
      return scale * loss;
    },
    hvp(X, n, _rowOf, w, v, scale, out) {
      const z = design.work('z', n);
      const u = design.work('residual', n);
      design.scores(X, n, w, z);
      design.scores(X, n, v, u);
      for (let i = 0; i < n; i++) u[i] *= sigmoidSlope(z[i]);
      design.backprop(X, n, u, scale, out);
    },
  };
}

export type LogisticRegressionOptions = ObjectiveOptions;

/**
 * Binary logistic regression (log-loss) with an elastic-net penalty. For rows xᵢ of X, labels
 * yᵢ ∈ [0, 1] (0/1, or probabilities), and w = (weights, intercept b):
 *
 * ```
 * zᵢ = xᵢ·w + b
 * L(w) = R(Σᵢ [log(1 + e^zᵢ) − yᵢ zᵢ]) + λ1 Σ|wⱼ| + λ2 Σwⱼ²     R: 1/n (mean) or 1 (sum)
 * ∇L  = R(X̃ᵀ(σ(z) − y)) + λ1 sign(w) + 2λ2 w
 * ∇²L = R(X̃ᵀ diag(σ(z)(1 − σ(z))) X̃) + 2λ2 I                 X̃ = [X 1]
 * ```
 *
 * log(1 + eᶻ) is evaluated as max(z, 0) + log1p(e^(−|z|)), so no z overflows. The penalty
 * leaves the intercept out unless `penalizeIntercept`. w has cols (+1) entries: the weights,
 * then b. The Hessian is one syrk (`gram`) of the rows scaled by √(σ(1 − σ)).
 *
 * scikit-learn's `LogisticRegression(C=1/(2λ2))` (l2) is this with reduction 'sum'.
 */
export function logisticRegression<T extends FloatArray>(
  X: T,
  y: ArrayLike<number>,
  options?: LogisticRegressionOptions,
): ClassifierObjective<T> {
  const fn = 'logisticRegression';
  const s = setup(fn, X, options, [], () => 1);
  const labels = targets(fn, y, s.design.rows, (v) => (v >= 0 && v <= 1 ? null : 'is not in [0, 1]'));
  const { design } = s;
  return buildObjective(fn, s, logisticModel(design, labels), (base, rowOf, checkW) =>
    classifier(design, base, rowOf, checkW, (z, i) => (z[i] > 0 ? 1 : 0), labels, (v) => (v >= 0.5 ? 1 : 0)),
  );
}
