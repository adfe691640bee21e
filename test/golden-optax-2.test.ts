/**
 * LAMB, LARS, ScheduleFreeAdamW and ScheduleFreeSGD against optax 0.2.8
 * (test/golden/optax-0.2.8/{lamb,lars,schedule_free_adamw,schedule_free_sgd}.json, see
 * test/golden/README.md), through the public API, on every backend and every native instruction
 * set this CPU runs.
 *
 * - The recordings: LAMB and LARS on the two_tensor problem (W 6×4 and b 4, a trust ratio each),
 *   the schedule-free pair on the diag problem, where `trajectory` is the training point y (the
 *   params) and `eval_trajectory` the evaluation point x (`eval()` after each step, then
 *   `train()`, which must give y back bit for bit: the recorded run goes on from it).
 *   Open loop (the recorded gradients): within 1e-15 (measured: LAMB 1.1e-16, LARS 3.5e-18,
 *   schedule-free AdamW 2.2e-16 for y and 2.8e-16 for x: the norms' summation order and XLA's
 *   b2**t), schedule-free SGD bit for bit (y, x, z and the counters); the state at every
 *   checkpoint where it maps (optax's leaves and counters) within the same, relative to
 *   max(1, |x|) (measured ≤ 2.9e-17; LAMB's moments exact), counters exactly (weightSum too).
 *   Closed loop (our own gradients): within the golden README's 1e-13, schedule_free_sgd 1e-11
 *   (lr 0.1 on a = 100 amplifies rounding: its ±1-ulp sensitivity is 2.6e-13); measured the same
 *   as open loop (schedule-free SGD still bit for bit).
 * - Other configurations (weight decay, Nesterov, masks, decay rates, warm-up, weightLrPower, a
 *   zero param, float32) against scalar transcriptions of optax's rules written here,
 *   independently of src/ (Math.pow, plain norms): 1e-13 in float64, 1e-5 in float32 (compared
 *   step by step from the same float32 point).
 * - The train/eval switch, the refusals, the state dict round trip (bit for bit), validation.
 */
import { describe, expect, it } from 'vitest';
import { loadNative } from '../src/backend/native.js';
import type { FloatArray } from '../src/backend/types.js';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../src/errors.js';
import { LAMB, LARS, ScheduleFreeAdamW, ScheduleFreeSGD, param } from '../src/optim/index.js';
import { LAMB_KERNEL } from '../src/optim/lamb.js';
import type { Param, ScheduleFreeStateDict, StateDict } from '../src/optim/index.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { camelOptions, fillGrad, maxAbsDiff, readGolden } from './helpers/golden.js';
import { captureSteps } from './helpers/kernels.js';
import { bytesOf, errorOf, snapshot } from './helpers/snapshot.js';

// ---------------------------------------------------------------------------------------------
// The recordings

type Leaves = Record<string, number[]>;
interface TwoTensorProblem {
  params: { W: { shape: number[]; w0: number[] }; b: { shape: number[]; w0: number[] } };
  A: number[];
  C: number[];
  d: number[];
  e: number[];
}
interface DiagProblem {
  a: number[];
  c: number[];
  w0: number[];
}
interface OptaxFile<P, T> {
  id: string;
  optimizer: string;
  constructor_kwargs: Record<string, unknown>;
  hyperparameters: Record<string, unknown>;
  problem: P;
  trajectory: T[];
  grads: T[];
  eval_trajectory?: T[];
  state_at_checkpoints: Record<string, Record<string, number | number[]>>;
}
type TwoTensorFile = Omit<OptaxFile<TwoTensorProblem, number[]>, 'trajectory' | 'grads'> & {
  trajectory: Record<'W' | 'b', number[][]>;
  grads: Record<'W' | 'b', number[][]>;
};
type DiagFile = OptaxFile<DiagProblem, number[]>;

const LAMB_FILE = readGolden<TwoTensorFile>('optax-0.2.8/lamb.json');
const LARS_FILE = readGolden<TwoTensorFile>('optax-0.2.8/lars.json');
const SFA_FILE = readGolden<DiagFile>('optax-0.2.8/schedule_free_adamw.json');
const SFS_FILE = readGolden<DiagFile>('optax-0.2.8/schedule_free_sgd.json');

/** optax's keyword arguments as ours: camelCase, `learning_rate` is `lr`. */
function options(kwargs: Record<string, unknown>): Record<string, unknown> {
  const { learningRate, ...rest } = camelOptions(kwargs) as Record<string, unknown>;
  return { lr: learningRate, ...rest };
}

/** The two_tensor problem's gradient, as the README evaluates it (float64, left to right). */
function twoTensorGrad(pr: TwoTensorProblem, w: Param, b: Param): void {
  for (let k = 0; k < w.data.length; k++) w.grad[k] = pr.A[k] * (w.data[k] - pr.C[k]) + 0.1 * Math.cos(w.data[k]);
  for (let j = 0; j < b.data.length; j++) b.grad[j] = pr.d[j] * (b.data[j] - pr.e[j]);
}

const relDiff = (got: ArrayLike<number>, want: number[]) => maxAbsDiff(got, want) / Math.max(1, ...want.map(Math.abs));

type Stepper = {
  step(): void;
  stateDict(): StateDict;
};

function runTwoTensor(g: TwoTensorFile, make: (ps: Param[]) => Stepper, openLoop: boolean) {
  const pr = g.problem;
  const w = param(Float64Array.from(pr.params.W.w0), 'W', { shape: pr.params.W.shape });
  const b = param(Float64Array.from(pr.params.b.w0), 'b');
  const opt = make([w, b]);
  let worst = 0;
  const states: Record<string, StateDict['state']> = {};
  for (let t = 1; t <= g.trajectory.W.length; t++) {
    if (openLoop) {
      w.grad.set(g.grads.W[t - 1]);
      b.grad.set(g.grads.b[t - 1]);
    } else {
      twoTensorGrad(pr, w, b);
    }
    opt.step();
    worst = Math.max(worst, maxAbsDiff(w.data, g.trajectory.W[t - 1]), maxAbsDiff(b.data, g.trajectory.b[t - 1]));
    if (String(t) in g.state_at_checkpoints) states[t] = opt.stateDict().state;
  }
  return { worst, states };
}

