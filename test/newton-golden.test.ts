import { describe, expect, it } from 'vitest';
import { Newton } from '../src/optim/newton.js';
import { param } from '../src/param.js';
import { CholeskyError } from '../src/errors.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { readGolden } from './helpers/golden.js';

interface NewtonGolden {
  lambda: number;
  problem: { a: number[]; c: number[]; w0: number[] };
  checkpoints: Record<string, number[]>;
  iterates: Array<{ w: number[]; f: number }>;
}

/** Recorded with scipy 1.10.1; vendored in test/golden/torch-1.13 with the torch files of that run. */
const load = (id: string): NewtonGolden => readGolden<NewtonGolden>(`torch-1.13/${id}.json`);

/** The golden problem: fills grad, returns the loss and the dense diagonal Hessian. */
function closureFor(g: NewtonGolden, p: { data: Float64Array; grad: Float64Array }) {
  const { a, c } = g.problem;
  const n = a.length;
  return () => {
    const hessian = new Float64Array(n * n);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const w = p.data[i];
      loss += 0.5 * a[i] * (w - c[i]) ** 2 + 0.1 * Math.sin(w);
      p.grad[i] = a[i] * (w - c[i]) + 0.1 * Math.cos(w);
      hessian[i * n + i] = a[i] - 0.1 * Math.sin(w);
    }
    return { loss, hessian };
  };
}

// test/golden/README.md: a textbook no-FMA Cholesky closed loop stays within 4.4e-16 of these
// iterates; LAPACK's blocked factor may round differently in the last bit, hence 1e-15 (iterates
// are O(1)).
const TOL = 1e-15;

describe.each(backendRows)('Newton against scipy cho_factor/cho_solve (%s)', (_name, backend) => {
  useBackend(backend);
  for (const id of ['newton_diag', 'newton_diag_damped_lambda1']) {
    it(`${id}: five iterations match every checkpoint`, () => {
      const g = load(id);
      const p = param(Float64Array.from(g.problem.w0), 'w');
      const opt = new Newton([p], { damping: g.lambda });
      const closure = closureFor(g, p);
      for (let k = 1; k <= 5; k++) {
        const info = opt.step(closure);
        expect(info.lambda).toBe(g.lambda);
        expect(info.positiveDefinite).toBe(true);
        expect(Math.abs(info.loss - g.iterates[k - 1].f)).toBeLessThanOrEqual(1e-12 * Math.abs(g.iterates[k - 1].f));
        g.checkpoints[String(k)].forEach((w, i) => expect(Math.abs(p.data[i] - w)).toBeLessThanOrEqual(TOL));
      }
    });
  }

  const saddle = () => {
    // f = x² − y² + y⁴/4: a saddle at the origin, minima at y = ±√2.
    const p = param(new Float64Array([0.5, 0.1]), 'xy');
    const closure = () => {
      const [x, y] = p.data;
      p.grad[0] = 2 * x;
      p.grad[1] = -2 * y + y ** 3;
      return { loss: x * x - y * y + y ** 4 / 4, hessian: new Float64Array([2, 0, 0, -2 + 3 * y * y]) };
    };
    return { p, closure };
  };

  it('pure Newton refuses an indefinite Hessian with a CholeskyError naming the pivot, params untouched', () => {
    const { p, closure } = saddle();
    const opt = new Newton([p]);
    const before = p.data.slice();
    let err: unknown;
    try {
      opt.step(closure);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CholeskyError);
    expect((err as CholeskyError).pivot).toBe(1);
    expect(Array.from(p.data)).toEqual(Array.from(before));
  });

  it("'adaptive' (Levenberg–Marquardt) raises λ until the step descends, and reaches the minimum", () => {
    const { p, closure } = saddle();
    const opt = new Newton([p], { damping: 'adaptive', lambda0: 1e-3 });
    const first = opt.step(closure);
    expect(first.positiveDefinite).toBe(false);
    expect(first.lambda).toBeGreaterThan(2);
    expect(first.decrease).toBeGreaterThan(0);
    for (let k = 0; k < 40; k++) opt.step(closure);
    expect(Math.abs(p.data[0])).toBeLessThan(1e-10);
    expect(Math.abs(Math.abs(p.data[1]) - Math.SQRT2)).toBeLessThan(1e-10);
  });

  it("'pinv' moves along curved directions and ignores flat ones", () => {
    // f = (x−1)² + 0·y: H = diag(2, 0); the flat y must not move.
    const p = param(new Float64Array([5, 3]), 'xy');
    const closure = () => {
      p.grad[0] = 2 * (p.data[0] - 1);
      p.grad[1] = 0;
      return { loss: (p.data[0] - 1) ** 2, hessian: new Float64Array([2, 0, 0, 0]) };
    };
    const info = new Newton([p], { damping: 'pinv' }).step(closure);
    expect(info.flatDirections).toBe(1);
    expect(Array.from(p.data)).toEqual([1, 3]);
  });

  it('backtracking line search shortens a step that overshoots', () => {
    // f = sqrt(1 + x²): Newton's full step from x = 2 overshoots to x = −8.
    const p = param(new Float64Array([2]), 'x');
    const closure = () => {
      const x = p.data[0];
      const s = Math.sqrt(1 + x * x);
      p.grad[0] = x / s;
      return { loss: s, hessian: new Float64Array([1 / (s * s * s)]) };
    };
    const info = new Newton([p], { lineSearch: 'backtracking' }).step(closure);
    expect(info.t).toBeLessThan(1);
    expect(info.decrease).toBeGreaterThan(0);
  });

  it('refuses a Hessian of the wrong size, dtype or with NaN, before moving', () => {
    const p = param(new Float64Array([1, 2]), 'xy');
    const opt = new Newton([p]);
    expect(() => opt.step(() => ({ loss: 0, hessian: new Float64Array(3) }))).toThrow(/n\*n = 4/);
    expect(() => opt.step(() => ({ loss: 0, hessian: new Float32Array(4) }))).toThrow(/Float32Array/);
    expect(() => opt.step(() => ({ loss: 0, hessian: new Float64Array([1, NaN, 0, 1]) }))).toThrow(/non-finite/);
    expect(() => new Newton([p], { damping: -1 })).toThrow(/damping/);
    expect(Array.from(p.data)).toEqual([1, 2]);
  });
});
