/**
 * Lion, AdaBelief and Yogi against optax 0.2.8 (test/golden/optax-0.2.8, see its README),
 * through the public API, on every backend and every native instruction set this CPU runs.
 *
 * optax runs each operation on its own (eager, no fused multiply-adds), and so do these kernels,
 * on every instruction set. What is left is XLA's `b**count` and sqrt against ours:
 * - open loop (the recorded gradients): Lion takes only signs, so it equals optax bit for bit;
 *   the others within 1e-15 (measured ≤ 2.2e-16), and their state at the checkpoints within
 *   1e-15 relative;
 * - closed loop (our own gradients): within the README's 1e-13 (float64), and Lion bit for bit.
 * Configurations the recordings do not cover (other decay rates, eps, Nesterov, float32, no
 * weight decay) are checked against scalar transcriptions of optax's update, written
 * independently of src/ (Math.pow for the bias corrections), within 1e-13 (float64) / 1e-5
 * (float32, where optax computes the bias corrections in float32 too).
 */
import { describe, expect, it } from 'vitest';
import { AdaBelief, Lion, Yogi, param } from '../src/optim/index.js';
import type { Param } from '../src/optim/index.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { camelOptions, fillGrad, maxAbsDiff, readGolden } from './helpers/golden.js';
import type { FirstOrderGolden } from './helpers/golden.js';
import { loadNative } from '../src/backend/native.js';

interface OptaxGolden extends Omit<FirstOrderGolden, 'state_at_checkpoints'> {
  state_at_checkpoints: Record<string, Record<string, number | number[]>>;
}

type Stepper = { step(): void; stateDict(): { state: Record<string, Record<string, unknown>> } };
const CLASSES: Record<string, new (ps: Param[], o: Record<string, unknown>) => Stepper> = {
  lion: Lion as never,
  adabelief: AdaBelief as never,
  yogi: Yogi as never,
};

const FILES = ['lion', 'adabelief', 'yogi'].map((id) => readGolden<OptaxGolden>(`optax-0.2.8/${id}.json`));

/** optax's keyword arguments as ours: camelCase, `learning_rate` is `lr`. */
function options(kwargs: Record<string, unknown>): Record<string, unknown> {
  const { learningRate, ...rest } = camelOptions(kwargs) as Record<string, unknown>;
  return { lr: learningRate, ...rest };
}

function run(g: OptaxGolden, openLoop: boolean) {
  const w = param(Float64Array.from(g.problem.w0), 'w');
  const opt = new CLASSES[g.optimizer]([w], options(g.constructor_kwargs));
  const trajectory: number[][] = [];
  const states: Record<string, Record<string, unknown>> = {};
  for (let t = 1; t <= g.trajectory.length; t++) {
    if (openLoop) w.grad.set(g.grads[t - 1]);
    else fillGrad(g.problem, w.data, w.grad);
    opt.step();
    trajectory.push(Array.from(w.data));
    if (String(t) in g.state_at_checkpoints) states[t] = opt.stateDict().state.w;
  }
  return { trajectory, states };
}

const maxOver = (got: number[][], want: number[][]) => Math.max(...got.map((row, t) => maxAbsDiff(row, want[t])));

const native = loadNative();
const ISAS = native.addon ? (['avx512', 'avx2', 'baseline'] as const).filter((isa) => native.addon!.setIsa(isa)) : [];
native.addon?.setIsa('best');

describe.each(backendRows)('optax 0.2.8 trajectories (%s)', (name, backend) => {
  useBackend(backend);
  for (const isa of name === 'native' ? ISAS : (['-'] as const)) {
    describe(name === 'native' ? `instruction set ${isa}` : 'TypeScript', () => {
      if (name === 'native') {
        it(`selects ${isa}`, () => expect(native.addon!.setIsa(isa as (typeof ISAS)[number])).toBe(true));
      }
      for (const g of FILES) {
        const exact = g.optimizer === 'lion';
        it(`${g.id}: open loop, ${g.trajectory.length} steps`, () => {
          const { trajectory, states } = run(g, true);
          expect(maxOver(trajectory, g.trajectory)).toBeLessThanOrEqual(exact ? 0 : 1e-15);
          for (const [t, want] of Object.entries(g.state_at_checkpoints)) {
            for (const [key, v] of Object.entries(want)) {
              const got = states[t][key === '[0].count' ? 'step' : key.replace('[0].', '')];
              if (!Array.isArray(v)) {
                expect(got, `${key} at step ${t}`).toBe(v);
                continue;
              }
              const scale = Math.max(1, ...v.map(Math.abs));
              expect(maxAbsDiff(got as Float64Array, v) / scale, `${key} at step ${t}`).toBeLessThanOrEqual(exact ? 0 : 1e-15);
            }
          }
        });
        it(`${g.id}: closed loop, ${g.trajectory.length} steps`, () => {
          const { trajectory } = run(g, false);
          expect(maxOver(trajectory, g.trajectory)).toBeLessThanOrEqual(exact ? 0 : 1e-13);
        });
      }
    });
  }
  if (name === 'native') it('restores the best instruction set', () => expect(native.addon!.setIsa('best')).toBe(true));
});

// Scalar transcriptions of optax 0.2.8's updates (optax/_src/transform.py, alias.py), one element.
type Scalar = (p: Float64Array, g: ArrayLike<number>, t: number) => void;
const sign = (x: number) => (x > 0 ? 1 : x < 0 ? -1 : x);