function runDiag(g: DiagFile, make: (ps: Param[]) => ScheduleFreeAdamW | ScheduleFreeSGD, openLoop: boolean) {
  const w = param(Float64Array.from(g.problem.w0), 'w');
  const opt = make([w]);
  let worst = 0;
  let worstEval = 0;
  const states: Record<string, { st: StateDict['state'][string]; b1: number }> = {};
  for (let t = 1; t <= g.trajectory.length; t++) {
    if (openLoop) w.grad.set(g.grads[t - 1]);
    else fillGrad(g.problem as never, w.data, w.grad);
    opt.step();
    worst = Math.max(worst, maxAbsDiff(w.data, g.trajectory[t - 1]));
    const y = bytesOf(w.data);
    opt.eval();
    worstEval = Math.max(worstEval, maxAbsDiff(w.data, g.eval_trajectory![t - 1]));
    opt.train();
    expect(bytesOf(w.data)).toEqual(y);
    if (String(t) in g.state_at_checkpoints) states[t] = { st: opt.stateDict().state.w, b1: opt.paramGroups[0].b1 };
  }
  return { worst, worstEval, states };
}

/** optax's state leaf (`[0].mu['W']`, `[3].trace['b']`, `[0].count`) as ours: [param or '*', key]. */
function lambLarsLeaf(key: string): [string, string] {
  const m = /^\[\d+\]\.(\w+)(?:\['(\w+)'\])?$/.exec(key);
  if (m === null) throw new Error(`unknown leaf ${key}`);
  return [m[2] ?? '*', m[1] === 'count' ? 'step' : m[1]];
}

/** A schedule-free leaf: [our state key, how ours maps to optax's value]. */
function scheduleFreeLeaf(key: string): [string, (st: Record<string, unknown>, b1: number) => unknown] {
  const direct = (k: string) => (st: Record<string, unknown>) => st[k];
  switch (key) {
    case '.b1':
      return ['b1', (_st, b1) => b1];
    case '.weight_sum':
      return ['weightSum', direct('weightSum')];
    case '.max_lr':
      return ['maxLr', direct('maxLr')];
    case '.step_count':
      return ['step + 1', (st) => (st.step as number) + 1];
    case '.base_optimizer_state[0].count':
      return ['step', direct('step')];
    case '.base_optimizer_state[0].nu':
      return ['nu', direct('nu')];
    case '.z':
      return ['z', direct('z')];
    default:
      throw new Error(`unknown leaf ${key}`);
  }
}

const native = loadNative();
const ISAS = native.addon ? (['avx512', 'avx2', 'baseline'] as const).filter((isa) => native.addon!.setIsa(isa)) : [];
native.addon?.setIsa('best');

const TWO_TENSOR: Array<[TwoTensorFile, (ps: Param[]) => Stepper]> = [
  [LAMB_FILE, (ps) => new LAMB(ps, options(LAMB_FILE.constructor_kwargs))],
  [LARS_FILE, (ps) => new LARS(ps, options(LARS_FILE.constructor_kwargs))],
];
/** [file, optimizer, open-loop bound, closed-loop bound]. */
const DIAG: Array<[DiagFile, (ps: Param[]) => ScheduleFreeAdamW | ScheduleFreeSGD, number, number]> = [
  [SFA_FILE, (ps) => new ScheduleFreeAdamW(ps, options(SFA_FILE.constructor_kwargs)), 1e-15, 1e-13],
  // No power, sqrt or norm: the recorded arithmetic exactly (its 1/β as XLA computes a division by β).
  [SFS_FILE, (ps) => new ScheduleFreeSGD(ps, options(SFS_FILE.constructor_kwargs)), 0, 1e-11],
];

describe.each(backendRows)('optax 0.2.8 recordings: LAMB, LARS, schedule-free (%s)', (name, backend) => {
  useBackend(backend);
  for (const isa of name === 'native' ? ISAS : (['-'] as const)) {
    describe(name === 'native' ? `instruction set ${isa}` : 'TypeScript', () => {
      if (name === 'native') {
        it(`selects ${isa}`, () => expect(native.addon!.setIsa(isa as (typeof ISAS)[number])).toBe(true));
      }
      for (const [g, make] of TWO_TENSOR) {
        it(`${g.id}: open loop, 100 steps, and the state at the checkpoints`, () => {
          const { worst, states } = runTwoTensor(g, make, true);
          expect(worst).toBeLessThanOrEqual(1e-15);
          for (const [t, want] of Object.entries(g.state_at_checkpoints)) {
            for (const [key, v] of Object.entries(want)) {
              const [pname, ours] = lambLarsLeaf(key);
              for (const p of pname === '*' ? ['W', 'b'] : [pname]) {
                const got = states[t][p][ours];
                if (Array.isArray(v)) expect(relDiff(got as Float64Array, v), `${key} at step ${t}`).toBeLessThanOrEqual(1e-15);
                else expect(got, `${key} at step ${t}`).toBe(v);
              }
            }
          }
        });
        it(`${g.id}: closed loop, 100 steps`, () => {
          expect(runTwoTensor(g, make, false).worst).toBeLessThanOrEqual(1e-13);
        });
      }
      for (const [g, make, tol, closedTol] of DIAG) {
        it(`${g.id}: open loop, 100 steps: y, x (eval/train) and the state at the checkpoints`, () => {
          const { worst, worstEval, states } = runDiag(g, make, true);
          expect(worst).toBeLessThanOrEqual(tol);
          expect(worstEval).toBeLessThanOrEqual(tol);
          for (const [t, want] of Object.entries(g.state_at_checkpoints)) {
            for (const [key, v] of Object.entries(want)) {
              const [ours, read] = scheduleFreeLeaf(key);
              const got = read(states[t].st as Record<string, unknown>, states[t].b1);
              if (Array.isArray(v)) {
                expect(relDiff(got as Float64Array, v), `${key} (${ours}) at step ${t}`).toBeLessThanOrEqual(tol);
              } else {
                expect(got, `${key} (${ours}) at step ${t}`).toBe(v);
              }
            }
          }
        });
        it(`${g.id}: closed loop, 100 steps: y and x`, () => {
          const { worst, worstEval } = runDiag(g, make, false);
          expect(worst).toBeLessThanOrEqual(closedTol);
          expect(worstEval).toBeLessThanOrEqual(closedTol);
        });
      }
    });
  }
  if (name === 'native') it('restores the best instruction set', () => expect(native.addon!.setIsa('best')).toBe(true));
});

