/**
 * Lookahead and MultiSteps (src/optim/lookahead.ts, src/optim/multi-steps.ts) against optax 0.2.8
 * (test/golden/optax-0.2.8/{lookahead_adam,multi_steps_adam}.json, see test/golden/README.md),
 * on every backend.
 *
 * - Open loop (the recorded gradients): the params (Lookahead: the fast weights, `trajectory`, and
 *   the slow ones, `slow_trajectory`) at every step within 1e-15 (measured ≤ 4.4e-16 on both
 *   backends), the inner Adam's count exactly and mu, nu within 1e-15 relative (measured
 *   ≤ 2.0e-16), the counters exactly, and MultiSteps' float32 accumulator bit for bit (it depends on
 *   the gradients alone). Closed loop (our own gradients): within the golden README's 1e-13
 *   (measured ≤ 4.4e-16). What is left against optax is our Adam (torch's arithmetic) against
 *   optax's.
 * - Rules off the recorded path against transcriptions written here, independently of src/: the
 *   same inner optimizer run bare beside the wrapper ("the twin") gives the inner step, and the
 *   transcription adds the wrapper's arithmetic (Lookahead's synchronisation with α = 0.3 in both
 *   `afterSync` forms, float64 and float32; MultiSteps with gradients that vary inside a group,
 *   mean and sum, float32 and float64 accumulators beside float32 and float64 params, a schedule
 *   function, k = 1): bit for bit.
 * - State dicts (resume through a checkpoint file equals the uninterrupted run bit for bit, nested
 *   wrappers included), refusals (nothing changes), validation, schedulers and hooks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FloatArray } from '../src/backend/types.js';
import { loadCheckpoint, saveCheckpoint } from '../src/checkpoint.js';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../src/errors.js';
import { LBFGS } from '../src/optim/lbfgs.js';
import { Adam, Lookahead, MultiSteps, SGD, param } from '../src/optim/index.js';
import type { LookaheadStateDict, MultiStepsStateDict, Param, StateDict } from '../src/optim/index.js';
import { StepLR } from '../src/schedule/index.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { fillGrad, maxAbsDiff, maxScaledDiff, readGolden } from './helpers/golden.js';
import { bytesOf, errorOf } from './helpers/snapshot.js';

interface WrapperGolden {
  id: string;
  problem: { a: number[]; c: number[]; w0: number[] };
  trajectory: number[][];
  slow_trajectory?: number[][];
  grads: number[][];
  state_at_checkpoints: Record<string, Record<string, number | number[]>>;
}

const LA = readGolden<WrapperGolden>('optax-0.2.8/lookahead_adam.json');
const MS = readGolden<WrapperGolden>('optax-0.2.8/multi_steps_adam.json');
const PROBLEM = LA.problem;
/** The README's suggested bound for these files (float64; their ±1-ulp sensitivity is ≤ 2.2e-16). */
const TOL = 1e-13;
/** Open loop (the recorded gradients), tighter: measured ≤ 4.4e-16 (params), 4.9e-16 (state, relative). */
const OPEN = 1e-15;

const maxOver = (got: number[][], want: number[][]) => Math.max(...got.map((row, t) => maxAbsDiff(row, want[t])));
const innerState = (sd: { inner: unknown }) => (sd.inner as StateDict).state.w as Record<string, number | Float64Array> | undefined;

/** optax.lookahead(optax.adam(0.01), sync_period=5, slow_step_size=0.5), as the file records it. */
function runLookahead(openLoop: boolean, afterSync: 'fast' | 'slow') {
  const w = param(Float64Array.from(PROBLEM.w0), 'w');
  const opt = new Lookahead(new Adam([w], { lr: 0.01 }), { syncPeriod: 5, slowStepSize: 0.5, afterSync });
  const fast: number[][] = [];
  const slow: number[][] = [];
  const states: Record<string, LookaheadStateDict> = {};
  for (let t = 1; t <= LA.trajectory.length; t++) {
    if (openLoop) w.grad.set(LA.grads[t - 1]);
    else fillGrad(PROBLEM, w.data, w.grad);
    opt.step();
    fast.push(Array.from(w.data));
    slow.push(Array.from(opt.slowParams[0].data));
    if (String(t) in LA.state_at_checkpoints) states[t] = opt.stateDict();
  }
  return { fast, slow, states };
}

/** optax.MultiSteps(optax.adam(0.01), every_k_schedule=4): float32 accumulator, mean. */
function runMultiSteps(openLoop: boolean) {
  const w = param(Float64Array.from(PROBLEM.w0), 'w');
  const opt = new MultiSteps(new Adam([w], { lr: 0.01 }), { everyKSchedule: 4 });
  const trajectory: number[][] = [];
  const states: Record<string, MultiStepsStateDict> = {};
  const updated: boolean[] = [];
  for (let t = 1; t <= MS.trajectory.length; t++) {
    if (openLoop) w.grad.set(MS.grads[t - 1]);
    else fillGrad(PROBLEM, w.data, w.grad);
    opt.step();
    trajectory.push(Array.from(w.data));
    updated.push(opt.hasUpdated);
    if (String(t) in MS.state_at_checkpoints) states[t] = opt.stateDict();
  }
  return { trajectory, states, updated };
}

