/**
 * BFGS against scipy 1.17.1's `minimize(method='BFGS')` (test/golden/scipy-1.17/bfgs.json, the
 * diag problem from w0 with gtol 1e-8): every iterate, every function and gradient call (the
 * line search's trial points), the counts, status and message, and the final inverse Hessian,
 * through `minimize` and through the `BFGS` optimizer; chained Rosenbrock in 4 and 8 dimensions
 * as scipy-1.17's README describes them; the line searches' interpolation steps; option checks
 * and the state dict.
 */
import { describe, expect, it } from 'vitest';
import { minimize } from '../src/minimize.js';
import type { Evaluation } from '../src/minimize.js';
import { BFGS } from '../src/optim/bfgs.js';
import type { BFGSStateDict } from '../src/optim/bfgs.js';
import { cubicmin, quadmin, scalarSearchWolfe2 } from '../src/optim/line-search/wolfe2.js';
import { dcsrch } from '../src/optim/line-search/dcsrch.js';
import { param } from '../src/param.js';
import type { Param } from '../src/param.js';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../src/errors.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { maxAbsDiff, readGolden } from './helpers/golden.js';
import { bytesOf } from './helpers/snapshot.js';

interface Call {
  x: number[];
  f?: number;
  g?: number[];
}

const golden = readGolden<{
  problem: { a: number[]; c: number[]; w0: number[] };
  options_in_effect: { gtol: number; maxiter: number };
  iterates: Array<{ k: number; x: number[]; f: number; g: number[] }>;
  fun_calls: Call[];
  jac_calls: Call[];
  result: {
    x: number[]; fun: number; jac: number[]; nit: number; nfev: number; njev: number; status: number; success: boolean;
    message: string; hess_inv: number[][];
  };
  line_search_wolfe2_fallback_calls: number;
  sensitivity: { max_abs: number };
}>('scipy-1.17/bfgs.json');

const { a, c, w0 } = golden.problem;
const GTOL = golden.options_in_effect.gtol;
const N = w0.length;

// The file's ±1-ulp sensitivity (every gradient element moved by one ulp, closed loop) moves the
// iterates by at most 2.2e-15. Our dot products and matrix products sum in another order than
// scipy's OpenBLAS (measured: iterates and trial points ≤ 1.4e-15 apart, f ≤ 2.9e-15, H ≤ 1.8e-15),
// so the tolerance is about 4.5 times the sensitivity: 1e-14, absolute for x and H (O(1) values),
// relative to max(1, |f|) for f (f₀ ≈ 101). A gradient moves with x by up to max aᵢ + 0.1 ≈ 100
// times as much (one ulp of an x near 1 moves g₄ by 2.2e-14, as measured), so gradients are held
// to G_TOL = 100·TOL absolute.
const TOL = 1e-14;
const G_TOL = 100 * TOL;
expect(golden.sensitivity.max_abs).toBeLessThanOrEqual(TOL / 4);

/** The largest |aᵢ − bᵢ| / max(1, |bᵢ|). */
function relDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) return Infinity;
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]) / Math.max(1, Math.abs(y[i]));
    if (!(d <= m)) m = d;
  }
  return m;
}

/** f and g as the file's `problem` evaluates them (loss = q + 0.1·s, g left to right, no FMA). */
function diag(x: ArrayLike<number>): { loss: number; grad: Float64Array } {
  let q = 0;
  let s = 0;
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - c[i];
    q += 0.5 * a[i] * d * d;
    s += Math.sin(x[i]);
    grad[i] = a[i] * (x[i] - c[i]) + 0.1 * Math.cos(x[i]);
  }
  return { loss: q + 0.1 * s, grad };
}

/** Our calls (x, f, g) against scipy's fun_calls and jac_calls: here both lists hold the same points. */
function expectCalls(calls: Call[]): void {
  expect(golden.fun_calls.map((k) => k.x)).toEqual(golden.jac_calls.map((k) => k.x));
  expect(calls.length).toBe(golden.fun_calls.length);
  calls.forEach((call, j) => {
    expect(maxAbsDiff(call.x, golden.fun_calls[j].x)).toBeLessThanOrEqual(TOL);
    expect(relDiff([call.f!], [golden.fun_calls[j].f!])).toBeLessThanOrEqual(TOL);
    expect(maxAbsDiff(call.g!, golden.jac_calls[j].g!)).toBeLessThanOrEqual(G_TOL);
  });
}

