/**
 * scipy's pure-Python strong Wolfe search (`scipy.optimize._linesearch.scalar_search_wolfe2`,
 * `_zoom`, `_cubicmin`, `_quadmin`): Nocedal and Wright's Algorithm 3.5 (bracketing by doubling
 * the step) and 3.6 (zoom by cubic, then quadratic interpolation, then bisection). scipy's BFGS
 * falls back to it when MINPACK's dcsrch finds no step. Every operation is in scipy's order.
 */
import { pyMin } from './dcsrch.js';
import type { ScalarFn } from './dcsrch.js';

/** What a search returns; `alpha` null when it failed. */
export interface Wolfe2Result {
  alpha: number | null;
  /** φ at `alpha` (φ(0) when the search failed at the start). */
  phi: number | null;
  /** φ(0), or the previous value passed in when the step became 0 or passed amax (scipy's quirk). */
  phi0: number;
  /** φ′ at `alpha`; null when the search stopped without computing it (its own maxIter). */
  derphi: number | null;
}

/**
 * The minimiser of the cubic through (a, fa), (b, fb), (c, fc) with slope fpa at a, or null where
 * numpy, under `errstate(divide, over, invalid = 'raise')`, would raise (a division by zero, an
 * overflow or an invalid operation) or the result is not finite.
 */
export function cubicmin(a: number, fa: number, fpa: number, b: number, fb: number, c: number, fc: number): number | null {
  try {
    const C = fpa;
    const db = sub(b, a);
    const dc = sub(c, a);
    const denom = mul(square(mul(db, dc)), sub(db, dc));
    const d00 = square(dc);
    const d01 = -square(db);
    const d10 = -cube(dc);
    const d11 = cube(db);
    const v0 = sub(sub(fb, fa), mul(C, db));
    const v1 = sub(sub(fc, fa), mul(C, dc));
    // np.dot (BLAS): no floating-point checks.
    let A = d00 * v0 + d01 * v1;
    let B = d10 * v0 + d11 * v1;
    A = div(A, denom);
    B = div(B, denom);
    const radical = sub(mul(B, B), mul(mul(3, A), C));
    const xmin = add(a, div(add(-B, sqrt(radical)), mul(3, A)));
    return Number.isFinite(xmin) ? xmin : null;
  } catch (e) {
    if (e === RAISED) return null;
    throw e;
  }
}

/** The minimiser of the quadratic through (a, fa), (b, fb) with slope fpa at a; null as `cubicmin`. */
export function quadmin(a: number, fa: number, fpa: number, b: number, fb: number): number | null {
  try {
    const D = fa;
    const C = fpa;
    const db = sub(b, mul(a, 1.0));
    const B = div(sub(sub(fb, D), mul(C, db)), mul(db, db));
    const xmin = sub(a, div(C, mul(2.0, B)));
    return Number.isFinite(xmin) ? xmin : null;
  } catch (e) {
    if (e === RAISED) return null;
    throw e;
  }
}

/**
 * scipy's `_zoom`: shrinks [aLo, aHi] (aLo the end with the lower value that satisfies
 * sufficient decrease) until a step meets the strong Wolfe conditions, at most 11 trials. Each
 * trial is the cubic minimiser (after the first), else the quadratic one, else the midpoint,
 * whichever lies far enough inside the interval.
 */
function zoom(
  aLo: number, aHi: number, phiLo: number, phiHi: number, derphiLo: number,
  phi: ScalarFn, derphi: ScalarFn, phi0: number, derphi0: number, c1: number, c2: number,
): { alpha: number | null; phi: number | null; derphi: number | null } {
  const maxIter = 10;
  const delta1 = 0.2;
  const delta2 = 0.1;
  let phiRec = phi0;
  let aRec = 0;
  for (let i = 0; ; ) {
    const dalpha = aHi - aLo;
    const [a, b] = dalpha < 0 ? [aHi, aLo] : [aLo, aHi];
    let aj: number | null = null;
    let cchk = 0;
    if (i > 0) {
      cchk = delta1 * dalpha;
      aj = cubicmin(aLo, phiLo, derphiLo, aHi, phiHi, aRec, phiRec);
    }
    if (i === 0 || aj === null || aj > b - cchk || aj < a + cchk) {
      const qchk = delta2 * dalpha;
      aj = quadmin(aLo, phiLo, derphiLo, aHi, phiHi);
      if (aj === null || aj > b - qchk || aj < a + qchk) aj = aLo + 0.5 * dalpha;
    }
    const phiAj = phi(aj);
    if (phiAj > phi0 + c1 * aj * derphi0 || phiAj >= phiLo) {
      phiRec = phiHi;
      aRec = aHi;
      aHi = aj;
      phiHi = phiAj;
    } else {
      const derphiAj = derphi(aj);
      if (Math.abs(derphiAj) <= -c2 * derphi0) return { alpha: aj, phi: phiAj, derphi: derphiAj };
      if (derphiAj * (aHi - aLo) >= 0) {
        phiRec = phiHi;
        aRec = aHi;
        aHi = aLo;
        phiHi = phiLo;
      } else {
        phiRec = phiLo;
        aRec = aLo;
      }
      aLo = aj;
      phiLo = phiAj;
      derphiLo = derphiAj;
    }
    i++;
    if (i > maxIter) return { alpha: null, phi: null, derphi: null };
  }
}

