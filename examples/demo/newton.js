'use strict';
// Part 2: binary logistic regression, T-shirt/top (0) vs Shirt (6), by Newton–Cholesky.
const optim = require('../../dist/index.js');

/** The optimum of this exact problem on the real data, from an independent high-precision fit. */
const J_STAR = 3486.341915270951;
/** scikit-learn 1.2's newton-cholesky on the same problem, on this machine (5 iterations). */
const SKLEARN_SECONDS = 1.44;
const MAX_ITER = 8;
/** Converged when max|∇J| ≤ GRAD_RTOL · max|∇J(w0)|. */
const GRAD_RTOL = 1e-5;

function maxAbs(a) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Rows labelled 0 or 6, in file order; X = pixel/255 (float64), y = 1 for Shirt. */
function shirtsVersusTops(train) {
  const rows = [];
  for (let i = 0; i < train.count; i++) if (train.labels[i] === 0 || train.labels[i] === 6) rows.push(i);
  const X = optim.scalePixels(train.images, { dtype: 'float64', rows });
  const y = Uint8Array.from(rows, (r) => (train.labels[r] === 6 ? 1 : 0));
  return { X, y, rows: rows.length };
}

/**
 * J(w, b) = Σ[log(1 + e^z) − y z] + ½‖w‖², z = Xw + b, b unpenalized: the library's logistic
 * objective with reduction 'sum' and l2 = ½. Each Newton step factors the Hessian at the
 * current point (pure Newton, damping 0: J is strictly convex). The loss and gradient of the
 * point a step lands on are computed once, to report J and test convergence, and handed to
 * the next step; its Hessian is computed only if another step is needed.
 */
function fitNewton({ X, y, cols }) {
  const t0 = process.hrtime.bigint();
  const obj = optim.logisticRegression(X, y, { cols, l2: 0.5, reduction: 'sum' });
  const w = optim.param(new Float64Array(obj.size), 'logistic-w');
  const newton = new optim.Newton([w], { damping: 0 });
  const H = new Float64Array(obj.size * obj.size);
  let { loss, grad } = obj.lossAndGrad(w.data);
  const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e9;
  const g0 = maxAbs(grad);
  const history = [{ iteration: 0, J: loss, gradNorm: g0, seconds: elapsed() }];
  let converged = g0 === 0;
  for (let it = 1; it <= MAX_ITER && !converged; it++) {
    newton.step(() => {
      w.grad.set(grad);
      return { loss, hessian: obj.hessian(w.data, H) };
    });
    ({ loss, grad } = obj.lossAndGrad(w.data, grad));
    const gradNorm = maxAbs(grad);
    history.push({ iteration: it, J: loss, gradNorm, seconds: elapsed() });
    converged = gradNorm <= GRAD_RTOL * g0;
  }
  return { seconds: elapsed(), iterations: history.length - 1, converged, J: loss, w: w.data, history, objective: obj };
}

module.exports = { J_STAR, SKLEARN_SECONDS, MAX_ITER, GRAD_RTOL, shirtsVersusTops, fitNewton };
