/**
 * Optimizers against torch 2.13's single-tensor path (test/golden/torch-2.13, see its README),
 * through the public API, on every backend and every native instruction set this CPU runs.
 *
 * Every vendored first-order file is checked:
 * - open loop (the recorded gradients fed in turn): with FMA (avx2, avx512) the native kernels
 *   compute what torch computes, operation for operation. Those that take no square root (EXACT)
 *   equal torch bit for bit, params and state. Those that do (ROOTED) meet torch 2.13's CPU
 *   wheel, which takes square roots with MKL's vector sqrt, not correctly rounded (1.4% of
 *   float64 and 19.5% of float32 inputs 1 ulp off, test/golden/README.md): replayed one step at a
 *   time from torch's previous params, at most 2% of the element-steps differ (measured ≤ 1.1%,
 *   RAdam; 0 for NAdam, Adadelta and plain RMSprop in float64), and the open loop stays within
 *   1e-15 (float64) / 1e-6 (float32). Without FMA (the baseline set) and on the reference
 *   backend each fused multiply-add rounds twice: within 8 ulps of the trajectory's largest |p|
 *   (measured ≤ 5, sgd_momentum_f32 on the reference), or the file's recorded sensitivity to a
 *   1-ulp change of every gradient where that is larger;
 * - closed loop (our own gradients): within 1e-13 (float64) / 1e-5 (float32), the tolerance the
 *   README derives from that sensitivity (values are O(1)).
 * Scalar state (NAdam's muProduct, ASGD's eta and mu, kept in float32 as torch keeps them) is
 * equal bit for bit on every backend.
 */
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as optimizers from '../src/optim/index.js';
import { param } from '../src/param.js';
import { loadNative } from '../src/backend/native.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { camelOptions, camelState, fillGrad, GOLDEN_DIR, maxAbsDiff, readGolden } from './helpers/golden.js';
import type { FirstOrderGolden } from './helpers/golden.js';

/** The optimizers that take no square root: with FMA, bit for bit. */
const EXACT = new Set(['SGD', 'Adamax', 'Rprop', 'ASGD']);
/** Those that do: bit for bit up to MKL's sqrt. */
const ROOTED = new Set(['Adagrad', 'RMSprop', 'Adam', 'AdamW', 'NAdam', 'RAdam', 'Adadelta']);
const ROOTED_OPEN = { float64: 1e-15, float32: 1e-6 };
/** The share of element-steps where MKL's sqrt may make a one-step replay differ. */
const ROOTED_REPLAY_SHARE = 0.02;

interface Golden213 extends Omit<FirstOrderGolden, 'optimizer'> {
  optimizer: string;
  /** How far the closed loop moves when every gradient moves by ±1 ulp: the noise floor. */
  sensitivity?: { plus_1ulp?: unknown; minus_1ulp?: unknown };
  kind: string;
  checkpoints: Record<string, number[]>;
}