it('the recordings are the optax calls the tests assume, and our defaults are optax\'s', () => {
  expect(LAMB_FILE.hyperparameters).toEqual({ learning_rate: 0.01, b1: 0.9, b2: 0.999, eps: 1e-6, eps_root: 0, weight_decay: 0, mask: null });
  const lamb = new LAMB([param(new Float64Array(2))]).paramGroups[0];
  expect([lamb.b1, lamb.b2, lamb.eps, lamb.epsRoot, lamb.weightDecay]).toEqual([0.9, 0.999, 1e-6, 0, 0]);
  expect(LARS_FILE.hyperparameters).toMatchObject({ learning_rate: 0.1, weight_decay: 0, trust_coefficient: 0.001, eps: 0, momentum: 0.9, nesterov: false });
  const lars = new LARS([param(new Float64Array(2))], { lr: 0.1 }).paramGroups[0];
  expect([lars.weightDecay, lars.trustCoefficient, lars.eps, lars.momentum, lars.nesterov, lars.trustRatioMask]).toEqual([0, 0.001, 0, 0.9, false, true]);
  expect(SFA_FILE.hyperparameters).toEqual({ learning_rate: 0.01, warmup_steps: null, b1: 0.9, b2: 0.999, eps: 1e-8, weight_decay: 0, weight_lr_power: 2, state_dtype: null });
  const { params: _a, ...sfa } = new ScheduleFreeAdamW([param(new Float64Array(2))]).paramGroups[0];
  expect(sfa).toEqual({ lr: 0.0025, warmupSteps: 0, b1: 0.9, b2: 0.999, eps: 1e-8, weightDecay: 0, weightLrPower: 2 });
  expect(SFS_FILE.hyperparameters).toEqual({ learning_rate: 0.1, warmup_steps: null, b1: 0.9, weight_decay: null, weight_lr_power: 2, state_dtype: null });
  const { params: _b, ...sfs } = new ScheduleFreeSGD([param(new Float64Array(2))]).paramGroups[0];
  expect(sfs).toEqual({ lr: 1, warmupSteps: 0, b1: 0.9, weightDecay: 0, weightLrPower: 2 });
});

// ---------------------------------------------------------------------------------------------
// Scalar transcriptions of optax 0.2.8's rules (optax/_src/alias.py, transform.py,
// contrib/_schedule_free.py), on plain Float64Arrays, written independently of src/.

type Transcription = (ps: Float64Array[], gs: ArrayLike<number>[], t: number) => void;

const normOf = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0));

interface LambRule {
  lr: number;
  b1: number;
  b2: number;
  eps: number;
  epsRoot: number;
  weightDecay: number;
}
function lambScalar(o: LambRule, sizes: number[]): Transcription {
  const m = sizes.map((n) => new Float64Array(n));
  const v = sizes.map((n) => new Float64Array(n));
  return (ps, gs, t) => {
    ps.forEach((p, k) => {
      const u = new Float64Array(p.length);
      for (let i = 0; i < p.length; i++) {
        const g = gs[k][i];
        m[k][i] = (1 - o.b1) * g + o.b1 * m[k][i];
        v[k][i] = (1 - o.b2) * g ** 2 + o.b2 * v[k][i];
        u[i] = m[k][i] / (1 - o.b1 ** t) / (Math.sqrt(v[k][i] / (1 - o.b2 ** t) + o.epsRoot) + o.eps);
        if (o.weightDecay !== 0) u[i] = u[i] + o.weightDecay * p[i];
      }
      const pn = normOf(p);
      const un = normOf(u);
      const r = pn === 0 || un === 0 ? 1 : pn / un;
      for (let i = 0; i < p.length; i++) p[i] = p[i] + -o.lr * (u[i] * r);
    });
  };
}

interface LarsRule {
  lr: number;
  weightDecay: number;
  trustCoefficient: number;
  eps: number;
  momentum: number;
  nesterov: boolean;
  /** Per param: whether it gets the trust ratio. */
  masks: boolean[];
  /** Per param: its lr, when not `lr`. */
  lrs?: number[];
}
function larsScalar(o: LarsRule, sizes: number[]): Transcription {
  const tr = sizes.map((n) => new Float64Array(n));
  return (ps, gs) => {
    ps.forEach((p, k) => {
      const u = Float64Array.from(p, (pi, i) => (o.weightDecay !== 0 ? gs[k][i] + o.weightDecay * pi : gs[k][i]));
      const pn = normOf(p);
      const un = normOf(u);
      const r = !o.masks[k] || pn === 0 || un === 0 ? 1 : (o.trustCoefficient * pn) / (un + o.eps);
      for (let i = 0; i < p.length; i++) {
        const ui = -(o.lrs?.[k] ?? o.lr) * (u[i] * r);
        tr[k][i] = ui + o.momentum * tr[k][i];
        p[i] = p[i] + (o.nesterov ? ui + o.momentum * tr[k][i] : tr[k][i]);
      }
    });
  };
}