/** Compares the inner Adam's state with optax's `count`, `mu`, `nu` leaves under `prefix`. */
function expectAdamState(st: Record<string, number | Float64Array> | undefined, want: Record<string, number | number[]>, prefix: string, t: string) {
  const count = want[`${prefix}.count`] as number;
  const mu = want[`${prefix}.mu`] as number[];
  const nu = want[`${prefix}.nu`] as number[];
  // Before the inner optimizer's first update our state does not exist yet: count 0, zeros.
  expect(st?.step ?? 0, `count at ${t}`).toBe(count);
  expect(maxScaledDiff((st?.expAvg as Float64Array | undefined) ?? new Float64Array(7), mu), `mu at ${t}`).toBeLessThanOrEqual(OPEN);
  expect(maxScaledDiff((st?.expAvgSq as Float64Array | undefined) ?? new Float64Array(7), nu), `nu at ${t}`).toBeLessThanOrEqual(OPEN);
}

describe.each(backendRows)('optax 0.2.8 wrappers (%s)', (_name, backend) => {
  useBackend(backend);

  for (const afterSync of ['fast', 'slow'] as const) {
    it(`lookahead_adam, afterSync '${afterSync}': open loop, fast and slow weights and state`, () => {
      const { fast, slow, states } = runLookahead(true, afterSync);
      expect(maxOver(fast, LA.trajectory)).toBeLessThanOrEqual(OPEN);
      expect(maxOver(slow, LA.slow_trajectory!)).toBeLessThanOrEqual(OPEN);
      for (const [t, want] of Object.entries(LA.state_at_checkpoints)) {
        expect(states[t].stepsSinceSync, `steps_since_sync at ${t}`).toBe(want['.steps_since_sync']);
        expectAdamState(innerState(states[t]), want, '.fast_state[0]', t);
      }
    });
    it(`lookahead_adam, afterSync '${afterSync}': closed loop`, () => {
      const { fast, slow } = runLookahead(false, afterSync);
      expect(maxOver(fast, LA.trajectory)).toBeLessThanOrEqual(TOL);
      expect(maxOver(slow, LA.slow_trajectory!)).toBeLessThanOrEqual(TOL);
    });
  }

  it('multi_steps_adam: open loop, params at every micro step and state', () => {
    const { trajectory, states, updated } = runMultiSteps(true);
    expect(maxOver(trajectory, MS.trajectory)).toBeLessThanOrEqual(OPEN);
    expect(updated).toEqual(trajectory.map((_, i) => (i + 1) % 4 === 0));
    for (const [t, want] of Object.entries(MS.state_at_checkpoints)) {
      const sd = states[t];
      expect(sd.miniStep, `mini_step at ${t}`).toBe(want['.mini_step']);
      expect(sd.gradientStep, `gradient_step at ${t}`).toBe(want['.gradient_step']);
      expectAdamState(innerState(sd), want, '.inner_opt_state[0]', t);
      // The float32 accumulator depends on the gradients alone: bit for bit (optax's reset is ±0).
      expect(sd.acc.w).toBeInstanceOf(Float32Array);
      expect(Array.from(sd.acc.w).map((x) => x + 0), `acc_grads at ${t}`).toEqual((want['.acc_grads'] as number[]).map((x) => x + 0));
    }
  });

  it('multi_steps_adam: closed loop', () => {
    const { trajectory } = runMultiSteps(false);
    expect(maxOver(trajectory, MS.trajectory)).toBeLessThanOrEqual(TOL);
  });
});

// ---------------------------------------------------------------------------------------------
// Transcriptions: the inner step from a bare twin optimizer, the wrapper's rule written here.

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;
const f = Math.fround;

/**
 * The diag problem's gradient at any length (a and c repeated), changed from step to step even
 * where the params do not (MultiSteps' micro steps).
 */
function variedGrad(w: FloatArray, g: FloatArray, t: number): void {
  const { a, c } = PROBLEM;
  for (let i = 0; i < g.length; i++) {
    const gi = a[i % 7] * (w[i] - c[i % 7]) + 0.1 * Math.cos(w[i]);
    g[i] = gi * (1 + 0.37 * Math.sin(3 * t + i)) + 0.01 * Math.cos(t * (i + 1));
  }
}

/** A starting point of `n` elements: the problem's w0 repeated, moved a little per element. */
function start(C: Ctor, n: number): FloatArray {
  const w = new C(n);
  for (let i = 0; i < n; i++) w[i] = PROBLEM.w0[i % 7] + 0.013 * i;
  return w;
}

/** `got` holds the bits of `want` (same dtype and length); else names the first element that differs. */
function sameBits(got: FloatArray, want: FloatArray): void {
  const x = bytesOf(got);
  const y = bytesOf(want);
  const byte = x.length === y.length ? x.findIndex((b, j) => b !== y[j]) : 0;
  const el = byte < 0 ? -1 : Math.floor(byte / got.BYTES_PER_ELEMENT);
  expect(el, el < 0 ? '' : `first element that differs: ${got[el]} against ${want[el]}`).toBe(-1);
}

