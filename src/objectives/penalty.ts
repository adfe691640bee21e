import type { FloatArray } from '../backend/types.js';

/**
 * The elastic-net penalty λ1 Σ|wⱼ| + λ2 Σwⱼ² over the first `count` entries of w (the weights;
 * the intercept too when it is penalized, as it is stored last).
 *
 *   gradient  λ1·sign(wⱼ) + 2λ2·wⱼ    (the subgradient with sign(0) = 0)
 *   Hessian   2λ2 on the diagonal      (|w| is piecewise linear: no curvature off 0)
 */
export class Penalty {
  constructor(
    readonly l1: number,
    readonly l2: number,
    readonly count: number,
  ) {}

  get active(): boolean {
    return this.l1 !== 0 || this.l2 !== 0;
  }

  value(w: FloatArray): number {
    if (!this.active) return 0;
    let a = 0;
    let s = 0;
    for (let j = 0; j < this.count; j++) {
      a += Math.abs(w[j]);
      s += w[j] * w[j];
    }
    return this.l1 * a + this.l2 * s;
  }

  addGrad(w: FloatArray, g: FloatArray): void {
    if (!this.active) return;
    const { l1, l2 } = this;
    for (let j = 0; j < this.count; j++) g[j] += l1 * Math.sign(w[j]) + 2 * l2 * w[j];
  }

  /** H += 2λ2 on the penalized diagonal; H is size×size. */
  addHessian(H: FloatArray, size: number): void {
    if (this.l2 === 0) return;
    for (let j = 0; j < this.count; j++) H[j * size + j] += 2 * this.l2;
  }

  addHvp(v: FloatArray, out: FloatArray): void {
    if (this.l2 === 0) return;
    for (let j = 0; j < this.count; j++) out[j] += 2 * this.l2 * v[j];
  }
}
