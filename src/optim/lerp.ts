/**
 * ATen's lerp(a, b, w) as its reference form computes it (no fma): a + w·(b − a) for |w| < 0.5,
 * else b − (b − a)·(1 − w), so the result is exact at both ends of the weight.
 */
export function lerp(a: number, b: number, w: number): number {
  return w < 0.5 && w > -0.5 ? a + w * (b - a) : b - (b - a) * (1 - w);
}
