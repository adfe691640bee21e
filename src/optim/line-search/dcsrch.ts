/**
 * MINPACK-2's `dcsrch` and `dcstep` (Moré and Thuente, "Line search algorithms with guaranteed
 * sufficient decrease", ACM TOMS 20, 1994), as scipy ≥ 1.11 runs them (`scipy.optimize._dcsrch`,
 * its Python port of the Fortran), and scipy's `scalar_search_wolfe1` around them.
 *
 * The search looks for a step α > 0 along which φ(α) = f(x + αp) meets the strong Wolfe
 * conditions
 *
 *   φ(α) ≤ φ(0) + ftol·α·φ'(0)   (sufficient decrease)      |φ'(α)| ≤ gtol·|φ'(0)|   (curvature)
 *
 * keeping an interval [stx, sty] known to hold such a step and choosing each trial by the
 * safeguarded cubic/quadratic/secant rules of `dcstep`. Comparisons, `min`/`max` and the order of
 * every operation are scipy's, so the trial steps are the same doubles.
 */

/** φ or φ′ at a step α. */
export type ScalarFn = (alpha: number) => number;

/** Python's `min(a, b)`: `b` only when `b < a` (so a NaN second argument loses, unlike Math.min). */
export function pyMin(a: number, b: number): number {
  return b < a ? b : a;
}

/** Python's `max(a, b, ...)`: a later argument wins only when it is greater (NaN never does). */
export function pyMax(a: number, ...rest: number[]): number {
  let m = a;
  for (const v of rest) if (v > m) m = v;
  return m;
}

/** numpy's `clip(v, lo, hi)`: NaN stays NaN. */
function clip(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}

/** The tolerances and bounds of one search. */
export interface DcsrchParams {
  /** Sufficient-decrease constant (c1). */
  ftol: number;
  /** Curvature constant (c2). */
  gtol: number;
  /** Relative width of the interval below which the search stops with a warning. */
  xtol: number;
  stpmin: number;
  stpmax: number;
}

/** What a search returns: `stp` null when it ended with a warning or an error. */
export interface DcsrchResult {
  stp: number | null;
  /** φ at the last step evaluated (φ(0) when none was). */
  phi1: number;
  phi0: number;
  /** MINPACK's task string: `CONVERGENCE`, `WARNING: ...`, `ERROR: ...`. */
  task: string;
}

/** dcsrch's saved state between calls (its isave/dsave). */
class Dcsrch {
  private brackt = false;
  private stage = 1;
  private finit = 0;
  private ginit = 0;
  private gtest = 0;
  private width = 0;
  private width1 = 0;
  private stx = 0;
  private fx = 0;
  private gx = 0;
  private sty = 0;
  private fy = 0;
  private gy = 0;
  private stmin = 0;
  private stmax = 0;

  constructor(private readonly p: DcsrchParams) {}