interface ScheduleFreeRule {
  lr: number;
  warmupSteps: number;
  b1: number;
  weightDecay: number;
  weightLrPower: number;
  /** AdamW's base (b2, eps); SGD's without. */
  adam?: { b2: number; eps: number };
}
/** Schedule-free as the paper writes it (one γ_t for the weights and the base), optax's arithmetic. */
function scheduleFreeScalar(o: ScheduleFreeRule, sizes: number[]): Transcription & { x(k: number, y: Float64Array): Float64Array } {
  let z: Float64Array[] | undefined;
  const v = sizes.map((n) => new Float64Array(n));
  let weightSum = 0;
  let maxLr = 0;
  const step = (ps: Float64Array[], gs: ArrayLike<number>[], t: number) => {
    z ??= ps.map((p) => p.slice());
    const lr = o.warmupSteps > 0 ? (o.lr * Math.min(t, o.warmupSteps)) / o.warmupSteps : o.lr;
    maxLr = Math.max(maxLr, lr);
    const weight = maxLr ** o.weightLrPower;
    weightSum += weight;
    const ck = weightSum === 0 ? 0 : weight / weightSum;
    ps.forEach((y, k) => {
      for (let i = 0; i < y.length; i++) {
        let d = gs[k][i];
        if (o.adam) {
          v[k][i] = (1 - o.adam.b2) * d ** 2 + o.adam.b2 * v[k][i];
          d = d / (Math.sqrt(v[k][i] / (1 - o.adam.b2 ** t)) + o.adam.eps);
        }
        d += o.weightDecay * y[i];
        const zPrev = z![k][i];
        const zNew = zPrev - lr * d;
        const x = (1 - ck) * ((y[i] - (1 - o.b1) * zPrev) / o.b1) + ck * zNew;
        z![k][i] = zNew;
        y[i] = o.b1 * x + (1 - o.b1) * zNew;
      }
    });
  };
  return Object.assign(step, {
    x: (k: number, y: Float64Array) => Float64Array.from(y, (yi, i) => (z === undefined ? yi : (yi - (1 - o.b1) * z[k][i]) / o.b1)),
  });
}

/** Params for the transcription cases: the two_tensor W and b, and a zero vector (its norm is 0 at the first step). */
function caseParams(C: typeof Float32Array | typeof Float64Array): Param[] {
  const pr = LAMB_FILE.problem;
  return [
    param(C.from(pr.params.W.w0), 'W', { shape: [6, 4] }),
    param(C.from(pr.params.b.w0), 'b'),
    param(new C(5), 'zero'),
  ];
}
function caseGrads(ps: Param[]): void {
  twoTensorGrad(LAMB_FILE.problem, ps[0], ps[1]);
  const z = ps[2];
  for (let i = 0; i < z.data.length; i++) z.grad[i] = (i + 1) * (z.data[i] - 0.25 * i) + 0.05;
}

interface Case {
  name: string;
  make(ps: Param[]): { step(): void };
  scalar(sizes: number[]): Transcription;
  /** The diag problem (schedule-free) instead of caseParams. */
  diag?: boolean;
}

const LAMB_RULE: LambRule = { lr: 0.02, b1: 0.8, b2: 0.99, eps: 1e-8, epsRoot: 1e-10, weightDecay: 0.05 };
const LARS_RULE: LarsRule = { lr: 0.5, weightDecay: 1e-3, trustCoefficient: 0.02, eps: 1e-9, momentum: 0.5, nesterov: true, masks: [true, false, true] };
const SFA_RULE: ScheduleFreeRule = { lr: 0.05, warmupSteps: 10, b1: 0.95, weightDecay: 0.01, weightLrPower: 1, adam: { b2: 0.99, eps: 1e-6 } };
const SFS_RULE: ScheduleFreeRule = { lr: 0.005, warmupSteps: 5, b1: 0.8, weightDecay: 0.02, weightLrPower: 2 };
const adamwOptions = ({ adam, ...o }: ScheduleFreeRule) => ({ ...o, ...adam });

const CASES: Case[] = [
  {
    name: 'LAMB, weight decay, b1 0.8, b2 0.99, eps 1e-8, epsRoot 1e-10, a zero param',
    make: (ps) => new LAMB(ps, LAMB_RULE),
    scalar: (sizes) => lambScalar(LAMB_RULE, sizes),
  },
  {
    name: 'LAMB, optax defaults but lr, a zero param',
    make: (ps) => new LAMB(ps, { lr: 0.01 }),
    scalar: (sizes) => lambScalar({ lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-6, epsRoot: 0, weightDecay: 0 }, sizes),
  },
  {
    name: 'LARS, weight decay, Nesterov, trust coefficient 0.02, eps 1e-9, momentum 0.5, b without the trust ratio (lr 0.02)',
    make: (ps) => {
      const { masks: _m, ...o } = LARS_RULE;
      return new LARS([{ params: [ps[0], ps[2]] }, { params: [ps[1]], trustRatioMask: false, lr: 0.02 }], o);
    },
    scalar: (sizes) => {
      // The groups reorder the params: W, zero, then b.
      const inner = larsScalar({ ...LARS_RULE, masks: [true, true, false], lrs: [0.5, 0.5, 0.02] }, [sizes[0], sizes[2], sizes[1]]);
      return (ps, gs, t) => inner([ps[0], ps[2], ps[1]], [gs[0], gs[2], gs[1]], t);
    },
  },
  {
    name: 'LARS, momentum 0, no weight decay',
    make: (ps) => new LARS(ps, { lr: 2, momentum: 0 }),
    scalar: (sizes) => larsScalar({ lr: 2, weightDecay: 0, trustCoefficient: 0.001, eps: 0, momentum: 0, nesterov: false, masks: [true, true, true] }, sizes),
  },
  {
    name: 'ScheduleFreeAdamW, warm-up 10, weight decay, b1 0.95, b2 0.99, eps 1e-6, weightLrPower 1',
    make: (ps) => new ScheduleFreeAdamW(ps, adamwOptions(SFA_RULE)),
    scalar: (sizes) => scheduleFreeScalar(SFA_RULE, sizes),
    diag: true,
  },
  {
    name: 'ScheduleFreeSGD, warm-up 5, weight decay, b1 0.8',
    make: (ps) => new ScheduleFreeSGD(ps, SFS_RULE),
    scalar: (sizes) => scheduleFreeScalar(SFS_RULE, sizes),
    diag: true,
  },
  {
    name: 'ScheduleFreeSGD, b1 1 (x = y: no interpolation)',
    make: (ps) => new ScheduleFreeSGD(ps, { lr: 0.005, b1: 1 }),
    scalar: (sizes) => scheduleFreeScalar({ lr: 0.005, warmupSteps: 0, b1: 1, weightDecay: 0, weightLrPower: 2 }, sizes),
    diag: true,
  },
];