describe.each(backendRows)('wrappers against transcriptions (%s)', (_name, backend) => {
  useBackend(backend);

  for (const C of [Float64Array, Float32Array] as Ctor[]) {
    for (const afterSync of ['fast', 'slow'] as const) {
      it(`Lookahead(Adam), syncPeriod 3, α 0.3, afterSync '${afterSync}', ${C.name}: bit for bit over 150 steps`, () => {
        const alpha = 0.3;
        // 112 elements over 150 steps: enough element-syncs that optax's order of operations for
        // 'fast' gives other bits than the slow weights, and than the same sum in another order.
        const w = param(start(C, 112), 'w');
        const v = param(start(C, 112), 'v');
        const opt = new Lookahead(new Adam([w], { lr: 0.02 }), { syncPeriod: 3, slowStepSize: alpha, afterSync });
        const twin = new Adam([v], { lr: 0.02 });
        const s = start(C, 112);
        let differsFromSlow = 0;
        let orderMatters = 0;
        for (let t = 1; t <= 150; t++) {
          variedGrad(w.data, w.grad, t);
          v.grad.set(w.grad);
          v.data.set(w.data);
          const before = w.data.slice();
          opt.step();
          twin.step();
          const pa = v.data; // the inner step, from the same fast weights, state and gradient
          const want = pa.slice();
          if (t % 3 === 0) {
            for (let i = 0; i < s.length; i++) {
              let other: number;
              if (C === Float64Array) {
                const d = pa[i] - s[i];
                s[i] = s[i] + alpha * d;
                // optax: fast + (u − (1 − α)·d), u the inner update
                want[i] = afterSync === 'slow' ? s[i] : before[i] + (pa[i] - before[i] - (1 - alpha) * d);
                other = pa[i] - (1 - alpha) * d;
              } else {
                const d = f(pa[i] - s[i]);
                s[i] = f(s[i] + f(f(alpha) * d));
                want[i] = afterSync === 'slow' ? s[i] : f(before[i] + f(f(pa[i] - before[i]) - f(f(1 - alpha) * d)));
                other = f(pa[i] - f(f(1 - alpha) * d));
              }
              if (want[i] !== s[i]) differsFromSlow++;
              if (want[i] !== other) orderMatters++;
            }
          }
          sameBits(w.data, want);
          sameBits(opt.slowParams[0].data, s);
          expect(opt.stepsSinceSync).toBe(t % 3);
        }
        if (afterSync === 'fast') {
          expect(differsFromSlow).toBeGreaterThan(0);
          expect(orderMatters).toBeGreaterThan(0);
        } else {
          expect(differsFromSlow).toBe(0);
        }
      });
    }
  }

  const MS_CASES = [
    { name: 'k 4, mean, float32 accumulator, Float64 params (optax defaults)', C: Float64Array, acc: 'float32', mean: true, k: 4 as const },
    { name: 'k 3, mean, float32 accumulator, Float32 params', C: Float32Array, acc: 'float32', mean: true, k: 3 as const },
    { name: 'k 3, sum, float32 accumulator, Float32 params', C: Float32Array, acc: 'float32', mean: false, k: 3 as const },
    { name: 'k 5, mean, float64 accumulator, Float32 params', C: Float32Array, acc: 'float64', mean: true, k: 5 as const },
    { name: 'k 2, sum, float32 accumulator, Float64 params', C: Float64Array, acc: 'float32', mean: false, k: 2 as const },
    { name: 'k = 1 + gradientStep mod 3 (a schedule), mean, float64 accumulator, Float64 params', C: Float64Array, acc: 'float64', mean: true, k: 'schedule' as const },
    { name: 'k 1: the inner optimizer itself', C: Float64Array, acc: 'float32', mean: true, k: 1 as const },
  ] as const;

  it.each(MS_CASES)('MultiSteps(Adam), $name: gradients varying inside a group, bit for bit over 60 micro steps', ({ C, acc: accDtype, mean, k }) => {
    const w = param(start(C as Ctor, 49), 'w');
    const v = param(start(C as Ctor, 49), 'v');
    const schedule = (n: number) => 1 + (n % 3);
    const opt = new MultiSteps(new Adam([w], { lr: 0.02 }), {
      everyKSchedule: k === 'schedule' ? schedule : k,
      useGradMean: mean,
      accumulatorDtype: accDtype,
    });
    const twin = new Adam([v], { lr: 0.02 });
    const AccC = accDtype === 'float32' ? Float32Array : Float64Array;
    const acc = new AccC(49);
    const bothF32 = C === Float32Array && AccC === Float32Array;
    let n = 0;
    let updates = 0;
    for (let t = 1; t <= 60; t++) {
      variedGrad(w.data, w.grad, t);
      const g = w.grad.slice();
      const kNow = k === 'schedule' ? schedule(updates) : k;
      // The accumulated value, in the promoted precision (float32 only when both are float32).
      const a = Array.from(g, (gi, i) =>
        bothF32 ? (mean ? f(acc[i] + f(f(gi - acc[i]) / (n + 1))) : f(gi + acc[i])) : mean ? acc[i] + (gi - acc[i]) / (n + 1) : gi + acc[i],
      );
      const gradRef = w.grad;
      opt.step();
      expect(w.grad, "p.grad is the caller's array again").toBe(gradRef);
      sameBits(w.grad, g);
      if (n + 1 === kNow) {
        v.grad.set(a); // rounded to the grad's dtype, as optax's cast_like
        twin.step();
        acc.fill(0);
        n = 0;
        updates++;
        expect(opt.hasUpdated).toBe(true);
      } else {
        acc.set(a); // rounded to the accumulator's dtype
        n++;
        expect(opt.hasUpdated).toBe(false);
      }
      sameBits(w.data, v.data);
      const sd = opt.stateDict();
      sameBits(sd.acc.w, acc);
      expect([sd.miniStep, sd.gradientStep]).toEqual([n, updates]);
      const inner = innerState(sd);
      const bare = twin.stateDict().state.v as Record<string, number | Float64Array> | undefined;
      expect(inner?.step).toBe(bare?.step);
      if (bare !== undefined) {
        sameBits(inner!.expAvg as FloatArray, bare.expAvg as FloatArray);
        sameBits(inner!.expAvgSq as FloatArray, bare.expAvgSq as FloatArray);
      }
    }
    expect(updates).toBeGreaterThan(10);
  });

  it('MultiSteps: the k-th micro step hands the inner optimizer the float64 mean, not its float32 storage', () => {
    // SGD with lr 1 from 0 writes −grad exactly, so the params show what the inner step received.
    const w = param(new Float64Array(1), 'w');
    const opt = new MultiSteps(new SGD([w], { lr: 1 }), { everyKSchedule: 2 });
    w.grad[0] = 1 + 2 ** -30;
    opt.step();
    expect(opt.stateDict().acc.w[0]).toBe(1); // stored as float32
    w.grad[0] = 1 + 2 ** -40;
    opt.step();
    // 1 + ((1 + 2^-40) − 1)/2 in float64; its float32 rounding would be exactly 1.
    expect(w.data[0]).toBe(-(1 + 2 ** -41));
    // With a float64 accumulator the first gradient is kept whole.
    const x = param(new Float64Array(1), 'x');
    const opt64 = new MultiSteps(new SGD([x], { lr: 1 }), { everyKSchedule: 2, accumulatorDtype: 'float64' });
    x.grad[0] = 1 + 2 ** -30;
    opt64.step();
    x.grad[0] = 1 + 2 ** -40;
    opt64.step();
    expect(x.data[0]).toBe(-(1 + 2 ** -30 + (2 ** -40 - 2 ** -30) / 2));
  });
});