function lionScalar(o: { lr: number; b1: number; b2: number; weightDecay: number }, n: number): Scalar {
  const m = new Float64Array(n);
  return (p, g) => {
    for (let i = 0; i < n; i++) {
      const u = sign((1 - o.b1) * g[i] + o.b1 * m[i]);
      m[i] = (1 - o.b2) * g[i] + o.b2 * m[i];
      const upd = o.weightDecay === 0 ? u : u + o.weightDecay * p[i];
      p[i] = p[i] + -o.lr * upd;
    }
  };
}

function adabeliefScalar(o: { lr: number; b1: number; b2: number; eps: number; epsRoot: number; nesterov: boolean }, n: number): Scalar {
  const m = new Float64Array(n);
  const s = new Float64Array(n);
  return (p, g, t) => {
    for (let i = 0; i < n; i++) {
      m[i] = (1 - o.b1) * g[i] + o.b1 * m[i];
      const e = g[i] - m[i];
      s[i] = (1 - o.b2) * e ** 2 + o.b2 * s[i] + o.epsRoot;
      const mh = o.nesterov
        ? o.b1 * (m[i] / (1 - o.b1 ** (t + 1))) + (1 - o.b1) * (g[i] / (1 - o.b1 ** t))
        : m[i] / (1 - o.b1 ** t);
      p[i] = p[i] + -o.lr * (mh / (Math.sqrt(s[i] / (1 - o.b2 ** t)) + o.eps));
    }
  };
}

function yogiScalar(o: { lr: number; b1: number; b2: number; eps: number; epsRoot: number; initialAccumulatorValue: number }, n: number): Scalar {
  const m = new Float64Array(n).fill(o.initialAccumulatorValue);
  const v = new Float64Array(n).fill(o.initialAccumulatorValue);
  return (p, g, t) => {
    for (let i = 0; i < n; i++) {
      m[i] = (1 - o.b1) * g[i] + o.b1 * m[i];
      v[i] = v[i] - (1 - o.b2) * sign(v[i] - g[i] ** 2) * g[i] ** 2;
      p[i] = p[i] + -o.lr * (m[i] / (1 - o.b1 ** t) / (Math.sqrt(v[i] / (1 - o.b2 ** t) + o.epsRoot) + o.eps));
    }
  };
}

const PROBLEM = FILES[0].problem;

const CASES = [
  { name: 'Lion, no weight decay', make: (p: Param) => new Lion([p], { lr: 0.02, weightDecay: 0 }), scalar: () => lionScalar({ lr: 0.02, b1: 0.9, b2: 0.99, weightDecay: 0 }, 7) },
  { name: 'Lion, b1 0.95, b2 0.98, wd 0.1', make: (p: Param) => new Lion([p], { lr: 0.005, b1: 0.95, b2: 0.98, weightDecay: 0.1 }), scalar: () => lionScalar({ lr: 0.005, b1: 0.95, b2: 0.98, weightDecay: 0.1 }, 7) },
  { name: 'AdaBelief, nesterov', make: (p: Param) => new AdaBelief([p], { lr: 0.01, nesterov: true }), scalar: () => adabeliefScalar({ lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-16, epsRoot: 1e-16, nesterov: true }, 7) },
  { name: 'AdaBelief, b1 0.8, b2 0.99, eps 1e-8, epsRoot 0', make: (p: Param) => new AdaBelief([p], { lr: 0.02, b1: 0.8, b2: 0.99, eps: 1e-8, epsRoot: 0 }), scalar: () => adabeliefScalar({ lr: 0.02, b1: 0.8, b2: 0.99, eps: 1e-8, epsRoot: 0, nesterov: false }, 7) },
  { name: 'Yogi, b1 0.8, b2 0.99, eps 1e-4, epsRoot 1e-8, initial 0.1', make: (p: Param) => new Yogi([p], { lr: 0.05, b1: 0.8, b2: 0.99, eps: 1e-4, epsRoot: 1e-8, initialAccumulatorValue: 0.1 }), scalar: () => yogiScalar({ lr: 0.05, b1: 0.8, b2: 0.99, eps: 1e-4, epsRoot: 1e-8, initialAccumulatorValue: 0.1 }, 7) },
];

describe.each(backendRows)('Lion, AdaBelief and Yogi against optax formulas (%s)', (_name, backend) => {
  useBackend(backend);
  for (const dtype of ['float64', 'float32'] as const) {
    it.each(CASES)(`$name, ${dtype}: 100 steps match the scalar transcription`, ({ make, scalar }) => {
      const C = dtype === 'float32' ? Float32Array : Float64Array;
      const p = param(C.from(PROBLEM.w0));
      const opt = make(p);
      const step = scalar();
      const q = Float64Array.from(PROBLEM.w0);
      let worst = 0;
      for (let t = 1; t <= 100; t++) {
        fillGrad(PROBLEM, p.data, p.grad);
        // The transcription takes the same gradient, from the same (possibly float32) point.
        step(q, p.grad, t);
        opt.step();
        worst = Math.max(worst, maxAbsDiff(p.data, q));
        if (dtype === 'float32') q.set(p.data); // float32 rounding would compound; compare step by step
      }
      expect(worst).toBeLessThanOrEqual(dtype === 'float32' ? 1e-5 : 1e-13);
    });
  }
});