/** H (n×n row-major, or rows) against scipy's hess_inv. */
function expectHessInv(h: ArrayLike<number>): void {
  expect(maxAbsDiff(h, golden.result.hess_inv.flat())).toBeLessThanOrEqual(TOL);
}

/** A param over the diag problem and a closure that records every point it is called at. */
function diagModel(x0: ArrayLike<number> = w0): { p: Param; closure: () => number; calls: Call[] } {
  const p = param(Float64Array.from(x0), 'w');
  const calls: Call[] = [];
  const closure = (): number => {
    const r = diag(p.data);
    p.grad.set(r.grad);
    calls.push({ x: Array.from(p.data), f: r.loss, g: Array.from(r.grad) });
    return r.loss;
  };
  return { p, closure, calls };
}

describe.each(backendRows)('BFGS against scipy 1.17 BFGS (golden bfgs.json, %s backend)', (_name, backend) => {
  useBackend(backend);

  it("minimize(method: 'bfgs'): every iterate, every call, the counts, the message and hess_inv", () => {
    const calls: Call[] = [];
    const seen: Array<{ nit: number; loss: number; gradNorm: number; x: number[] }> = [];
    const r = minimize((x): Evaluation => {
      const e = diag(x);
      calls.push({ x: Array.from(x), f: e.loss, g: Array.from(e.grad) });
      return e;
    }, Float64Array.from(w0), {
      method: 'bfgs',
      gtol: GTOL,
      onIteration: (info, x) => {
        seen.push({ ...info, x: Array.from(x) });
      },
    });

    expect(seen.length).toBe(golden.iterates.length);
    seen.forEach((row, k) => {
      const want = golden.iterates[k];
      expect(row.nit).toBe(want.k);
      expect(maxAbsDiff(row.x, want.x)).toBeLessThanOrEqual(TOL);
      expect(relDiff([row.loss], [want.f])).toBeLessThanOrEqual(TOL);
      expect(Math.abs(row.gradNorm - Math.max(...want.g.map(Math.abs)))).toBeLessThanOrEqual(G_TOL);
    });
    // g_k is the gradient the run computed at x_k: the call at that point.
    golden.iterates.forEach((want, k) => {
      const call = calls.find((cl) => maxAbsDiff(cl.x, seen[k].x) === 0);
      expect(call).toBeDefined();
      expect(maxAbsDiff(call!.g!, want.g)).toBeLessThanOrEqual(G_TOL);
    });
    expectCalls(calls);

    const want = golden.result;
    expect({ nit: r.nit, nfev: r.nfev, njev: r.njev, status: r.status, success: r.success, message: r.message }).toEqual({
      nit: want.nit, nfev: want.nfev, njev: want.njev, status: want.status, success: want.success, message: want.message,
    });
    expect(r.lineSearchFallbacks).toBe(golden.line_search_wolfe2_fallback_calls);
    expect(maxAbsDiff(r.x, want.x)).toBeLessThanOrEqual(TOL);
    expect(relDiff([r.fun], [want.fun])).toBeLessThanOrEqual(TOL);
    expect(maxAbsDiff(r.jac!, want.jac)).toBeLessThanOrEqual(G_TOL);
    expect(r.gradNorm).toBe(Math.max(...Array.from(r.jac!, Math.abs)));
    expect(r.history.length).toBe(r.nit + 1);
    expectHessInv(r.hessInv!);
  });

  it('the BFGS optimizer, one step of maxIter 20: the same calls, final point and H', () => {
    const { p, closure, calls } = diagModel();
    const opt = new BFGS([p], { gtol: GTOL, maxIter: 20 });
    const returned = opt.step(closure);
    expect(returned).toBe(golden.iterates[0].f);
    expectCalls(calls);
    expect(maxAbsDiff(p.data, golden.result.x)).toBeLessThanOrEqual(TOL);
    expect(opt.state.nIter).toBe(golden.result.nit);
    expect(opt.state.funcEvals).toBe(golden.result.nfev);
    expectHessInv(opt.state.hessInv!.flatMap((row) => Array.from(row)));
    // Converged: the next step evaluates once, finds ‖g‖∞ ≤ gtol and moves nothing.
    const before = bytesOf(p.data);
    expect(relDiff([opt.step(closure)], [golden.result.fun])).toBeLessThanOrEqual(TOL);
    expect(calls.length).toBe(golden.fun_calls.length + 1);
    expect(bytesOf(p.data)).toEqual(before);
    expect(opt.state.nIter).toBe(golden.result.nit);
  });

  it('the BFGS optimizer over two params (their concatenation is the vector): the same calls', () => {
    const u = param(Float64Array.from(w0.slice(0, 3)), 'u');
    const v = param(Float64Array.from(w0.slice(3)), 'v');
    const calls: Call[] = [];
    const opt = new BFGS([u, v], { gtol: GTOL, maxIter: 50 });
    opt.step(() => {
      const x = [...u.data, ...v.data];
      const e = diag(x);
      u.grad.set(e.grad.subarray(0, 3));
      v.grad.set(e.grad.subarray(3));
      calls.push({ x, f: e.loss, g: Array.from(e.grad) });
      return e.loss;
    });
    expectCalls(calls);
    expect(maxAbsDiff([...u.data, ...v.data], golden.result.x)).toBeLessThanOrEqual(TOL);
  });

  it.each([1, 3])('the BFGS optimizer, steps of maxIter %i: the same iterates; each step re-evaluates its start once', (maxIter) => {
    const { p, closure, calls } = diagModel();
    const opt = new BFGS([p], { gtol: GTOL, maxIter });
    const starts: number[] = [];
    const steps = Math.ceil(golden.result.nit / maxIter);
    for (let s = 0; s < steps; s++) {
      starts.push(calls.length);
      const k = s * maxIter;
      const returned = opt.step(closure);
      expect(relDiff([returned], [golden.iterates[k].f])).toBeLessThanOrEqual(TOL);
      const kAfter = Math.min(k + maxIter, golden.result.nit);
      expect(opt.state.nIter).toBe(kAfter);
      expect(maxAbsDiff(p.data, golden.iterates[kAfter].x)).toBeLessThanOrEqual(TOL);
    }
    // A later step's first call is at the point the previous step ended on, which the previous
    // step had evaluated last; without those, the calls are scipy's.
    for (const j of starts.slice(1)) expect(calls[j].x).toEqual(calls[j - 1].x);
    expectCalls(calls.filter((_, j) => !starts.slice(1).includes(j)));
    expectHessInv(opt.state.hessInv!.flatMap((row) => Array.from(row)));
  });
});

