/**
 * `x ** n` for whole n, as torch computes bias corrections such as `1 - beta1 ** step`: in
 * Python, whose `**` is C's `pow`. V8's `Math.pow` is less accurate (0.9 ** 4 gives
 * 0.6561000000000001 against C's 0.6561), so a step size built on it would differ from torch in
 * the last bit. Here the power is taken by squaring in double-double arithmetic (~106 bits) and
 * rounded once, which gives the correctly rounded result except within ~n·2^-102 (relative) of a
 * rounding midpoint. glibc's `pow` is within 0.52 ulp: it agrees for every step up to 2000 with
 * the usual betas, and in rare near-midpoint cases (0.99 ** 503) this one is the closer value.
 * Other exponents, and results below 2^-899 (where 1 − x^n is exactly 1) or above 2^899, use
 * `Math.pow`.
 */
export function powi(x: number, n: number): number {
  const m = Math.pow(x, n);
  if (!isSmallWhole(n) || !inRange(m, 2)) return m;
  powDD(x, n);
  freshExact = true;
  return ddHi;
}

/**
 * `powi(x, n)` for the sequence n, n+1, n+2, ... a step counter walks: one double-double
 * multiplication per call instead of a full power. The running product is used only when its
 * error bound proves it rounds to the same double as `powi` would; otherwise `powi` is computed
 * afresh. So the result is always exactly `powi(x, n)`, whatever the history (a run resumed from a
 * checkpoint gets the same bits as an uninterrupted one).
 */
export class PowerSequence {
  private x = NaN;
  private n = -1;
  private hi = 0;
  private lo = 0;
  /** Bound on the relative error of hi + lo (Infinity: not a double-double result). */
  private err = Infinity;

  pow(x: number, n: number): number {
    if (x === this.x) {
      if (n === this.n) return this.hi;
      // x^n for 0 <= x < 1 only shrinks as n grows: once it has underflowed to 0 it stays 0
      // (0.9^n from n = 7100 on, Adam's beta1 after as many steps).
      if (this.hi === 0 && n > this.n && x >= 0 && x < 1) {
        this.n = n;
        return 0;
      }
      if (n === this.n + 1 && this.err < 1 && isSmallWhole(n)) {
        const p = this.hi * x;
        let t = SPLIT * this.hi;
        const ah = t - (t - this.hi);
        const al = this.hi - ah;
        t = SPLIT * x;
        const bh = t - (t - x);
        const bl = x - bh;
        const e = ah * bh - p + ah * bl + al * bh + al * bl + this.lo * x;
        const hi = p + e;
        const lo = e - (hi - p);
        const err = this.err + ULP_DD;
        // Every value within the error of both this product and powi's rounds to `hi`, so `hi`
        // is powi's result too (and, 1 ulp from Math.pow at most, inside powi's range).
        const d = 2 * (err + freshBound(n)) * Math.abs(hi);
        if (inRange(hi, 4) && hi + (lo + d) === hi && hi + (lo - d) === hi) {
          this.n = n;
          this.hi = hi;
          this.lo = lo;
          this.err = err;
          return hi;
        }
      }
    }
    freshExact = false;
    const r = powi(x, n);
    this.x = x;
    this.n = n;
    this.hi = r;
    this.lo = freshExact ? ddLo : 0;
    this.err = freshExact ? freshBound(n) : Infinity;
    return r;
  }
}

// Veltkamp's splitting constant 2^27 + 1: a = hi + lo with 26-bit halves whose products are exact.
const SPLIT = 134217729;
/** A generous bound on the relative error one double-double multiplication adds. */
const ULP_DD = 2 ** -102;
// Outside these magnitudes the splitting may overflow or lose bits to underflow.
const TINY = 2 ** -900;
const HUGE = 2 ** 900;

/** Whether |v| lies `margin` times inside the range where double-double products stay exact. */
function inRange(v: number, margin: number): boolean {
  const a = Math.abs(v);
  return a >= TINY * margin && a <= HUGE / margin;
}

function isSmallWhole(n: number): boolean {
  return n >= 0 && n <= 0x7fffffff && n === Math.floor(n);
}

/** Relative error bound of powDD(x, n): the base's error grows n-fold, plus each product's own. */
function freshBound(n: number): number {
  return (2 * n + 64) * ULP_DD;
}

// powDD's result, in module scope so no step allocates; freshExact: powi's last result came from it.
let ddHi = 0;
let ddLo = 0;
let freshExact = false;

/** x ** n by squaring in double-double (Dekker products), normalised into ddHi + ddLo. */
function powDD(x: number, n: number): void {
  let rh = 1;
  let rl = 0;
  let bh = x;
  let bl = 0;
  for (let k = n; k !== 0; k >>>= 1) {
    if (k & 1) {
      const p = rh * bh;
      let t = SPLIT * rh;
      const ah = t - (t - rh);
      const al = rh - ah;
      t = SPLIT * bh;
      const ch = t - (t - bh);
      const cl = bh - ch;
      const e = ah * ch - p + ah * cl + al * ch + al * cl + (rh * bl + rl * bh);
      rh = p + e;
      rl = e - (rh - p);
    }
    if (k > 1) {
      const p = bh * bh;
      const t = SPLIT * bh;
      const ah = t - (t - bh);
      const al = bh - ah;
      const e = ah * ah - p + 2 * ah * al + al * al + 2 * bh * bl;
      bh = p + e;
      bl = e - (bh - p);
    }
  }
  ddHi = rh;
  ddLo = rl;
}
