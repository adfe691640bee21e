/**
 * The reference twins of the arithmetic the native kernels share (native/kernels/isa_table.inc's
 * prelude): written once here, called from the reference loops of the algorithms' descriptors.
 */
import type { FloatArray } from '../backend/types.js';

/** The weight-decay scalars and flags of a kernel that has them. */
interface Decay {
  readonly wd: number;
  readonly sign: number;
  readonly decayMul?: number;
}
interface DecayFlags {
  readonly wd: boolean;
  readonly decoupled?: boolean;
}

/**
 * ATen's lerp(a, b, w) as its reference form computes it (no fma): a + w·(b − a) for |w| < 0.5,
 * else b − (b − a)·(1 − w), so the result is exact at both ends of the weight.
 */
export function lerp(a: number, b: number, w: number): number {
  return w < 0.5 && w > -0.5 ? a + w * (b - a) : b - (b - a) * (1 - w);
}

/**
 * The gradient of element i after weight decay, as decayed_grad: with `decoupled`, p[i] = p[i]·decayMul
 * first (stored); then g = sign·g, and with `wd`, g = fma(wd, p, g).
 */
export function decayedGrad(p: FloatArray, g: FloatArray, i: number, s: Decay, on: DecayFlags): number {
  if (on.decoupled) p[i] = p[i] * (s.decayMul as number);
  const gi = s.sign * g[i];
  return on.wd ? s.wd * p[i] + gi : gi;
}

/** The second moment as ATen computes v.mul_(β₂).addcmul_(g, g, value=1−β₂): fma((1−β₂)·g, g, β₂·v). */
export function secondMoment(v: number, g: number, beta2: number, oneMinusBeta2: number): number {
  return oneMinusBeta2 * g * g + v * beta2;
}