/** scipy.optimize.rosen / rosen_der, in double, left to right as scipy-1.17's README writes them. */
function rosen(x: ArrayLike<number>): { loss: number; grad: Float64Array } {
  const n = x.length;
  let loss = 0;
  const grad = new Float64Array(n);
  for (let i = 0; i < n - 1; i++) {
    const t = x[i + 1] - x[i] * x[i];
    const u = 1 - x[i];
    loss += 100 * (t * t) + u * u;
  }
  grad[0] = -400 * x[0] * (x[1] - x[0] * x[0]) - 2 * (1 - x[0]);
  for (let i = 1; i < n - 1; i++) {
    grad[i] = 200 * (x[i] - x[i - 1] * x[i - 1]) - 400 * (x[i + 1] - x[i] * x[i]) * x[i] - 2 * (1 - x[i]);
  }
  grad[n - 1] = 200 * (x[n - 1] - x[n - 2] * x[n - 2]);
  return { loss, grad };
}

describe.each(backendRows)('BFGS on chained Rosenbrock (%s backend)', (_name, backend) => {
  useBackend(backend);
  const start = (n: number) => Float64Array.from({ length: n }, (_, i) => (i % 2 === 0 ? -1.2 : 1));

  it('4-D from [−1.2, 1, −1.2, 1]: minimize and the optimizer reach (1, 1, 1, 1) on the same iterates', () => {
    const r = minimize(rosen, start(4), { method: 'bfgs', gtol: 1e-8 });
    expect(r.status).toBe(0);
    expect(r.gradNorm).toBeLessThanOrEqual(1e-8);
    r.x.forEach((v) => expect(Math.abs(v - 1)).toBeLessThan(1e-8));
    expect(r.lineSearchFallbacks).toBe(0);

    const p = param(start(4), 'x');
    const opt = new BFGS([p], { gtol: 1e-8, maxIter: 7 });
    const closure = () => {
      const e = rosen(p.data);
      p.grad.set(e.grad);
      return e.loss;
    };
    while (opt.state.nIter < r.nit) opt.step(closure);
    expect(opt.state.nIter).toBe(r.nit);
    expect(bytesOf(p.data)).toEqual(bytesOf(r.x));
  });

  it('float32 params: each point is rounded when written; the run still reaches (1, 1, 1, 1)', () => {
    const p = param(Float32Array.from(start(4)), 'x');
    const opt = new BFGS([p], { gtol: 1e-4, maxIter: 10 });
    const closure = () => {
      const e = rosen(p.data);
      p.grad.set(e.grad);
      return e.loss;
    };
    for (let s = 0; s < 6; s++) opt.step(closure);
    p.data.forEach((x) => expect(Math.abs(x - 1)).toBeLessThan(1e-5));
    expect(opt.state.hessInv!.every((row) => row instanceof Float64Array)).toBe(true);
  });

  it('8-D from [−1.2, 1]×4 ends, as scipy does, at the non-global stationary point (f ≈ 3.986) with "precision loss" after one zoom fallback', () => {
    const r = minimize(rosen, start(8), { method: 'bfgs', gtol: 1e-8 });
    expect(r.status).toBe(2);
    expect(r.success).toBe(false);
    expect(r.message).toBe('Desired error not necessarily achieved due to precision loss.');
    expect(r.lineSearchFallbacks).toBe(1);
    expect(Math.abs(r.fun - 3.986)).toBeLessThan(5e-4);
    expect(r.x[0]).toBeLessThan(-0.99);
    expect(r.njev).toBeLessThan(r.nfev); // the zoom search evaluates f without ∇f
  });
});