const files = readdirSync(path.join(GOLDEN_DIR, 'torch-2.13'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => readGolden<Golden213>(`torch-2.13/${f}`))
  .filter((g) => g.kind === 'first_order' && Array.isArray(g.trajectory)); // two-tensor files are Adafactor's and Muon's

const native = loadNative();
const ISAS = native.addon ? (['avx512', 'avx2', 'baseline'] as const).filter((isa) => native.addon!.setIsa(isa)) : [];
/** Whether each instruction set fuses multiply-adds, read before the tests register. */
const FMA = new Map(ISAS.map((isa) => (native.addon!.setIsa(isa), [isa, native.addon!.info().fma] as const)));
native.addon?.setIsa('best');

type Ctor = new (ps: ReturnType<typeof param>[], o: Record<string, unknown>) => {
  step(): void;
  stateDict(): { state: Record<string, Record<string, unknown>> };
};

type Mode = 'open' | 'closed' | 'replay';

/**
 * Runs a file's protocol. `open` feeds the recorded gradients, `closed` our own; `replay` feeds
 * the recorded gradients from torch's previous params at every step (the state carries on).
 */
function run(g: Golden213, mode: Mode) {
  const Opt = (optimizers as unknown as Record<string, Ctor>)[g.optimizer];
  const C = g.dtype === 'float32' ? Float32Array : Float64Array;
  const w = param(C.from(g.problem.w0), 'w');
  const opt = new Opt([w], camelOptions(g.constructor_kwargs));
  const trajectory: number[][] = [];
  const states: Record<string, Record<string, unknown>> = {};
  for (let t = 1; t <= g.trajectory.length; t++) {
    if (mode === 'replay' && t > 1) w.data.set(g.trajectory[t - 2]);
    if (mode === 'closed') fillGrad(g.problem, w.data, w.grad);
    else w.grad.set(g.grads[t - 1]);
    opt.step();
    trajectory.push(Array.from(w.data));
    if (String(t) in g.state_at_checkpoints) states[t] = opt.stateDict().state.w;
  }
  return { trajectory, states };
}

/** The unit in the last place at x's binade for the file's dtype. */
function ulp(x: number, f32: boolean): number {
  return 2 ** (Math.floor(Math.log2(Math.max(x, Number.MIN_VALUE))) - (f32 ? 23 : 52));
}

/** A sensitivity entry's max abs: a number, or `{ max_abs }` in the older files; 0 when absent. */
const maxAbs = (v: unknown): number =>
  typeof v === 'number' ? v : typeof v === 'object' && v !== null && typeof (v as { max_abs?: unknown }).max_abs === 'number' ? (v as { max_abs: number }).max_abs : 0;

const maxOver = (got: number[][], want: number[][]) => Math.max(...got.map((row, t) => maxAbsDiff(row, want[t])));

it('torch 2.13 golden files are vendored for every optimizer that claims to follow 2.13', () => {
  expect(new Set(files.map((g) => g.optimizer))).toEqual(new Set([...EXACT, ...ROOTED]));
});

describe.each(backendRows)('torch 2.13 trajectories (%s)', (name, backend) => {
  useBackend(backend);
  const isas = name === 'native' ? ISAS : (['-'] as const);
  for (const isa of isas) {
    describe(name === 'native' ? `instruction set ${isa}` : 'TypeScript', () => {
      let fma = false;
      beforeAll(() => {
        if (name === 'native') {
          native.addon!.setIsa(isa as 'avx512' | 'avx2' | 'baseline');
          fma = native.addon!.info().fma;
        }
      });
      afterAll(() => {
        native.addon?.setIsa('best');
      });
      for (const g of files) {
        const f32 = g.dtype === 'float32';
        const rooted = ROOTED.has(g.optimizer);
        it(`${g.id}: open loop, ${g.trajectory.length} steps`, () => {
          const { trajectory, states } = run(g, 'open');
          // Without FMA: 8 ulps of the largest |p|, or the file's own ±1-ulp sensitivity where that
          // is larger (asgd_averaging_wd: 1.8e-15); a bound below the noise floor would test luck.
          const largest = Math.max(...g.trajectory.flat().map(Math.abs));
          const floor = Math.max(8 * ulp(largest, f32), maxAbs(g.sensitivity?.plus_1ulp), maxAbs(g.sensitivity?.minus_1ulp));
          const bound = !fma ? floor : rooted ? ROOTED_OPEN[g.dtype] : 0;
          expect(maxOver(trajectory, g.trajectory)).toBeLessThanOrEqual(bound);
          for (const [t, want] of Object.entries(g.state_at_checkpoints)) {
            for (const [key, v] of Object.entries(want)) {
              const got = states[t][camelState(key)];
              if (!Array.isArray(v)) {
                expect(got, `${key} at step ${t}`).toBe(v);
                continue;
              }
              const scale = Math.max(1, ...v.map(Math.abs));
              expect(maxAbsDiff(got as Float64Array, v) / scale, `${key} at step ${t}`).toBeLessThanOrEqual(bound);
            }
          }
        });
        // Without FMA nothing is bit for bit; the open loop bounds it.
        if (rooted && name === 'native' && FMA.get(isa as (typeof ISAS)[number])) {
          it(`${g.id}: replayed a step at a time from torch's params, bit for bit but for MKL's sqrt`, () => {
            const { trajectory } = run(g, 'replay');
            let differing = 0;
            trajectory.forEach((row, t) => row.forEach((x, i) => (differing += x === g.trajectory[t][i] ? 0 : 1)));
            const total = trajectory.length * trajectory[0].length;
            expect(differing / total).toBeLessThanOrEqual(ROOTED_REPLAY_SHARE);
            expect(maxOver(trajectory, g.trajectory)).toBeLessThanOrEqual(ROOTED_OPEN[g.dtype]);
          });
        }
        it(`${g.id}: closed loop, ${g.trajectory.length} steps`, () => {
          const { trajectory } = run(g, 'closed');
          expect(maxOver(trajectory, g.trajectory)).toBeLessThanOrEqual(f32 ? 1e-5 : 1e-13);
        });
      }
    });
  }
});
