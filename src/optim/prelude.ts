/**
 * The reference twins of the arithmetic the native kernels share (native/kernels/isa_table.inc's
 * prelude): written once here, called from the reference loops of the algorithms' descriptors.
 */
import type { FloatArray } from '../backend/types.js';

/**
 * ATen's lerp(a, b, w) as its reference form computes it (no fma): a + w·(b − a) for |w| < 0.5,
 * else b − (b − a)·(1 − w), so the result is exact at both ends of the weight.
 */
export function lerp(a: number, b: number, w: number): number {
  return w < 0.5 && w > -0.5 ? a + w * (b - a) : b - (b - a) * (1 - w);
}

/**
 * The gradient of element i after weight decay, as the native `decay`: with `decoupled`,
 * p[i] = p[i]·decayMul first (stored); then g = sign·g, and with `coupled`, g = fma(wd, p, g).
 * Scalars and flags come as numbers and booleans, not as the kernels' records: one function called
 * from every kernel would see records of many shapes, and reading them would be slow.
 */
export function decayedGrad(
  p: FloatArray,
  g: FloatArray,
  i: number,
  sign: number,
  wd: number,
  decayMul: number,
  coupled: boolean,
  decoupled: boolean,
): number {
  if (decoupled) p[i] = p[i] * decayMul;
  const gi = sign * g[i];
  return coupled ? wd * p[i] + gi : gi;
}

/** The second moment as ATen computes v.mul_(β₂).addcmul_(g, g, value=1−β₂): fma((1−β₂)·g, g, β₂·v). */
export function secondMoment(v: number, g: number, beta2: number, oneMinusBeta2: number): number {
  return oneMinusBeta2 * g * g + v * beta2;
}