const DIAG_PROBLEM = SFA_FILE.problem;

describe.each(backendRows)('LAMB, LARS and the schedule-free pair against optax formulas (%s)', (_name, backend) => {
  useBackend(backend);
  for (const dtype of ['float64', 'float32'] as const) {
    it.each(CASES)(`$name, ${dtype}: 100 steps match the scalar transcription`, ({ make, scalar, diag }) => {
      const C = dtype === 'float32' ? Float32Array : Float64Array;
      const ps = diag ? [param(C.from(DIAG_PROBLEM.w0), 'w')] : caseParams(C);
      const opt = make(ps);
      const step = scalar(ps.map((p) => p.data.length));
      const qs = ps.map((p) => Float64Array.from(p.data));
      let worst = 0;
      for (let t = 1; t <= 100; t++) {
        if (diag) fillGrad(DIAG_PROBLEM as never, ps[0].data, ps[0].grad);
        else caseGrads(ps);
        // The transcription takes the same gradients, from the same (possibly float32) point.
        step(qs, ps.map((p) => p.grad), t);
        opt.step();
        worst = Math.max(worst, ...ps.map((p, k) => maxAbsDiff(p.data, qs[k])));
        if (dtype === 'float32') ps.forEach((p, k) => qs[k].set(p.data)); // float32 rounding would compound
      }
      expect(worst).toBeLessThanOrEqual(dtype === 'float32' ? 1e-5 : 1e-13);
    });
  }

  it('the evaluation point against the transcription, float64 and float32', () => {
    for (const C of [Float64Array, Float32Array]) {
      const w = param(C.from(DIAG_PROBLEM.w0), 'w');
      const opt = new ScheduleFreeAdamW([w], adamwOptions(SFA_RULE));
      const rule = scheduleFreeScalar(SFA_RULE, [7]);
      const q = Float64Array.from(w.data);
      for (let t = 1; t <= 30; t++) {
        fillGrad(DIAG_PROBLEM as never, w.data, w.grad);
        rule([q], [w.grad], t);
        opt.step();
        const x = rule.x(0, q);
        opt.eval();
        expect(maxAbsDiff(w.data, x)).toBeLessThanOrEqual(C === Float32Array ? 1e-5 : 1e-13);
        opt.train();
        if (C === Float32Array) q.set(w.data);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Behaviour: train/eval, warm-up, refusals, state dicts, validation

function diagParam(C: typeof Float32Array | typeof Float64Array = Float64Array, name = 'w'): Param {
  return param(C.from(DIAG_PROBLEM.w0), name);
}

describe.each(backendRows)('schedule-free: train and eval (%s)', (_name, backend) => {
  useBackend(backend);
  const MAKERS = [
    ['ScheduleFreeAdamW', (ps: Param[]) => new ScheduleFreeAdamW(ps, { lr: 0.02, weightDecay: 0.01 })],
    ['ScheduleFreeSGD', (ps: Param[]) => new ScheduleFreeSGD(ps, { lr: 0.005, warmupSteps: 3 })],
  ] as const;

  it.each(MAKERS)('%s: eval() puts x in the params, train() puts y back bit for bit; both are idempotent', (_n, make) => {
    const w = diagParam();
    const v = diagParam(Float32Array, 'v');
    const opt = make([w, v]);
    expect(opt.mode).toBe('train');
    // Before any step there is no state: x = y, nothing moves.
    const fresh = [bytesOf(w.data), bytesOf(v.data)];
    opt.eval();
    expect([bytesOf(w.data), bytesOf(v.data)]).toEqual(fresh);
    opt.train();
    for (let t = 0; t < 5; t++) {
      fillGrad(DIAG_PROBLEM as never, w.data, w.grad);
      fillGrad(DIAG_PROBLEM as never, v.data, v.grad);
      opt.step();
    }
    const y = [bytesOf(w.data), bytesOf(v.data)];
    const y0 = Float64Array.from(w.data);
    const z = opt.stateDict().state.w.z as Float64Array;
    const b1 = opt.paramGroups[0].b1;
    expect(opt.eval()).toBe(opt);
    expect(opt.mode).toBe('eval');
    // optax.contrib.schedule_free_eval_params: (y − (1 − b1)·z)/b1, which XLA computes as ·(1/b1).
    expect(Array.from(w.data)).toEqual(Array.from(y0, (yi, i) => (yi - (1 - b1) * z[i]) * (1 / b1)));
    expect(bytesOf(w.data)).not.toEqual(y[0]);
    const x = [bytesOf(w.data), bytesOf(v.data)];
    opt.eval();
    expect([bytesOf(w.data), bytesOf(v.data)]).toEqual(x);
    expect(opt.train()).toBe(opt);
    expect(opt.mode).toBe('train');
    expect([bytesOf(w.data), bytesOf(v.data)]).toEqual(y);
    opt.train();
    expect([bytesOf(w.data), bytesOf(v.data)]).toEqual(y);
  });

  it.each(MAKERS)('%s: evaluating along the way does not change the training run', (_n, make) => {
    const a = diagParam();
    const b = diagParam();
    const optA = make([a]);
    const optB = make([b]);
    for (let t = 0; t < 20; t++) {
      fillGrad(DIAG_PROBLEM as never, a.data, a.grad);
      fillGrad(DIAG_PROBLEM as never, b.data, b.grad);
      optA.step();
      optB.step();
      if (t % 3 === 0) {
        optB.eval();
        b.data[0] = 123; // written while evaluating: dropped by train()
        optB.train();
      }
    }
    expect(bytesOf(b.data)).toEqual(bytesOf(a.data));
    expect(snapshot([b], optB)).toEqual(snapshot([a], optA));
  });

  it.each(MAKERS)('%s: step() in eval mode is refused before the hooks and the closure run, and changes nothing', (_n, make) => {
    const w = diagParam();
    const opt = make([w]);
    fillGrad(DIAG_PROBLEM as never, w.data, w.grad);
    opt.step();
    opt.eval();
    let called = 0;
    opt.registerStepPreHook(() => void called++);
    const before = snapshot([w], opt);
    const err = errorOf(() => opt.step(() => ++called));
    expect(err).toBeInstanceOf(OptimStateError);
    expect((err as Error).message).toMatch(/\.step\(\): the params hold the evaluation point x \(eval\(\) was called\); call train\(\) first/);
    expect(called).toBe(0);
    expect(snapshot([w], opt)).toEqual(before);
    opt.train();
    opt.step();
    expect(called).toBe(1);
  });

  it.each(MAKERS)('%s: eval() and train() refuse a param whose data no longer fits, changing nothing', (_n, make) => {
    const w = diagParam();
    const u = diagParam(Float64Array, 'u');
    const opt = make([w, u]);
    fillGrad(DIAG_PROBLEM as never, w.data, w.grad);
    fillGrad(DIAG_PROBLEM as never, u.data, u.grad);
    opt.step();
    const data = u.data;
    u.data = new Float64Array(3);
    const before = bytesOf(w.data);
    expect(() => opt.eval()).toThrow(OptimRangeError);
    expect(() => opt.eval()).toThrow(/eval\(\): paramGroups\[0\]: param "u": data has length 3 but its state z 7/);
    expect(bytesOf(w.data)).toEqual(before);
    expect(opt.mode).toBe('train');
    u.data = Float32Array.from(data) as unknown as Float64Array;
    expect(() => opt.eval()).toThrow(OptimTypeError);
    u.data = data;
    opt.eval();
    u.data = new Float64Array(2);
    expect(() => opt.train()).toThrow(/train\(\): param "u" has data a Float64Array of length 2 but its training point y is a Float64Array of length 7; nothing was changed/);
    expect(opt.mode).toBe('eval');
    u.data = data;
    opt.train();
    expect(opt.mode).toBe('train');
  });

  it.each(MAKERS)('%s: state dicts round trip bit for bit, in train and in eval mode', (_n, make) => {
    for (const evalMode of [false, true]) {
      const w = diagParam();
      const v = diagParam(Float32Array, 'v');
      const ref = [diagParam(), diagParam(Float32Array, 'v')];
      const opt = make([w, v]);
      const optRef = make(ref);
      const grads = (ps: Param[]) => ps.forEach((p) => fillGrad(DIAG_PROBLEM as never, p.data, p.grad));
      for (let t = 0; t < 7; t++) {
        grads([w, v]);
        opt.step();
        grads(ref);
        optRef.step();
      }
      if (evalMode) opt.eval();
      const sd = opt.stateDict() as ScheduleFreeStateDict;
      expect(sd.mode).toBe(evalMode ? 'eval' : undefined);
      expect('y' in sd.state.w).toBe(evalMode);
      // Restore into a fresh optimizer and params (as from a checkpoint: the params as saved).
      const w2 = param(w.data.slice(), 'w');
      const v2 = param(v.data.slice(), 'v');
      const opt2 = make([w2, v2]);
      const report = opt2.loadStateDict(structuredClone(sd));
      expect(report.matched.sort()).toEqual(['v', 'w']);
      expect(opt2.mode).toBe(evalMode ? 'eval' : 'train');
      expect(opt2.stateDict()).toEqual(sd);
      opt2.train();
      for (let t = 0; t < 5; t++) {
        grads([w2, v2]);
        opt2.step();
        grads(ref);
        optRef.step();
      }
      expect([bytesOf(w2.data), bytesOf(v2.data)]).toEqual([bytesOf(ref[0].data), bytesOf(ref[1].data)]);
      expect(opt2.stateDict()).toEqual(optRef.stateDict());
    }
  });

  it('a state dict that does not fit is refused, changing nothing', () => {
    const w = diagParam();
    const opt = new ScheduleFreeAdamW([w]);
    fillGrad(DIAG_PROBLEM as never, w.data, w.grad);
    opt.step();
    const trainDict = opt.stateDict() as ScheduleFreeStateDict;
    opt.eval();
    const evalDict = opt.stateDict() as ScheduleFreeStateDict;
    opt.train();
    const before = snapshot([w], opt);
    const { y: _y, ...noY } = evalDict.state.w;
    const cases: Array<[unknown, RegExp]> = [
      [{ ...trainDict, mode: 'train' }, /stateDict\.mode must be 'eval' or absent, got "train"/],
      [{ ...evalDict, state: { w: noY } }, /stateDict\.state\["w"\]: missing "y"/],
      [{ ...trainDict, state: { w: { ...trainDict.state.w, y: new Float64Array(7) } } }, /\.y: a training point is saved only in eval mode/],
      [{ ...evalDict, state: { w: { ...evalDict.state.w, y: new Float32Array(7) } } }, /\.y is a Float32Array but param "w" is a Float64Array/],
      [{ ...evalDict, state: { w: { ...evalDict.state.w, y: new Float64Array(3) } } }, /\.y has length 3 but param "w" has length 7/],
      [{ ...evalDict, state: { w: { ...evalDict.state.w, weightSum: 'a' } } }, /weightSum must be a finite number/],
    ];
    for (const [dict, message] of cases) {
      const err = errorOf(() => opt.loadStateDict(dict as ScheduleFreeStateDict));
      expect(err).toBeInstanceOf(OptimStateError);
      expect((err as Error).message).toMatch(message);
      expect(snapshot([w], opt)).toEqual(before);
      expect(opt.mode).toBe('train');
    }
  });

  it('warmupSteps 0 is no warm-up (optax\'s lr 0 quirk is not copied); k > 0 moves from the first step', () => {
    const a = diagParam();
    const b = diagParam();
    const none = new ScheduleFreeSGD([a], { lr: 0.01 });
    const zero = new ScheduleFreeSGD([b], { lr: 0.01, warmupSteps: 0 });
    for (let t = 0; t < 5; t++) {
      fillGrad(DIAG_PROBLEM as never, a.data, a.grad);
      fillGrad(DIAG_PROBLEM as never, b.data, b.grad);
      none.step();
      zero.step();
    }
    expect(bytesOf(b.data)).toEqual(bytesOf(a.data));
    expect(Array.from(a.data)).not.toEqual(DIAG_PROBLEM.w0);
    const c = diagParam();
    const warm = new ScheduleFreeAdamW([c], { lr: 0.01, warmupSteps: 4 });
    fillGrad(DIAG_PROBLEM as never, c.data, c.grad);
    warm.step();
    expect(Array.from(c.data)).not.toEqual(DIAG_PROBLEM.w0);
    const st = warm.stateDict().state.w;
    expect(Math.abs((st.maxLr as number) - 0.0025)).toBeLessThanOrEqual(1e-18);
    expect(st.weightSum).toBe((st.maxLr as number) ** 2);
  });

  it('an lr changed between steps (a scheduler) enters maxLr and the weights', () => {
    const w = diagParam();
    const opt = new ScheduleFreeSGD([w], { lr: 0.01 });
    for (const lr of [0.01, 0.03, 0.02]) {
      opt.paramGroups[0].lr = lr;
      fillGrad(DIAG_PROBLEM as never, w.data, w.grad);
      opt.step();
    }
    const st = opt.stateDict().state.w;
    expect(st.maxLr).toBe(0.03);
    expect(st.weightSum).toBe(0.01 ** 2 + 0.03 ** 2 + 0.03 ** 2);
    expect(st.step).toBe(3);
  });
});

describe.each(backendRows)('LAMB and LARS: steps, state and policies (%s)', (_name, backend) => {
  useBackend(backend);
  const MAKERS = [
    ['LAMB', (ps: Param[], o: object = {}) => new LAMB(ps, { lr: 0.01, weightDecay: 0.01, ...o })],
    ['LARS', (ps: Param[], o: object = {}) => new LARS(ps, { lr: 0.5, weightDecay: 1e-3, nesterov: true, ...o })],
  ] as const;

  it.each(MAKERS)('%s: a state dict round trips bit for bit, and a resumed run equals the uninterrupted one', (name, make) => {
    const ps = caseParams(Float64Array).concat([param(Float32Array.from([0.5, -1, 2]), 'f')]);
    const ref = caseParams(Float64Array).concat([param(Float32Array.from([0.5, -1, 2]), 'f')]);
    const grads = (q: Param[]) => {
      caseGrads(q);
      for (let i = 0; i < 3; i++) q[3].grad[i] = q[3].data[i] - i;
    };
    const opt = make(ps);
    const optRef = make(ref);
    for (let t = 0; t < 6; t++) {
      grads(ps);
      opt.step();
      grads(ref);
      optRef.step();
    }
    const sd = opt.stateDict();
    expect(Object.keys(sd.state.W).sort()).toEqual(name === 'LAMB' ? ['mu', 'nu', 'step'] : ['trace']);
    const copy = ps.map((p) => param(p.data.slice() as FloatArray, p.name));
    const opt2 = make(copy);
    opt2.loadStateDict(structuredClone(sd));
    expect(opt2.stateDict()).toEqual(sd);
    for (let t = 0; t < 6; t++) {
      grads(copy);
      opt2.step();
      grads(ref);
      optRef.step();
    }
    expect(copy.map((p) => bytesOf(p.data))).toEqual(ref.map((p) => bytesOf(p.data)));
    expect(opt2.stateDict()).toEqual(optRef.stateDict());
  });

  it.each(MAKERS)('%s: nonFinite error and skip change nothing (no state made by a refused first step); ignore makes the whole param NaN', (_n, make) => {
    const ps = caseParams(Float64Array);
    const opt = make(ps);
    caseGrads(ps);
    ps[1].grad[2] = NaN;
    const before = snapshot(ps, opt);
    const err = errorOf(() => opt.step());
    expect(err).toBeInstanceOf(NonFiniteError);
    expect((err as NonFiniteError).param).toBe('b');
    expect(snapshot(ps, opt)).toEqual(before);
    expect(opt.stateDict().state).toEqual({});
    const skipping = make(ps, { nonFinite: 'skip' });
    expect(skipping.step(() => 7)).toBe(7);
    expect(skipping.skippedSteps).toBe(1);
    expect(snapshot(ps, skipping)).toEqual(before);
    const ignoring = make(ps, { nonFinite: 'ignore' });
    ignoring.step();
    expect(Array.from(ps[1].data).every(Number.isNaN)).toBe(true);
    expect(Array.from(ps[0].data).some(Number.isNaN)).toBe(false);
  });

  it('LAMB: two kernel passes per param, one for a zero param (r = 1); its work buffer is not in the state', () => {
    const ps = caseParams(Float64Array);
    const opt = new LAMB(ps, { lr: 0.01, weightDecay: 0.1 });
    const { direction, apply, wd } = LAMB_KERNEL.flag;
    caseGrads(ps);
    const first = captureSteps(() => opt.step()).map((c) => c.flags & LAMB_KERNEL.allFlags);
    expect(first).toEqual([wd | direction, apply, wd | direction, apply, wd]);
    const g = Float64Array.from(ps[2].grad);
    // The zero param, in one pass with r = 1: p = 0 + (−γ)·u, u = m̂/(√v̂ + ε) + λ·0.
    for (let i = 0; i < 5; i++) {
      const m = (1 - 0.9) * g[i] + 0.9 * 0;
      const v = (1 - 0.999) * (g[i] * g[i]) + 0.999 * 0;
      const u = m / (1 - 0.9) / (Math.sqrt(v / (1 - 0.999) + 0) + 1e-6) + 0.1 * 0;
      expect(ps[2].data[i]).toBe(0 + -0.01 * (u * 1));
    }
    caseGrads(ps);
    expect(captureSteps(() => opt.step()).length).toBe(6);
    expect(Object.keys(opt.stateDict().state.zero).sort()).toEqual(['mu', 'nu', 'step']);
  });

  it.each(MAKERS)('%s: refuses bfloat16 state, naming the option', (name, make) => {
    expect(() => make([param(new Float32Array(3))], { stateDtype: 'bfloat16' })).toThrow(OptimRangeError);
    expect(() => make([param(new Float32Array(3))], { stateDtype: 'bfloat16' })).toThrow(
      new RegExp(`${name}\\(params, options\\): options\\.stateDtype must be 'param'`),
    );
  });
});

describe('validation of the options these four add', () => {
  const p = () => param(new Float64Array(3), 'p');
  it.each([
    ['ScheduleFreeSGD warmupSteps 2.5', () => new ScheduleFreeSGD([p()], { warmupSteps: 2.5 }), OptimRangeError, /options\.warmupSteps must be an integer >= 0, got 2\.5/],
    ['ScheduleFreeAdamW warmupSteps -1', () => new ScheduleFreeAdamW([p()], { warmupSteps: -1 }), OptimRangeError, /Invalid warmup_steps value: -1 \(options\.warmupSteps must be a finite number >= 0\)/],
    ['ScheduleFreeSGD warmupSteps "3"', () => new ScheduleFreeSGD([p()], { warmupSteps: '3' as never }), OptimTypeError, /options\.warmupSteps must be a number/],
    ['ScheduleFreeAdamW b1 0', () => new ScheduleFreeAdamW([p()], { b1: 0 }), OptimRangeError, /Invalid b1 value: 0 \(options\.b1 must be in \(0, 1\]: the evaluation point/],
    ['ScheduleFreeSGD b1 1.5', () => new ScheduleFreeSGD([p()], { b1: 1.5 }), OptimRangeError, /options\.b1 must be in \[0, 1\]/],
    ['ScheduleFreeSGD weightLrPower -1', () => new ScheduleFreeSGD([p()], { weightLrPower: -1 }), OptimRangeError, /Invalid weight_lr_power value: -1 \(options\.weightLrPower/],
    ['ScheduleFreeAdamW b2 1.5', () => new ScheduleFreeAdamW([p()], { b2: 1.5 }), OptimRangeError, /options\.b2 must be in \[0, 1\]/],
    ['ScheduleFreeSGD bfloat16', () => new ScheduleFreeSGD([param(new Float32Array(2))], { stateDtype: 'bfloat16' }), OptimRangeError, /ScheduleFreeSGD\(params, options\): options\.stateDtype must be 'param'/],
    ['ScheduleFreeSGD b2 (AdamW only)', () => new ScheduleFreeSGD([p()], { b2: 0.9 } as never), OptimTypeError, /unknown option "b2"/],
    ['LARS without lr', () => new LARS([p()]), OptimTypeError, /LARS: paramGroups\[0\]\.lr is required/],
    ['LARS trustCoefficient -1', () => new LARS([p()], { lr: 1, trustCoefficient: -1 }), OptimRangeError, /Invalid trust_coefficient value: -1 \(options\.trustCoefficient/],
    ['LARS trustRatioMask 1', () => new LARS([p()], { lr: 1, trustRatioMask: 1 as never }), OptimTypeError, /options\.trustRatioMask must be a boolean, got number/],
    ['LARS momentum NaN', () => new LARS([p()], { lr: 1, momentum: NaN }), OptimRangeError, /Invalid momentum value: NaN/],
    ['LAMB epsRoot -1', () => new LAMB([p()], { epsRoot: -1 }), OptimRangeError, /Invalid eps_root value: -1 \(options\.epsRoot/],
    ['LAMB mask (a group with weightDecay 0 here)', () => new LAMB([p()], { mask: false } as never), OptimTypeError, /unknown option "mask"/],
  ] as const)('%s is refused, naming it', (_n, make, cls, message) => {
    const err = errorOf(make);
    expect(err).toBeInstanceOf(cls);
    expect((err as Error).message).toMatch(message);
  });

  it('a group may set warmupSteps, b1 and the masks on its own; a bad value there is refused at the step, changing nothing', () => {
    const w = diagParam();
    const u = diagParam(Float64Array, 'u');
    const opt = new ScheduleFreeSGD([{ params: [w] }, { params: [u], warmupSteps: 4, b1: 0.5 }], { lr: 0.01 });
    fillGrad(DIAG_PROBLEM as never, w.data, w.grad);
    fillGrad(DIAG_PROBLEM as never, u.data, u.grad);
    opt.step();
    const before = snapshot([w, u], opt);
    opt.paramGroups[1].warmupSteps = 1.5;
    expect(() => opt.step()).toThrow(/paramGroups\[1\]\.warmupSteps must be an integer >= 0, got 1\.5/);
    opt.paramGroups[1].warmupSteps = 4;
    opt.paramGroups[1].b1 = 0;
    expect(() => opt.step()).toThrow(/paramGroups\[1\]\.b1 must be in \(0, 1\]/);
    expect(snapshot([w, u], opt)).toEqual(before);
  });
});