describe('the line searches’ pieces', () => {
  it('quadmin and cubicmin find the minimiser of the polynomial through their data, and null where numpy would raise', () => {
    // q(x) = 3(x − 2)² + 1: q(0) = 13, q′(0) = −12, q(5) = 28.
    expect(quadmin(0, 13, -12, 5, 28)).toBe(2);
    // c(x) = x³ − 3x + 1 has its local minimum at 1: c(0) = 1, c′(0) = −3, c(2) = 3, c(−1) = 3.
    expect(Math.abs(cubicmin(0, 1, -3, 2, 3, -1, 3)! - 1)).toBeLessThan(1e-15);
    expect(quadmin(1, 1, -1, 1, 2)).toBeNull(); // b = a: 0/0
    expect(cubicmin(0, 1, -3, 2, 3, 2, 3)).toBeNull(); // b = c: a zero denominator
    expect(quadmin(0, 1, -1, 1e300, 1)).toBeNull(); // db² overflows
    // An infinite operand raises nothing in numpy: B = ∞, x = a − C/(2B) = a.
    expect(quadmin(0, 1, -1, 1, Infinity)).toBe(0);
  });

  it('dcsrch converges on a quadratic in one trial when the first step is its minimiser, and reports a non-descent start as an error', () => {
    // φ(α) = (α − 1)², φ′(0) = −2.
    const phi = (s: number) => (s - 1) * (s - 1);
    const derphi = (s: number) => 2 * (s - 1);
    const params = { ftol: 1e-4, gtol: 0.9, xtol: 1e-14, stpmin: 1e-100, stpmax: 1e100 };
    expect(dcsrch(phi, derphi, 1, 1, -2, params)).toEqual({ stp: 1, phi1: 0, phi0: 1, task: 'CONVERGENCE' });
    const bad = dcsrch(phi, derphi, 1, 1, 2, params);
    expect(bad.stp).toBeNull();
    expect(bad.task).toBe('ERROR: INITIAL G .GE. ZERO');
  });

  // φ(α) = d⁴ + d²/2 − 0.3α with d = α − 1.7 (the same operations in Python and here). The
  // expected steps are scipy 1.17.1's, from
  //   DCSRCH(phi, derphi, ftol, gtol, 1e-14, 1e-100, 1e100)(alpha1, phi0=phi(0.), derphi0=derphi(0.))
  //   scalar_search_wolfe2(phi, derphi, phi(0.), phi(0.) + 1, derphi(0.), 1e-4, c2, 1e100)
  // recording every argument phi was called with. Scalar arithmetic in the same order: equal
  // bit for bit.
  function quartic() {
    const trials: number[] = [];
    const phi = (s: number) => {
      trials.push(s);
      const d = s - 1.7;
      return d * d * d * d + 0.5 * d * d - 0.3 * s;
    };
    const derphi = (s: number) => {
      const d = s - 1.7;
      return 4 * d * d * d + d - 0.3;
    };
    return { phi, derphi, trials, phi0: 9.797099999999999, derphi0: -21.651999999999997 };
  }

  it.each([
    [0.05, 1e-4, 1e-3, 1.94207743006893, -0.5498883542362566, 'CONVERGENCE',
      [0.05, 0.25, 1.05, 4.25, 1.8498699338979345, 1.9070476485434906, 3.0785238242717456, 1.9945575461045886, 1.94207743006893]],
    [10, 1e-4, 1e-3, 1.9478835929569582, -0.5498662952663151, 'CONVERGENCE',
      [10, 2.2472697043110683, 1.3116088742925955, 1.8859122095433962, 1.9478835929569582]],
    // ftol 0.3: lower values without sufficient decrease, so stage 1 steps on the modified function.
    [10, 0.3, 0.1, 1.229805592654553, -0.209522691525324, 'CONVERGENCE',
      [10, 2.2472697043110683, 0.7409740063744067, 0.9513055551302992, 1.229805592654553]],
    // ftol > gtol: no step meets both conditions; the interval collapses and dcsrch gives up.
    [3.3, 0.3, 1e-3, null, -0.43786793294039866, 'WARNING: ROUNDING ERRORS PREVENT PROGRESS',
      [3.3, 1.1471968621844224, 1.2343351841328791, 1.5182512800601564, 2.4091256400300782, 1.8835788656186452, 1.5182512800601564]],
  ] as const)('dcsrch from %d (ftol %d, gtol %d) takes scipy\'s trial steps', (alpha1, ftol, gtol, stp, phi1, task, steps) => {
    const q = quartic();
    expect(q.phi(0)).toBe(q.phi0);
    expect(q.derphi(0)).toBe(q.derphi0);
    q.trials.length = 0;
    const r = dcsrch(q.phi, q.derphi, alpha1, q.phi0, q.derphi0, { ftol, gtol, xtol: 1e-14, stpmin: 1e-100, stpmax: 1e100 });
    expect(r).toEqual({ stp, phi1, phi0: q.phi0, task });
    expect(q.trials).toEqual(steps);
  });

  it.each([
    [0.1, 1.4927027526325514, -0.4244781458371272, -0.5429292799781742, [0.09329392203953446, 0.18658784407906892, 0.37317568815813784, 0.7463513763162757, 1.4927027526325514]],
    [0.01, 1.9831758891805393, -0.5484282656094515, 0.07400578372733296, [
      0.09329392203953446, 0.18658784407906892, 0.37317568815813784, 0.7463513763162757, 1.4927027526325514, 2.9854055052651027,
      1.6479796416286954, 2.316692573446899, 1.9831758891805393,
    ]],
  ])('scalarSearchWolfe2 with c2 = %d takes scipy\'s trial steps (doubling, then zoom by quadratic and cubic steps)', (c2, alpha, phi, derphi, steps) => {
    const q = quartic();
    const r = scalarSearchWolfe2(q.phi, q.derphi, q.phi0, q.phi0 + 1, q.derphi0, 1e-4, c2, 1e100);
    expect(r).toEqual({ alpha, phi, phi0: q.phi0, derphi });
    expect(q.trials).toEqual(steps);
  });
});