  /**
   * One call of dcsrch: `f`, `g` are φ and φ′ at `stp` (at 0 on the START call). Returns the next
   * step and the task: `FG` asks for φ and φ′ at that step.
   */
  iterate(stp: number, f: number, g: number, task: string): [number, string] {
    const { ftol, gtol, xtol, stpmin, stpmax } = this.p;
    const p5 = 0.5;
    const p66 = 0.66;
    const xtrapl = 1.1;
    const xtrapu = 4.0;

    if (task.startsWith('START')) {
      // The checks run in the Fortran's order; the last one that fails names the task.
      if (stp < stpmin) task = 'ERROR: STP .LT. STPMIN';
      if (stp > stpmax) task = 'ERROR: STP .GT. STPMAX';
      if (g >= 0) task = 'ERROR: INITIAL G .GE. ZERO';
      if (ftol < 0) task = 'ERROR: FTOL .LT. ZERO';
      if (gtol < 0) task = 'ERROR: GTOL .LT. ZERO';
      if (xtol < 0) task = 'ERROR: XTOL .LT. ZERO';
      if (stpmin < 0) task = 'ERROR: STPMIN .LT. ZERO';
      if (stpmax < stpmin) task = 'ERROR: STPMAX .LT. STPMIN';
      if (task.startsWith('ERROR')) return [stp, task];

      this.brackt = false;
      this.stage = 1;
      this.finit = f;
      this.ginit = g;
      this.gtest = ftol * this.ginit;
      this.width = stpmax - stpmin;
      this.width1 = this.width / p5;
      this.stx = 0;
      this.fx = this.finit;
      this.gx = this.ginit;
      this.sty = 0;
      this.fy = this.finit;
      this.gy = this.ginit;
      this.stmin = 0;
      this.stmax = stp + xtrapu * stp;
      return [stp, 'FG'];
    }

    // ψ(stp) = f(stp) − f(0) − ftol·stp·f′(0): once ψ ≤ 0 and f′ ≥ 0, stage 2 works on f itself.
    const ftest = this.finit + stp * this.gtest;
    if (this.stage === 1 && f <= ftest && g >= 0) this.stage = 2;

    if (this.brackt && (stp <= this.stmin || stp >= this.stmax)) task = 'WARNING: ROUNDING ERRORS PREVENT PROGRESS';
    if (this.brackt && this.stmax - this.stmin <= xtol * this.stmax) task = 'WARNING: XTOL TEST SATISFIED';
    if (stp === stpmax && f <= ftest && g <= this.gtest) task = 'WARNING: STP = STPMAX';
    if (stp === stpmin && (f > ftest || g >= this.gtest)) task = 'WARNING: STP = STPMIN';
    if (f <= ftest && Math.abs(g) <= gtol * -this.ginit) task = 'CONVERGENCE';
    if (task.startsWith('WARN') || task.startsWith('CONV')) return [stp, task];

    if (this.stage === 1 && f <= this.fx && f > ftest) {
      // A lower value without sufficient decrease: step on the modified function ψ.
      const gtest = this.gtest;
      const r = dcstep(
        this.stx, this.fx - this.stx * gtest, this.gx - gtest,
        this.sty, this.fy - this.sty * gtest, this.gy - gtest,
        stp, f - stp * gtest, g - gtest,
        this.brackt, this.stmin, this.stmax,
      );
      this.stx = r.stx;
      this.sty = r.sty;
      stp = r.stp;
      this.brackt = r.brackt;
      this.fx = r.fx + this.stx * gtest;
      this.fy = r.fy + this.sty * gtest;
      this.gx = r.dx + gtest;
      this.gy = r.dy + gtest;
    } else {
      const r = dcstep(this.stx, this.fx, this.gx, this.sty, this.fy, this.gy, stp, f, g, this.brackt, this.stmin, this.stmax);
      this.stx = r.stx;
      this.fx = r.fx;
      this.gx = r.dx;
      this.sty = r.sty;
      this.fy = r.fy;
      this.gy = r.dy;
      stp = r.stp;
      this.brackt = r.brackt;
    }

    // Bisect when the interval does not shrink fast enough.
    if (this.brackt) {
      if (Math.abs(this.sty - this.stx) >= p66 * this.width1) stp = this.stx + p5 * (this.sty - this.stx);
      this.width1 = this.width;
      this.width = Math.abs(this.sty - this.stx);
    }
    if (this.brackt) {
      this.stmin = pyMin(this.stx, this.sty);
      this.stmax = pyMax(this.stx, this.sty);
    } else {
      this.stmin = stp + xtrapl * (stp - this.stx);
      this.stmax = stp + xtrapu * (stp - this.stx);
    }
    stp = clip(stp, stpmin, stpmax);
    // No further progress possible: fall back to the best step so far.
    if ((this.brackt && (stp <= this.stmin || stp >= this.stmax)) || (this.brackt && this.stmax - this.stmin <= xtol * this.stmax)) {
      stp = this.stx;
    }
    return [stp, 'FG'];
  }
}

interface StepUpdate {
  stx: number;
  fx: number;
  dx: number;
  sty: number;
  fy: number;
  dy: number;
  stp: number;
  brackt: boolean;
}

/**
 * MINPACK-2's dcstep: a safeguarded trial step from the best point (stx, fx, dx), the other end
 * of the interval (sty, fy, dy) and the current trial (stp, fp, dp), and the updated interval.
 * Four cases: a higher value (cubic or cubic/quadratic mean; bracketed), derivatives of opposite
 * sign (cubic or secant; bracketed), a smaller derivative of the same sign (cubic or secant,
 * limited), a larger one (cubic on the far end, or stpmin/stpmax).
 */
