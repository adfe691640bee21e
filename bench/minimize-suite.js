'use strict';
// minimize() on a 1000-dimensional convex problem with method 'newton' and 'lbfgs', on the
// native and the reference backend:
//
//   f(x) = ½ xᵀAx − bᵀx + Σᵢ softplus(xᵢ)      ∇f = Ax − b + σ(x)      ∇²f = A + diag(σ'(x))
//
// A = D·(MᵀM/m)·D + 0.01·I is dense and positive definite; D's diagonal spans two decades, so
// A is ill-conditioned (its condition number is in the report). That is the case a dense
// Newton step is for: a few O(n³) steps against many cheap O(n²) L-BFGS iterations. The softplus
// term makes the Hessian depend on x, so Newton takes several steps, not one. The products run
// through optim.matmul on the selected backend, as user code would; the Cholesky inside Newton
// runs there too.
const optim = require('../dist/index.js');
const { random } = require('./linalg.js');
const { median, gc } = require('./timing.js');

const N = 1000;
const ROUNDS = 3;
const OPTIONS = { gtol: 1e-5, maxIter: 5000 };

function problem() {
  const m = 2 * N;
  const M = random(Float64Array, m * N, 5);
  // Entries uniform in [-1, 1) have variance 1/3: this scaling makes E[MᵀM/m] = I before D.
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < N; j++) M[i * N + j] *= 10 ** (2 * (j / (N - 1) - 0.5)) / Math.sqrt(m / 3);
  }
  const A = optim.gram(M, { rows: m, cols: N, trans: true });
  for (let i = 0; i < N; i++) A[i * N + i] += 1e-2;
  const b = random(Float64Array, N, 9).map((v) => 2 * v);
  // Without the addon, eigh is cyclic Jacobi: tens of seconds at n = 1000, for a footnote.
  const values = optim.nativeAvailable() ? optim.eigh(A, N).values : undefined;
  const Ax = new Float64Array(N);

  const lossAndGrad = (x) => {
    optim.matmul(A, x, { m: N, k: N, n: 1, out: Ax });
    const grad = new Float64Array(N);
    let loss = 0;
    for (let i = 0; i < N; i++) {
      const z = x[i];
      loss += 0.5 * z * Ax[i] - b[i] * z + Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
      grad[i] = Ax[i] - b[i] + 1 / (1 + Math.exp(-z));
    }
    return { loss, grad };
  };
  // A fresh Hessian per call: Newton may keep the previous one while it tries a damped step.
  const evaluate = (x) => {
    const r = lossAndGrad(x);
    const H = A.slice();
    for (let i = 0; i < N; i++) {
      const s = 1 / (1 + Math.exp(-x[i]));
      H[i * N + i] += s * (1 - s);
    }
    return { ...r, hessian: H };
  };
  return { lossAndGrad, evaluate, cond: values && values[N - 1] / values[0] };
}

/** Rows { method, backend, ms (median of ROUNDS), nit, nfev, gradNorm, fun, success, message }. */
function runMinimizeSuite(log) {
  optim.setBackend('auto');
  const p = problem();
  const backends = optim.nativeAvailable() ? ['native', 'reference'] : ['reference'];
  const configs = ['newton', 'lbfgs'].flatMap((method) => backends.map((backend) => ({ method, backend, times: [] })));
  const run = (c, maxIter) => {
    optim.setBackend(c.backend);
    const fun = c.method === 'newton' ? p.evaluate : p.lossAndGrad;
    const t0 = process.hrtime.bigint();
    const result = optim.minimize(fun, new Float64Array(N), { ...OPTIONS, method: c.method, maxIter });
    return { result, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
  };
  // A short untimed run of each compiles the JavaScript on both paths first.
  for (const c of configs) run(c, 2);
  // Rounds in alternation, as timing.js samples: a burst of load slows every config alike.
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of configs) {
      gc();
      const { result, ms } = run(c, OPTIONS.maxIter);
      c.times.push(ms);
      c.result = result;
    }
  }
  optim.setBackend('auto');
  const rows = configs.map(({ method, backend, times, result: r }) => {
    const row = { method, backend, ms: median(times), times, nit: r.nit, nfev: r.nfev, gradNorm: r.gradNorm, fun: r.fun, success: r.success, message: r.message };
    log(`minimize: ${method} ${backend}: ${row.ms.toFixed(0)} ms, nit ${r.nit}, nfev ${r.nfev}, max|g| ${r.gradNorm.toExponential(2)}`);
    return row;
  });
  return { n: N, cond: p.cond, gtol: OPTIONS.gtol, rounds: ROUNDS, rows };
}

module.exports = { runMinimizeSuite };