// ---------------------------------------------------------------------------------------------
// State dicts and checkpoints.

type Wrapper = Lookahead | MultiSteps;
interface Build {
  name: string;
  make: (w: Param, b: Param) => Wrapper;
}

const BUILDS: Build[] = [
  { name: 'Lookahead(Adam)', make: (w, b) => new Lookahead(new Adam([w, b], { lr: 0.02 }), { syncPeriod: 3, slowStepSize: 0.4 }) },
  { name: "Lookahead(Adam), afterSync 'slow'", make: (w, b) => new Lookahead(new Adam([w, b], { lr: 0.02 }), { syncPeriod: 4, slowStepSize: 0.5, afterSync: 'slow' }) },
  { name: 'MultiSteps(Adam)', make: (w, b) => new MultiSteps(new Adam([w, b], { lr: 0.02 }), { everyKSchedule: 3 }) },
  {
    name: 'MultiSteps(SGD momentum), schedule, float64 accumulator, sum',
    make: (w, b) => new MultiSteps(new SGD([{ params: [w] }, { params: [b], lr: 0.001 }], { lr: 0.01, momentum: 0.9 }), { everyKSchedule: (n: number) => 2 + (n % 2), accumulatorDtype: 'float64', useGradMean: false }),
  },
  {
    name: 'Lookahead(MultiSteps(Adam)) (nested)',
    make: (w, b) => new Lookahead(new MultiSteps(new Adam([w, b], { lr: 0.02 }), { everyKSchedule: 2 }), { syncPeriod: 5, slowStepSize: 0.5 }),
  },
];

function makeParams(): [Param, Param] {
  return [param(Float64Array.from(PROBLEM.w0), 'w'), param(new Float32Array([0.25, -0.5, 1.5]), 'b')];
}

function fill(w: Param, b: Param, t: number): void {
  variedGrad(w.data, w.grad, t);
  for (let i = 0; i < b.data.length; i++) b.grad[i] = f((b.data[i] - i) * (1 + 0.2 * Math.cos(t + i)));
}

/**
 * What a wrapper keeps, as bytes: params (and grads, unless `grads` is false), slow weights, the
 * state dict's arrays and numbers (the skip counters too, unless `skips` is false).
 */
function fingerprint(ps: Param[], opt: Wrapper, { grads = true, skips = true } = {}): unknown {
  const walk = (v: unknown): unknown =>
    ArrayBuffer.isView(v)
      ? Array.from(bytesOf(v as FloatArray))
      : Array.isArray(v)
        ? v.map(walk)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).filter(([k]) => skips || k !== 'skippedSteps').map(([k, x]) => [k, walk(x)]))
          : v;
  return {
    data: ps.map((p) => Array.from(bytesOf(p.data))),
    grad: grads ? ps.map((p) => Array.from(bytesOf(p.grad))) : null,
    slow: opt instanceof Lookahead ? opt.slowParams.map((p) => Array.from(bytesOf(p.data))) : null,
    state: walk(opt.stateDict()),
  };
}