/**
 * scipy's `scalar_search_wolfe2` (no `extra_condition`): the first trial as in
 * `scalar_search_wolfe1` (capped at amax), then the step doubles until a bracket is found and
 * zoomed, at most `maxIter` trials. When they run out, the last step is returned with `derphi`
 * null (scipy then evaluates the gradient there itself).
 */
export function scalarSearchWolfe2(
  phi: ScalarFn, derphi: ScalarFn, phi0: number, oldPhi0: number | null, derphi0: number,
  c1: number, c2: number, amax: number | null, maxIter = 10,
): Wolfe2Result {
  let alpha0 = 0;
  let alpha1 = oldPhi0 !== null && derphi0 !== 0 ? pyMin(1.0, (1.01 * 2 * (phi0 - oldPhi0)) / derphi0) : 1.0;
  if (alpha1 < 0) alpha1 = 1.0;
  if (amax !== null) alpha1 = pyMin(alpha1, amax);
  let phiA1 = phi(alpha1);
  let phiA0 = phi0;
  let derphiA0 = derphi0;
  for (let i = 0; i < maxIter; i++) {
    if (alpha1 === 0 || (amax !== null && alpha0 > amax)) {
      // The step slipped to 0 or beyond amax: no step (scipy also hands back the old φ0 here).
      return { alpha: null, phi: phi0, phi0: oldPhi0 ?? phi0, derphi: null };
    }
    if (phiA1 > phi0 + c1 * alpha1 * derphi0 || (phiA1 >= phiA0 && i > 0)) {
      const z = zoom(alpha0, alpha1, phiA0, phiA1, derphiA0, phi, derphi, phi0, derphi0, c1, c2);
      return { alpha: z.alpha, phi: z.phi, phi0, derphi: z.derphi };
    }
    const derphiA1 = derphi(alpha1);
    if (Math.abs(derphiA1) <= -c2 * derphi0) return { alpha: alpha1, phi: phiA1, phi0, derphi: derphiA1 };
    if (derphiA1 >= 0) {
      const z = zoom(alpha1, alpha0, phiA1, phiA0, derphiA1, phi, derphi, phi0, derphi0, c1, c2);
      return { alpha: z.alpha, phi: z.phi, phi0, derphi: z.derphi };
    }
    let alpha2 = 2 * alpha1;
    if (amax !== null) alpha2 = pyMin(alpha2, amax);
    alpha0 = alpha1;
    alpha1 = alpha2;
    phiA0 = phiA1;
    phiA1 = phi(alpha1);
    derphiA0 = derphiA1;
  }
  return { alpha: alpha1, phi: phiA1, phi0, derphi: null };
}

// numpy float64 arithmetic under errstate(divide='raise', over='raise', invalid='raise'): an
// operation raises when it makes an infinity from finite operands (division by zero, overflow)
// or a NaN from operands that are not NaN (0/0, ∞ − ∞, 0·∞, √negative).

const RAISED = Symbol('floating point error');

function checked(r: number, x: number, y: number): number {
  if (Number.isNaN(r) ? !Number.isNaN(x) && !Number.isNaN(y) : !Number.isFinite(r) && Number.isFinite(x) && Number.isFinite(y)) {
    throw RAISED;
  }
  return r;
}

function add(x: number, y: number): number {
  return checked(x + y, x, y);
}

function sub(x: number, y: number): number {
  return checked(x - y, x, y);
}

function mul(x: number, y: number): number {
  return checked(x * y, x, y);
}

function div(x: number, y: number): number {
  return checked(x / y, x, y);
}

function sqrt(x: number): number {
  return checked(Math.sqrt(x), x, 0);
}

/** x**2 as C's pow computes it: the correctly rounded square. */
function square(x: number): number {
  return checked(x * x, x, 0);
}

/**
 * x**3 as C's pow computes it (glibc: correctly rounded but in rare near-halfway cases), where
 * x·x·x would round twice: x² = p + e exactly (Dekker), then x³ = p·x + e·x summed from the
 * small end.
 */
function cube(x: number): number {
  const [p, e] = twoProduct(x, x);
  const [q, f] = twoProduct(p, x);
  const r = q + (f + e * x);
  return checked(Number.isFinite(r) || !Number.isFinite(q) ? r : x * x * x, x, 0);
}

/** a·b = p + e exactly (Dekker's product with Veltkamp splitting; no FMA in JavaScript). */
function twoProduct(a: number, b: number): [number, number] {
  const p = a * b;
  const [ah, al] = split(a);
  const [bh, bl] = split(b);
  const e = ah * bh - p + ah * bl + al * bh + al * bl;
  return [p, Number.isFinite(e) ? e : 0];
}

function split(a: number): [number, number] {
  const c = 134217729 * a; // 2^27 + 1
  const h = c - (c - a);
  return [h, a - h];
}
