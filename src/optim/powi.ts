/**
 * `x ** n` for a whole number n >= 0, correctly rounded.
 *
 * torch computes bias corrections such as `1 - beta1 ** step` in Python, whose `**` is C's
 * `pow`; V8's `Math.pow` is less accurate (0.9 ** 4 gives 0.6561000000000001 against C's
 * 0.6561), so a step size built on it would differ from torch in the last bit. Here the power is
 * taken by squaring in double-double arithmetic (~106 bits) and rounded once, which gives the
 * correctly rounded result. glibc's `pow` is within 0.52 ulp, so the two agree for every step
 * count up to 2000 with the common betas, and disagree in rare near-midpoint cases (0.99 ** 503,
 * where this one is the correctly rounded value). Non-integral exponents use `Math.pow`.
 */
export function powi(x: number, n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > Number.MAX_SAFE_INTEGER || !Number.isFinite(x)) {
    return Math.pow(x, n);
  }
  let rh = 1;
  let rl = 0;
  let bh = x;
  let bl = 0;
  let k = n;
  while (k > 0) {
    if (k % 2 === 1) {
      ddMul(rh, rl, bh, bl);
      rh = outHi;
      rl = outLo;
    }
    k = Math.floor(k / 2);
    if (k > 0) {
      ddMul(bh, bl, bh, bl);
      bh = outHi;
      bl = outLo;
    }
  }
  return rh + rl;
}

// Results of ddMul, kept in module scope so a step allocates nothing.
let outHi = 0;
let outLo = 0;

// Veltkamp's splitting constant 2^27 + 1: a = hi + lo with 26-bit halves whose products are exact.
const SPLIT = 134217729;

/** (ah + al) * (bh + bl) in double-double (Dekker), normalised into outHi + outLo. */
function ddMul(ah: number, al: number, bh: number, bl: number): void {
  const p = ah * bh;
  let t = SPLIT * ah;
  const ahh = t - (t - ah);
  const ahl = ah - ahh;
  t = SPLIT * bh;
  const bhh = t - (t - bh);
  const bhl = bh - bhh;
  const err = ahh * bhh - p + ahh * bhl + ahl * bhh + ahl * bhl;
  const lo = err + (ah * bl + al * bh);
  const s = p + lo;
  outHi = s;
  outLo = lo - (s - p);
}