describe.each(backendRows)('wrapper state dicts (%s)', (_name, backend) => {
  useBackend(backend);
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'optim-wrappers-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(BUILDS)('$name: resumed from a checkpoint file after 1..8 steps equals the uninterrupted run bit for bit', async ({ make }) => {
    for (const at of [1, 2, 5, 8]) {
      const [w, b] = makeParams();
      const ref = make(w, b);
      const [w2, b2] = makeParams();
      const run = make(w2, b2);
      for (let t = 1; t <= at; t++) {
        fill(w, b, t);
        ref.step();
        fill(w2, b2, t);
        run.step();
      }
      const file = path.join(dir, `resume-${at}.ckpt`);
      await saveCheckpoint(file, { tensors: { w: w2.data, b: b2.data }, optimizer: run.stateDict() });
      const [w3, b3] = [param(new Float64Array(7), 'w'), param(new Float32Array(3), 'b')];
      const resumed = make(w3, b3);
      await loadCheckpoint(file, { into: { tensors: { w: w3.data, b: b3.data }, optimizer: resumed } });
      expect(fingerprint([w3, b3], resumed, { grads: false })).toEqual(fingerprint([w, b], ref, { grads: false }));
      for (let t = at + 1; t <= at + 12; t++) {
        fill(w, b, t);
        ref.step();
        fill(w3, b3, t);
        resumed.step();
        expect(fingerprint([w3, b3], resumed), `step ${t}`).toEqual(fingerprint([w, b], ref));
      }
    }
  });

  it.each(BUILDS)('$name: stateDict() is a deep copy, loadStateDict() copies', ({ make }) => {
    const [w, b] = makeParams();
    const opt = make(w, b);
    for (let t = 1; t <= 4; t++) {
      fill(w, b, t);
      opt.step();
    }
    const sd = opt.stateDict();
    const kept = fingerprint([w, b], opt);
    const mutate = (v: unknown): void => {
      if (ArrayBuffer.isView(v)) (v as FloatArray).fill(123);
      else if (v !== null && typeof v === 'object') Object.values(v).forEach(mutate);
    };
    mutate(sd);
    expect(fingerprint([w, b], opt)).toEqual(kept);
    const sd2 = opt.stateDict();
    opt.loadStateDict(sd2 as never);
    mutate(sd2);
    expect(fingerprint([w, b], opt)).toEqual(kept);
  });

  it('loadStateDict refuses what does not fit, changing nothing', () => {
    const [w, b] = makeParams();
    const la = new Lookahead(new Adam([w, b], { lr: 0.02 }), { syncPeriod: 3, slowStepSize: 0.5 });
    const ms = new MultiSteps(new Adam([w, b], { lr: 0.02 }), { everyKSchedule: 3 });
    for (let t = 1; t <= 4; t++) {
      fill(w, b, t);
      la.step();
      ms.step();
    }
    const laGood = la.stateDict();
    const msGood = ms.stateDict();
    const cases: Array<[Wrapper, unknown, RegExp]> = [
      [la, null, /expected an object/],
      [la, laGood.inner, /not a Lookahead state dict/],
      [la, msGood, /saved by "MultiSteps", not by Lookahead/],
      [la, { ...laGood, stepsSinceSync: -1 }, /stepsSinceSync must be a whole number/],
      [la, { ...laGood, stepsSinceSync: 1.5 }, /stepsSinceSync must be a whole number/],
      [la, { ...laGood, slow: { w: new Float32Array(7) } }, /slow\["w"\] must be a Float64Array/],
      [la, { ...laGood, slow: { b: new Float32Array(2) } }, /slow\["b"\] has length 2/],
      [la, { ...laGood, extra: 1 }, /stateDict.extra: unknown key/],
      [la, { ...laGood, inner: { ...laGood.inner, skippedSteps: -1 } }, /stateDict.inner: .*skippedSteps/],
      [la, { wrapper: 'Lookahead', slow: {}, inner: laGood.inner }, /stepsSinceSync is missing/],
      [ms, laGood, /saved by "Lookahead", not by MultiSteps/],
      [ms, { ...msGood, useGradMean: false }, /useGradMean/],
      [ms, { ...msGood, accumulatorDtype: 'float64' }, /accumulatorDtype/],
      [ms, { ...msGood, acc: { w: new Float64Array(7) } }, /acc\["w"\] must be a Float32Array/],
      [ms, { ...msGood, miniStep: 'x' }, /miniStep must be a whole number/],
      [ms, { ...msGood, inner: { ...msGood.inner, state: { w: { step: 1 } } } }, /stateDict.inner: .*missing/],
    ];
    for (const [opt, sd, msg] of cases) {
      const before = fingerprint([w, b], opt);
      const e = errorOf(() => opt.loadStateDict(sd as never));
      expect(e, String(msg)).toBeInstanceOf(OptimStateError);
      expect((e as Error).message).toMatch(msg);
      expect(fingerprint([w, b], opt)).toEqual(before);
    }
  });

  it('loadStateDict reports params by name; those without saved state start afresh', () => {
    const [w, b] = makeParams();
    const la = new Lookahead(new Adam([w, b], { lr: 0.02 }), { syncPeriod: 3, slowStepSize: 0.5 });
    fill(w, b, 1);
    la.step();
    const sd = la.stateDict();
    delete (sd.slow as Record<string, FloatArray>).b;
    (sd.slow as Record<string, FloatArray>).gone = new Float64Array(2);
    const report = la.loadStateDict(sd);
    expect(report).toEqual({ matched: ['w'], missing: ['b'], unexpected: ['gone'] });
    expect(Object.keys(la.stateDict().slow)).toEqual(['w']);
    // b's slow weights start again at its next step, from its data then.
    const bData = b.data.slice();
    fill(w, b, 2);
    la.step();
    sameBits(la.stateDict().slow.b, bData);
  });
});