describe('BFGS options and state', () => {
  it('refuses bad options with errors naming them, before anything runs', () => {
    const make = (o: unknown) => new BFGS([param(new Float64Array(2), 'x')], o as never);
    expect(() => make({ gtol: -1 })).toThrow(new OptimRangeError('BFGS: gtol must be a finite number >= 0, got -1'));
    expect(() => make({ gtol: '1e-5' })).toThrow(OptimTypeError);
    expect(() => make({ xrtol: Number.NaN })).toThrow(/BFGS: xrtol must be a finite number >= 0, got NaN/);
    expect(() => make({ c1: 0.9, c2: 0.5 })).toThrow(/BFGS: c1 and BFGS: c2 must satisfy 0 < c1 < c2 < 1, got c1 = 0.9, c2 = 0.5/);
    expect(() => make({ c2: 1 })).toThrow(OptimRangeError);
    expect(() => make({ c1: 0 })).toThrow(OptimRangeError);
    expect(() => make({ norm: 0 })).toThrow(/BFGS: norm must be Infinity, -Infinity or a finite number > 0, got 0/);
    expect(() => make({ norm: 'inf' })).toThrow(new OptimTypeError('BFGS: norm must be a number, got string'));
    expect(() => make({ maxIter: 0 })).toThrow(/BFGS: maxIter must be an integer >= 1, got 0/);
    expect(() => make({ maxIter: 2.5 })).toThrow(OptimRangeError);
    expect(() => make({ lr: 1 })).toThrow(/BFGS: unknown option "lr"/);
    expect(() => make({ nonFinite: 'warn' })).toThrow(OptimRangeError);
    expect(make({ norm: -Infinity, c1: 0.1, c2: 0.2, xrtol: 1e-3 }).paramGroups[0].norm).toBe(-Infinity);

    const { p, closure, calls } = diagModel();
    const opt = new BFGS([p], { gtol: GTOL });
    opt.paramGroups[0].c2 = 2;
    const before = bytesOf(p.data);
    expect(() => opt.step(closure)).toThrow(/BFGS: c1 and BFGS: c2 must satisfy/);
    expect(calls.length).toBe(0);
    expect(bytesOf(p.data)).toEqual(before);
    opt.paramGroups[0].c2 = 0.9;
    expect(() => opt.step(() => 'loss' as unknown as number)).toThrow(/the closure must return the loss as a number, got string/);
    expect(bytesOf(p.data)).toEqual(before);
    expect(opt.state).toEqual({ funcEvals: 0, nIter: 0 });
  });

  it("minimize refuses bad BFGS options, and 'bfgs' defaults to maxIter 200·n", () => {
    const x0 = Float64Array.from(w0);
    expect(() => minimize(diag, x0, { method: 'bfgs', c1: 0.5, c2: 0.5 })).toThrow(/minimize: c1 and minimize: c2 must satisfy/);
    expect(() => minimize(diag, x0, { method: 'bfgs', norm: Number.NaN })).toThrow(OptimRangeError);
    expect(() => minimize(diag, x0, { method: 'bfgs', xrtol: -1 })).toThrow(/minimize: xrtol must be a finite number >= 0/);
    expect(() => minimize(diag, x0, { method: 'bfgs', maxIter: -1 })).toThrow(/maxIter must be an integer >= 0/);
    expect(Array.from(x0)).toEqual(w0);
    const capped = minimize(diag, x0, { method: 'bfgs', gtol: GTOL, maxIter: 3 });
    expect(capped.status).toBe(1);
    expect(capped.message).toBe('Maximum number of iterations has been exceeded.');
    expect(maxAbsDiff(capped.x, golden.iterates[3].x)).toBeLessThanOrEqual(TOL);
    const stopped = minimize(diag, x0, { method: 'bfgs', gtol: GTOL, onIteration: (info) => info.nit < 2 });
    expect([stopped.status, stopped.nit, stopped.success, stopped.message]).toEqual([99, 2, false, 'Stopped by onIteration.']);
    expect(golden.options_in_effect.maxiter).toBe(200 * N);
    // scipy tests k ≥ maxiter before success: a run that converges on its last allowed iteration
    // still reports status 1 (scipy 1.17.1: maxiter 14 → status 1, nit 14; maxiter 15 → status 0).
    const at14 = minimize(diag, x0, { method: 'bfgs', gtol: GTOL, maxIter: 14 });
    expect([at14.status, at14.nit]).toEqual([1, 14]);
    expect(at14.gradNorm).toBeLessThanOrEqual(GTOL);
    expect(minimize(diag, x0, { method: 'bfgs', gtol: GTOL, maxIter: 15 }).status).toBe(0);
  });

  function bits(v: unknown): unknown {
    if (ArrayBuffer.isView(v)) return [v.constructor.name, bytesOf(v as Float64Array)];
    if (Array.isArray(v)) return v.map(bits);
    if (typeof v === 'number') return Object.is(v, -0) ? '-0' : Number.isNaN(v) ? 'NaN' : v;
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bits(x)]));
    return v;
  }

  it('round-trips H, f_{k−1}, the counters and the hyperparameters; the resumed run equals the uninterrupted one bit for bit', () => {
    const run = diagModel();
    const opt = new BFGS([run.p], { gtol: GTOL, maxIter: 2, c1: 1e-3 });
    for (let s = 0; s < 3; s++) opt.step(run.closure);
    const sd: BFGSStateDict = opt.stateDict();
    expect(Object.keys(sd.state).sort()).toEqual(['funcEvals', 'hessInv', 'nIter', 'oldOldFval']);
    expect(sd.state.hessInv!.length).toBe(N);
    expect(sd.paramGroups).toEqual([{ maxIter: 2, gtol: GTOL, norm: Infinity, xrtol: 0, c1: 1e-3, c2: 0.9, params: ['w'] }]);

    const resumed = diagModel(run.p.data);
    const fresh = new BFGS([resumed.p]);
    expect(fresh.loadStateDict(sd)).toEqual({ matched: ['w'], missing: [], unexpected: [] });
    expect(bits(fresh.stateDict())).toEqual(bits(sd));
    sd.state.hessInv![0][0] = 123; // the loaded state is a copy
    expect(fresh.state.hessInv![0][0]).not.toBe(123);
    for (let s = 0; s < 6; s++) expect(Object.is(fresh.step(resumed.closure), opt.step(run.closure))).toBe(true);
    expect(bits(resumed.p.data)).toEqual(bits(run.p.data));
    expect(bits(fresh.stateDict())).toEqual(bits(opt.stateDict()));
    expect(opt.state.nIter).toBe(golden.result.nit);
  });

  const refusals: Array<[string, (sd: Record<string, any>) => void, RegExp]> = [
    ['H with a missing row', (sd) => sd.state.hessInv.pop(), /state\.hessInv must have 7 rows, got 6/],
    ['a row of the wrong length', (sd) => (sd.state.hessInv[2] = new Float64Array(6)), /state\.hessInv\[2\] must be a Float64Array of length 7/],
    ['H without oldOldFval', (sd) => delete sd.state.oldOldFval, /hessInv and oldOldFval must be both present or both absent/],
    ['a bad hyperparameter', (sd) => (sd.paramGroups[0].c1 = 0.95), /paramGroups\[0\]\.c1 and .*c2 must satisfy/],
    ['an unknown state key', (sd) => (sd.state.d = new Float64Array(7)), /state\.d: unknown state/],
  ];

  it.each(refusals)('refuses %s with OptimStateError, changing nothing', (_n, corrupt, message) => {
    const src = diagModel();
    const trained = new BFGS([src.p], { gtol: GTOL, maxIter: 2 });
    trained.step(src.closure);
    const sd = trained.stateDict() as unknown as Record<string, any>;
    corrupt(sd);
    const { p, closure } = diagModel();
    const opt = new BFGS([p], { maxIter: 1 });
    opt.step(closure);
    const before = bits({ data: p.data, dict: opt.stateDict() });
    expect(() => opt.loadStateDict(sd as never)).toThrow(OptimStateError);
    expect(() => opt.loadStateDict(sd as never)).toThrow(message);
    expect(bits({ data: p.data, dict: opt.stateDict() })).toEqual(before);
  });

  it('a non-finite evaluation mid-step restores params and state (nonFinite error and skip)', () => {
    for (const policy of ['error', 'skip'] as const) {
      const { p, closure } = diagModel();
      const opt = new BFGS([p], { gtol: GTOL, maxIter: 2, nonFinite: policy });
      opt.step(closure);
      const before = bits({ data: p.data, state: opt.state });
      const startLoss = diag(p.data).loss;
      let calls = 0;
      const poisoned = () => {
        const f = closure();
        return ++calls === 3 ? Number.NaN : f;
      };
      if (policy === 'error') expect(() => opt.step(poisoned)).toThrow(NonFiniteError);
      else expect(opt.step(poisoned)).toBe(startLoss);
      expect(calls).toBe(3);
      expect(bits({ data: p.data, state: opt.state })).toEqual(before);
      expect(opt.skippedSteps).toBe(policy === 'skip' ? 1 : 0);
    }
  });
});
