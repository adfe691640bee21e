import type { FloatArray } from '../backend/types.js';
import { checkLength, checkSameType } from '../validate.js';
import type { Design } from './design.js';
import { buildObjective } from './objective.js';
import type { Model } from './objective.js';
import { setup, targets } from './options.js';
import type { ObjectiveOptions, RegressorObjective, RowIndices } from './types.js';

function linearModel<T extends FloatArray>(design: Design<T>, y: Float64Array): Model<T> {
  return {
    data(X, n, rowOf, w, scale, grad, hessian) {
      const r = design.work('residual', n);
      design.scores(X, n, w, r);
      let loss = 0;
      for (let i = 0; i < n; i++) {
        r[i] -= y[rowOf === null ? i : rowOf[i]];
        loss += r[i] * r[i];
      }
      if (grad !== null) design.backprop(X, n, r, 2 * scale, grad);
      if (hessian !== null) {
        const c = design.work64('ones', n).fill(1);
        design.weightedGram(X, n, c, 2 * scale, hessian);
      }
      return scale * loss;
    },
    hvp(X, n, _rowOf, _w, v, scale, out) {
      const u = design.work('residual', n);
      design.scores(X, n, v, u);
      design.backprop(X, n, u, 2 * scale, out);
    },
  };
}

export type LinearRegressionOptions = ObjectiveOptions;

/**
 * Least squares (mean squared error under 'mean') with an elastic-net penalty: ridge with l2,
 * lasso with l1, elastic net with both. For rows xᵢ of X, targets yᵢ, w = (weights, intercept b):
 *
 * ```
 * rᵢ = xᵢ·w + b − yᵢ
 * L(w) = R(Σᵢ rᵢ²) + λ1 Σ|wⱼ| + λ2 Σwⱼ²      R: 1/n (mean) or 1 (sum)
 * ∇L  = 2R(X̃ᵀr) + λ1 sign(w) + 2λ2 w
 * ∇²L = 2R(X̃ᵀX̃) + 2λ2 I                     X̃ = [X 1]
 * ```
 *
 * There is no ½ in front (the mean of squared errors is torch's MSELoss); the Hessian does not
 * depend on w. The penalty leaves the intercept out unless `penalizeIntercept`.
 */
export function linearRegression<T extends FloatArray>(
  X: T,
  y: ArrayLike<number>,
  options?: LinearRegressionOptions,
): RegressorObjective<T> {
  const fn = 'linearRegression';
  const s = setup(fn, X, options, [], () => 1);
  const values = targets(fn, y, s.design.rows, (v) => (Number.isFinite(v) ? null : 'is not finite'));
  const { design } = s;
  return buildObjective(fn, s, linearModel(design, values), (base, rowOf, checkW): RegressorObjective<T> => ({
    ...base,
    predict(w, out) {
      checkW('predict', w);
      const n = base.rows;
      if (out !== undefined) {
        checkSameType(out, 'out', 'linearRegression.predict: ', design.X, 'X');
        checkLength(out, 'out', 'linearRegression.predict: ', n, 'rows');
      }
      const o = out ?? design.alloc(n);
      design.scores(design.view(rowOf), n, w, o);
      return o;
    },
    batch: base.batch as (indices: RowIndices) => RegressorObjective<T>,
  }));
}