export function dcstep(
  stx: number, fx: number, dx: number,
  sty: number, fy: number, dy: number,
  stp: number, fp: number, dp: number,
  brackt: boolean, stpmin: number, stpmax: number,
): StepUpdate {
  const sgnd = Math.sign(dp) * Math.sign(dx);
  let stpf: number;
  if (fp > fx) {
    const theta = (3.0 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = pyMax(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    const ts = theta / s;
    let gamma = s * Math.sqrt(ts * ts - (dx / s) * (dp / s));
    if (stp < stx) gamma = -gamma;
    const p = gamma - dx + theta;
    const q = gamma - dx + gamma + dp;
    const r = p / q;
    const stpc = stx + r * (stp - stx);
    const stpq = stx + (dx / ((fx - fp) / (stp - stx) + dx) / 2.0) * (stp - stx);
    stpf = Math.abs(stpc - stx) <= Math.abs(stpq - stx) ? stpc : stpc + (stpq - stpc) / 2.0;
    brackt = true;
  } else if (sgnd < 0.0) {
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = pyMax(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    const ts = theta / s;
    let gamma = s * Math.sqrt(ts * ts - (dx / s) * (dp / s));
    if (stp > stx) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma - dp + gamma + dx;
    const r = p / q;
    const stpc = stp + r * (stx - stp);
    const stpq = stp + (dp / (dp - dx)) * (stx - stp);
    stpf = Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq;
    brackt = true;
  } else if (Math.abs(dp) < Math.abs(dx)) {
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = pyMax(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    const ts = theta / s;
    // γ = 0 only when the cubic does not tend to infinity in the direction of the step.
    let gamma = s * Math.sqrt(pyMax(0, ts * ts - (dx / s) * (dp / s)));
    if (stp > stx) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma + (dx - dp) + gamma;
    const r = p / q;
    let stpc: number;
    if (r < 0 && gamma !== 0) stpc = stp + r * (stx - stp);
    else if (stp > stx) stpc = stpmax;
    else stpc = stpmin;
    const stpq = stp + (dp / (dp - dx)) * (stx - stp);
    if (brackt) {
      stpf = Math.abs(stpc - stp) < Math.abs(stpq - stp) ? stpc : stpq;
      stpf = stp > stx ? pyMin(stp + 0.66 * (sty - stp), stpf) : pyMax(stp + 0.66 * (sty - stp), stpf);
    } else {
      stpf = Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq;
      stpf = clip(stpf, stpmin, stpmax);
    }
  } else if (brackt) {
    const theta = (3.0 * (fp - fy)) / (sty - stp) + dy + dp;
    const s = pyMax(Math.abs(theta), Math.abs(dy), Math.abs(dp));
    const ts = theta / s;
    let gamma = s * Math.sqrt(ts * ts - (dy / s) * (dp / s));
    if (stp > sty) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma - dp + gamma + dy;
    const r = p / q;
    stpf = stp + r * (sty - stp);
  } else {
    stpf = stp > stx ? stpmax : stpmin;
  }

  if (fp > fx) {
    sty = stp;
    fy = fp;
    dy = dp;
  } else {
    if (sgnd < 0) {
      sty = stx;
      fy = fx;
      dy = dx;
    }
    stx = stp;
    fx = fp;
    dx = dp;
  }
  return { stx, fx, dx, sty, fy, dy, stp: stpf, brackt };
}

/**
 * scipy's `DCSRCH.__call__`: runs dcsrch from `alpha1`, evaluating φ then φ′ at each step it asks
 * for, at most `maxIter` calls (the START call included). The step is null when the search
 * ended with a warning, an error, a non-finite step or without converging.
 */
export function dcsrch(
  phi: ScalarFn, derphi: ScalarFn, alpha1: number, phi0: number, derphi0: number, params: DcsrchParams, maxIter = 100,
): DcsrchResult {
  const search = new Dcsrch(params);
  let phi1 = phi0;
  let derphi1 = derphi0;
  let task = 'START';
  let stp: number | null = alpha1;
  let i = 0;
  for (; i < maxIter; i++) {
    let next: number;
    [next, task] = search.iterate(alpha1, phi1, derphi1, task);
    stp = next;
    if (!Number.isFinite(next)) {
      task = 'WARN';
      stp = null;
      break;
    }
    if (!task.startsWith('FG')) break;
    alpha1 = next;
    phi1 = phi(next);
    derphi1 = derphi(next);
  }
  if (i === maxIter) {
    stp = null;
    task = 'WARNING: dcsrch did not converge within max iterations';
  }
  if (task.startsWith('ERROR') || task.startsWith('WARN')) stp = null;
  return { stp, phi1, phi0, task };
}

/** The constants of `scalar_search_wolfe1`. */
export interface Wolfe1Params {
  c1: number;
  c2: number;
  amax: number;
  amin: number;
  xtol: number;
}

/**
 * scipy's `scalar_search_wolfe1`: the first trial step is min(1, 1.01·2(φ(0) − φ_prev)/φ′(0))
 * (1 when that is negative, when φ′(0) = 0 or when there is no previous value), then dcsrch with
 * ftol = c1, gtol = c2 and at most 100 iterations.
 */
export function scalarSearchWolfe1(
  phi: ScalarFn, derphi: ScalarFn, phi0: number, oldPhi0: number | null, derphi0: number, p: Wolfe1Params,
): DcsrchResult {
  let alpha1 = 1.0;
  if (oldPhi0 !== null && derphi0 !== 0) {
    alpha1 = pyMin(1.0, (1.01 * 2 * (phi0 - oldPhi0)) / derphi0);
    if (alpha1 < 0) alpha1 = 1.0;
  }
  return dcsrch(phi, derphi, alpha1, phi0, derphi0, { ftol: p.c1, gtol: p.c2, xtol: p.xtol, stpmin: p.amin, stpmax: p.amax }, 100);
}
