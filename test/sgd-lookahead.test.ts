import { describe, expect, it } from 'vitest';
import { SGD } from '../src/optim/sgd.js';
import { param } from '../src/param.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { readGolden } from './helpers/golden.js';

const golden = readGolden<{
  problem: { a: number[]; c: number[]; w0: number[] };
  trajectory: number[][];
}>('torch-2.13/sgd_nesterov.json');

describe.each(backendRows)('SGD lookahead (Sutskever) form (%s)', (_name, backend) => {
  useBackend(backend);

  it("equals torch's Nesterov trajectory in look-ahead coordinates (θ + μv)", () => {
    const { a, c, w0 } = golden.problem;
    const mu = 0.9;
    const p = param(Float64Array.from(w0), 'w');
    const opt = new SGD([p], { lr: 0.01, momentum: mu, lookahead: true });
    let evaluatedAt: number[] = [];
    const closure = () => {
      evaluatedAt = Array.from(p.data);
      for (let i = 0; i < p.data.length; i++) p.grad[i] = a[i] * (p.data[i] - c[i]) + 0.1 * Math.cos(p.data[i]);
      return 0;
    };
    for (let t = 1; t <= 100; t++) {
      opt.step(closure);
      const v = opt.stateDict().state.w.velocity as Float64Array;
      // torch's p after step t is the look-ahead point θ_t + μ v_t of the textbook form.
      golden.trajectory[t - 1].forEach((want, i) => expect(Math.abs(p.data[i] + mu * v[i] - want)).toBeLessThanOrEqual(1e-12));
      // and the closure saw θ_{t-1} + μ v_{t-1}, torch's previous iterate.
      const prev = t === 1 ? w0 : golden.trajectory[t - 2];
      prev.forEach((want, i) => expect(Math.abs(evaluatedAt[i] - want)).toBeLessThanOrEqual(1e-12));
    }
  });

  it('needs a closure and momentum, and refuses nesterov alongside', () => {
    const p = param(new Float64Array(3), 'w');
    expect(() => new SGD([p], { lr: 0.1, lookahead: true })).toThrow(/lookahead/);
    expect(() => new SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true, lookahead: true })).toThrow(/lookahead/);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, lookahead: true });
    expect(() => opt.step()).toThrow(/closure/);
    expect(Array.from(p.data)).toEqual([0, 0, 0]);
  });
});
