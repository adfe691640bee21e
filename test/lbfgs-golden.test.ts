import { describe, expect, it } from 'vitest';
import { LBFGS } from '../src/optim/lbfgs.js';
import { param } from '../src/param.js';
import { readGolden } from './helpers/golden.js';

const golden = readGolden<{
  problem: { a: number[]; c: number[]; w0: number[] };
  checkpoints: Record<string, number[]>;
  after_step_calls: Array<{ loss: number; returned_loss: number; func_evals_total: number; n_iter_total: number }>;
  closure_points: number[][];
}>('torch-1.13/lbfgs.json');

const { a, c, w0 } = golden.problem;

function closureFor(p: { data: Float64Array; grad: Float64Array }, points: number[][]) {
  return () => {
    points.push(Array.from(p.data));
    let f = 0;
    for (let i = 0; i < p.data.length; i++) {
      const w = p.data[i];
      f += 0.5 * a[i] * (w - c[i]) ** 2 + 0.1 * Math.sin(w);
      p.grad[i] = a[i] * (w - c[i]) + 0.1 * Math.cos(w);
    }
    return f;
  };
}

// test/golden/README.md bounds the iterates' sensitivity to 1-ulp gradient differences by
// 5.4e-13, so 1e-10 is loose enough for libm/FMA differences and tight enough to catch any rule
// change.
const TOL = 1e-10;

describe('LBFGS against torch.optim.LBFGS (golden lbfgs.json)', () => {
  it('matches every checkpoint, the counters, the returned losses and every closure point', () => {
    const p = param(Float64Array.from(w0), 'w');
    const opt = new LBFGS([p], { lr: 1, historySize: 5, maxIter: 20 });
    const points: number[][] = [];
    const closure = closureFor(p, points);
    for (let k = 1; k <= 5; k++) {
      const returned = opt.step(closure);
      const want = golden.after_step_calls[k - 1];
      expect(Math.abs(returned - want.returned_loss)).toBeLessThanOrEqual(TOL * Math.max(1, Math.abs(want.returned_loss)));
      golden.checkpoints[String(k)].forEach((w, i) => expect(Math.abs(p.data[i] - w)).toBeLessThanOrEqual(TOL));
      expect(opt.state.funcEvals).toBe(want.func_evals_total);
      expect(opt.state.nIter).toBe(want.n_iter_total);
    }
    expect(points.length).toBe(golden.closure_points.length);
    points.forEach((pt, j) => pt.forEach((w, i) => expect(Math.abs(w - golden.closure_points[j][i])).toBeLessThanOrEqual(TOL)));
  });
});