// ---------------------------------------------------------------------------------------------
// Refusals, the non-finite policies, validation, schedulers, hooks.

describe.each(backendRows)('wrapper refusals (%s)', (_name, backend) => {
  useBackend(backend);

  const stepUntil = (opt: Wrapper, w: Param, b: Param, n: number) => {
    for (let t = 1; t <= n; t++) {
      fill(w, b, t);
      opt.step();
    }
  };

  // Lookahead syncs at step 3 (syncPeriod 3); MultiSteps updates at micro step 3 (k 3).
  const REFUSALS = [
    { name: 'Lookahead, a plain step', make: BUILDS[0].make, before: 4 },
    { name: 'Lookahead, a synchronising step', make: BUILDS[0].make, before: 2 },
    { name: 'Lookahead, the first step', make: BUILDS[0].make, before: 0 },
    { name: 'MultiSteps, a micro step', make: BUILDS[2].make, before: 3 },
    { name: 'MultiSteps, the k-th micro step', make: BUILDS[2].make, before: 2 },
    { name: 'MultiSteps, the first micro step', make: BUILDS[2].make, before: 0 },
    { name: 'nested, a synchronising update', make: BUILDS[4].make, before: 9 },
  ];

  it.each(REFUSALS)('$name: a NaN gradient throws NonFiniteError and changes nothing', ({ make, before }) => {
    const [w, b] = makeParams();
    const opt = make(w, b);
    stepUntil(opt, w, b, before);
    fill(w, b, before + 1);
    b.grad[1] = NaN;
    const kept = fingerprint([w, b], opt);
    const slowRefs = opt instanceof Lookahead ? opt.slowParams.map((p) => p.data) : [];
    const e = errorOf(() => opt.step());
    expect(e).toBeInstanceOf(NonFiniteError);
    expect(e).toMatchObject({ param: 'b', index: 1 });
    expect(fingerprint([w, b], opt)).toEqual(kept);
    if (opt instanceof Lookahead) opt.slowParams.forEach((p, i) => expect(p.data).toBe(slowRefs[i]));
  });

  it.each(REFUSALS)('$name: a bad inner hyperparameter is refused, changing nothing; the retried step equals an unrefused run', ({ make, before }) => {
    const [w, b] = makeParams();
    const opt = make(w, b);
    const [w2, b2] = makeParams();
    const ref = make(w2, b2);
    stepUntil(opt, w, b, before);
    stepUntil(ref, w2, b2, before);
    fill(w, b, before + 1);
    fill(w2, b2, before + 1);
    const lr = opt.paramGroups[0].lr;
    opt.paramGroups[0].lr = -1;
    const kept = fingerprint([w, b], opt);
    const e = errorOf(() => opt.step());
    // MultiSteps meets the inner optimizer only at the k-th micro step.
    const reaches = !(opt instanceof MultiSteps) || before === 2;
    if (reaches) {
      expect(e).toBeInstanceOf(OptimRangeError);
      expect((e as Error).message).toMatch(/lr/);
      expect(fingerprint([w, b], opt)).toEqual(kept);
      opt.paramGroups[0].lr = lr;
      opt.step();
    } else {
      expect(e).toBeUndefined();
      opt.paramGroups[0].lr = lr;
    }
    ref.step();
    for (let t = before + 2; t <= before + 8; t++) {
      fill(w, b, t);
      opt.step();
      fill(w2, b2, t);
      ref.step();
    }
    expect(fingerprint([w, b], opt)).toEqual(fingerprint([w2, b2], ref));
  });

  it.each([
    { name: 'Lookahead', make: (w: Param, b: Param) => new Lookahead(new Adam([w, b], { lr: 0.02, nonFinite: 'skip' }), { syncPeriod: 3, slowStepSize: 0.4 }) },
    { name: 'MultiSteps', make: (w: Param, b: Param) => new MultiSteps(new Adam([w, b], { lr: 0.02, nonFinite: 'skip' }), { everyKSchedule: 3 }) },
    {
      name: 'Lookahead(MultiSteps)',
      make: (w: Param, b: Param) => new Lookahead(new MultiSteps(new Adam([w, b], { lr: 0.02, nonFinite: 'skip' }), { everyKSchedule: 2 }), { syncPeriod: 3, slowStepSize: 0.4 }),
    },
  ])("$name under nonFinite: 'skip': skipped steps change nothing and the run equals one that never saw them", ({ make }) => {
    const [w, b] = makeParams();
    const opt = make(w, b);
    const [w2, b2] = makeParams();
    const ref = make(w2, b2);
    let posts = 0;
    opt.registerStepPostHook(() => void posts++);
    let u = 0;
    for (let t = 1; t <= 20; t++) {
      fill(w, b, t);
      if (t % 4 === 2 || t === 7) {
        w.grad[t % 7] = t === 7 ? -Infinity : NaN;
        const kept = fingerprint([w, b], opt, { skips: false });
        const skipped = opt.skippedSteps;
        opt.step();
        expect(fingerprint([w, b], opt, { skips: false })).toEqual(kept);
        expect(opt.skippedSteps).toBe(skipped + 1);
        continue;
      }
      opt.step();
      u++;
      fill(w2, b2, t);
      ref.step();
      expect((fingerprint([w, b], opt) as { data: unknown }).data).toEqual((fingerprint([w2, b2], ref) as { data: unknown }).data);
    }
    expect(opt.skippedSteps).toBe(6);
    expect(posts).toBe(u);
  });

  it("MultiSteps under nonFinite: 'ignore' accumulates a NaN", () => {
    const [w, b] = makeParams();
    const opt = new MultiSteps(new Adam([w, b], { lr: 0.02, nonFinite: 'ignore' }), { everyKSchedule: 3 });
    fill(w, b, 1);
    w.grad[2] = NaN;
    opt.step();
    expect(Number.isNaN(opt.stateDict().acc.w[2])).toBe(true);
    expect(opt.miniStep).toBe(1);
  });

  it('MultiSteps: an accumulated value that overflows the float32 accumulator is refused; a float64 one takes it', () => {
    for (const k of [3, 1]) {
      const w = param(new Float64Array([1, 2]), 'w');
      const opt = new MultiSteps(new SGD([w], { lr: 1e-40 }), { everyKSchedule: k });
      w.grad.set([1, 1e39]);
      const kept = fingerprint([w], opt);
      const e = errorOf(() => opt.step());
      if (k === 1) {
        // The k-th micro step hands the float64 value on: it does not pass through float32.
        expect(e).toBeUndefined();
        continue;
      }
      expect(e).toBeInstanceOf(NonFiniteError);
      expect((e as Error).message).toMatch(/accumulated gradient of param "w" overflows to Infinity at index 1/);
      expect(e).toMatchObject({ param: 'w', index: 1, value: Infinity });
      expect(fingerprint([w], opt)).toEqual(kept);
      const x = param(new Float64Array([1, 2]), 'x');
      const opt64 = new MultiSteps(new SGD([x], { lr: 1e-40 }), { everyKSchedule: k, accumulatorDtype: 'float64' });
      x.grad.set([1, 1e39]);
      opt64.step();
      expect(opt64.stateDict().acc.x[1]).toBe(1e39);
    }
  });

  it('MultiSteps: a schedule that throws or returns a bad k is refused, changing nothing', () => {
    const [w, b] = makeParams();
    let value: unknown = 2;
    const opt = new MultiSteps(new Adam([w, b], { lr: 0.02 }), { everyKSchedule: () => value as number });
    stepUntil(opt, w, b, 3);
    fill(w, b, 4);
    const kept = fingerprint([w, b], opt);
    for (const [bad, E, msg] of [
      [0, OptimRangeError, /everyKSchedule\(1\) must return an integer >= 1, got 0/],
      [2.5, OptimRangeError, /got 2.5/],
      [NaN, OptimRangeError, /got NaN/],
      ['2', OptimTypeError, /got "2"/],
    ] as const) {
      value = bad;
      const e = errorOf(() => opt.step());
      expect(e).toBeInstanceOf(E);
      expect((e as Error).message).toMatch(msg);
      expect(fingerprint([w, b], opt)).toEqual(kept);
    }
    const thrower = new MultiSteps(new Adam([w], { lr: 0.02 }), {
      everyKSchedule: () => {
        throw new Error('boom');
      },
    });
    expect(() => thrower.step()).toThrow('boom');
    expect(thrower.stateDict().acc).toEqual({});
  });

  it('a bad param or grad is refused, changing nothing; the caller\'s grad arrays stay in place', () => {
    for (const make of [BUILDS[0].make, BUILDS[2].make]) {
      const [w, b] = makeParams();
      const opt = make(w, b);
      stepUntil(opt, w, b, 2);
      const grad = b.grad;
      const kept = fingerprint([w, b], opt);
      b.grad = new Float64Array(3) as never;
      expect(() => opt.step()).toThrow(OptimTypeError);
      b.grad = new Float32Array(2) as never;
      expect(() => opt.step()).toThrow(OptimRangeError);
      b.grad = grad;
      expect(fingerprint([w, b], opt)).toEqual(kept);
      const data = b.data;
      b.data = new Float32Array(2) as never;
      expect(() => opt.step()).toThrow(/length/);
      b.data = data;
      expect(() => opt.step(42 as never)).toThrow(OptimTypeError);
      expect(fingerprint([w, b], opt)).toEqual(kept);
      opt.paramGroups[0].params.push(w);
      expect(() => opt.step()).toThrow(/appears twice/);
      opt.paramGroups[0].params.pop();
      expect(fingerprint([w, b], opt)).toEqual(kept);
    }
  });

  it('constructor options are checked, naming the argument', () => {
    const w = param(new Float64Array(3), 'w');
    const adam = new Adam([w]);
    const cases: Array<[() => unknown, new (...a: never[]) => Error, RegExp]> = [
      [() => new Lookahead({} as never, { syncPeriod: 5, slowStepSize: 0.5 }), OptimTypeError, /optimizer must be a first-order optimizer.*got Object/],
      [() => new Lookahead(new LBFGS([w]) as never, { syncPeriod: 5, slowStepSize: 0.5 }), OptimTypeError, /got LBFGS \(its step evaluates the model itself/],
      [() => new Lookahead(adam, undefined as never), OptimTypeError, /options is required/],
      [() => new Lookahead(adam, [] as never), OptimTypeError, /options must be an object/],
      [() => new Lookahead(adam, { slowStepSize: 0.5 } as never), OptimTypeError, /options.syncPeriod is required/],
      [() => new Lookahead(adam, { syncPeriod: 0, slowStepSize: 0.5 }), OptimRangeError, /options.syncPeriod must be an integer >= 1, got 0/],
      [() => new Lookahead(adam, { syncPeriod: 2.5, slowStepSize: 0.5 }), OptimRangeError, /options.syncPeriod/],
      [() => new Lookahead(adam, { syncPeriod: '5' as never, slowStepSize: 0.5 }), OptimTypeError, /options.syncPeriod must be a number/],
      [() => new Lookahead(adam, { syncPeriod: 5 } as never), OptimTypeError, /options.slowStepSize is required/],
      [() => new Lookahead(adam, { syncPeriod: 5, slowStepSize: 1.5 }), OptimRangeError, /options.slowStepSize must be a finite number >= 0 and <= 1, got 1.5/],
      [() => new Lookahead(adam, { syncPeriod: 5, slowStepSize: NaN }), OptimRangeError, /options.slowStepSize/],
      [() => new Lookahead(adam, { syncPeriod: 5, slowStepSize: 0.5, afterSync: 'both' as never }), OptimRangeError, /options.afterSync must be one of 'fast', 'slow'/],
      [() => new Lookahead(adam, { syncPeriod: 5, slowStepSize: 0.5, sync_period: 5 } as never), OptimTypeError, /unknown option "sync_period"/],
      [() => new MultiSteps(null as never, { everyKSchedule: 2 }), OptimTypeError, /optimizer must be a first-order optimizer.*got null/],
      [() => new MultiSteps(adam, {} as never), OptimTypeError, /options.everyKSchedule is required/],
      [() => new MultiSteps(adam, { everyKSchedule: 0 }), OptimRangeError, /options.everyKSchedule must be an integer >= 1/],
      [() => new MultiSteps(adam, { everyKSchedule: '4' as never }), OptimTypeError, /options.everyKSchedule must be a number/],
      [() => new MultiSteps(adam, { everyKSchedule: 4, useGradMean: 1 as never }), OptimTypeError, /options.useGradMean must be a boolean/],
      [() => new MultiSteps(adam, { everyKSchedule: 4, accumulatorDtype: 'float16' as never }), OptimRangeError, /options.accumulatorDtype must be one of 'float32', 'float64'/],
      [() => new MultiSteps(adam, { everyKSchedule: 4, every_k_schedule: 4 } as never), OptimTypeError, /unknown option "every_k_schedule"/],
    ];
    for (const [fn, E, msg] of cases) {
      const e = errorOf(fn);
      expect(e, String(msg)).toBeInstanceOf(E);
      expect((e as Error).message).toMatch(msg);
    }
  });

  it('paramGroups are the inner optimizer\'s: a scheduler on the wrapper sets its lr', () => {
    const [w, b] = makeParams();
    const adam = new Adam([w, b], { lr: 0.02 });
    const ms = new MultiSteps(adam, { everyKSchedule: 2 });
    const la = new Lookahead(ms, { syncPeriod: 3, slowStepSize: 0.5 });
    expect(la.paramGroups).toBe(adam.paramGroups);
    expect(la.nonFinite).toBe('error');
    const sched = new StepLR(la, { stepSize: 1, gamma: 0.5 });
    fill(w, b, 1);
    la.step();
    sched.step();
    expect(adam.paramGroups[0].lr).toBe(0.01);
    const seen: Array<[number, number]> = [];
    for (let t = 2; t <= 4; t++) {
      fill(w, b, t);
      la.step();
      sched.step();
      seen.push([adam.paramGroups[0].lr, ms.gradientStep]);
    }
    expect(seen).toEqual([
      [0.005, 1],
      [0.0025, 1],
      [0.00125, 2],
    ]);
  });

  it('zeroGrad clears the params\' grads; hooks run around wrapper steps', () => {
    const [w, b] = makeParams();
    const opt = new MultiSteps(new Adam([w, b], { lr: 0.02 }), { everyKSchedule: 2 });
    const calls: string[] = [];
    const h = opt.registerStepPreHook((o, args) => void calls.push(`pre ${o.miniStep} ${args.length}`));
    opt.registerStepPostHook((o) => void calls.push(`post ${o.miniStep}`));
    fill(w, b, 1);
    expect(opt.step(() => 7)).toBe(7);
    fill(w, b, 2);
    opt.step();
    h.remove();
    opt.zeroGrad();
    expect(Array.from(w.grad).every((x) => x === 0) && Array.from(b.grad).every((x) => x === 0)).toBe(true);
    opt.step();
    expect(calls).toEqual(['pre 0 1', 'post 1', 'pre 1 0', 'post 0', 'post 1']);
  });
});
