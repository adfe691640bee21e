/**
 * Adagrad and RMSprop against torch 1.13 (test/golden/torch-1.13), which took square roots with a
 * correctly rounded sqrt: with FMA the native kernels equal torch bit for bit, the evidence that
 * their arithmetic is torch's operation for operation (torch 2.13 left it unchanged; its MKL sqrt
 * is not correctly rounded, see test/golden-torch213.test.ts). Plus NAdam and RAdam options that
 * no recording covers, against independent scalar transcriptions of torch 2.13's loops.
 */
import { describe, expect, it } from 'vitest';
import { Adagrad, NAdam, RAdam, RMSprop, param } from '../src/optim/index.js';
import type { Optimizer, GroupBase, Param } from '../src/optim/index.js';
import type { FloatArray } from '../src/backend/types.js';
import { backendRows, useBackend } from './helpers/backends.js';
import {
  TORCH113_IDS,
  camelOptions,
  camelState,
  fillGrad,
  loadGolden,
  loss,
  maxAbsDiff,
  maxScaledDiff,
} from './helpers/golden.js';
import type { FirstOrderGolden } from './helpers/golden.js';

type AnyOptimizer = Optimizer<GroupBase>;

const CLASSES = { Adagrad, RMSprop } as const;

function setup(gold: FirstOrderGolden): { p: Param; opt: AnyOptimizer } {
  const data = gold.dtype === 'float32' ? Float32Array.from(gold.problem.w0) : Float64Array.from(gold.problem.w0);
  const p = param(data, 'p');
  const Ctor = CLASSES[gold.optimizer] as unknown as new (ps: Param[], o: object) => AnyOptimizer;
  return { p, opt: new Ctor([p], camelOptions(gold.constructor_kwargs)) };
}

/** The README's suggested tolerance: |Δ| ≤ 1e-13 (float64), ≤ 1e-5 (float32). */
function tolerance(gold: FirstOrderGolden): number {
  return gold.dtype === 'float32' ? 1e-5 : 1e-13;
}

function expectState(opt: AnyOptimizer, gold: FirstOrderGolden, t: number, exact: boolean): void {
  const expected = gold.state_at_checkpoints[String(t)];
  if (expected === undefined) return;
  const actual = opt.stateDict().state.p;
  for (const [key, value] of Object.entries(expected)) {
    const mine = actual[camelState(key)];
    if (value === null) {
      expect(mine, `${gold.id} step ${t}: ${key}`).toBeUndefined();
    } else if (typeof value === 'number') {
      expect(mine, `${gold.id} step ${t}: ${key}`).toBe(value);
    } else if (exact) {
      expect(Array.from(mine as FloatArray), `${gold.id} step ${t}: ${key}`).toEqual(value);
    } else {
      expect(maxScaledDiff(mine as FloatArray, value), `${gold.id} step ${t}: ${key}`).toBeLessThanOrEqual(
        tolerance(gold),
      );
    }
  }
}

/** Replays the recorded gradients through a fresh optimizer; `check` runs after each step t (1-based). */
function openLoop(gold: FirstOrderGolden, check: (p: Param, opt: AnyOptimizer, gold: FirstOrderGolden, t: number) => void): void {
  const { p, opt } = setup(gold);
  for (let t = 1; t <= gold.trajectory.length; t++) {
    p.grad.set(gold.grads[t - 1]);
    opt.step();
    check(p, opt, gold, t);
  }
}

describe.each(backendRows)('golden torch trajectories, %s backend', (_name, backend) => {
  useBackend(backend);
  const fma = backend.name === 'native' && backend.info().fma;

  it.each(TORCH113_IDS)('%s: open loop (recorded gradients) within tolerance', (id) => {
    openLoop(loadGolden(id, 'torch-1.13'), (p, opt, gold, t) => {
      expect(maxAbsDiff(p.data, gold.trajectory[t - 1]), `${id} step ${t}`).toBeLessThanOrEqual(tolerance(gold));
      expectState(opt, gold, t, false);
    });
  });

  it.each(TORCH113_IDS)('%s: closed loop (own gradients) within tolerance', (id) => {
    const gold = loadGolden(id, 'torch-1.13');
    const { p, opt } = setup(gold);
    for (let t = 1; t <= gold.trajectory.length; t++) {
      fillGrad(gold.problem, p.data, p.grad);
      opt.step();
      expect(maxAbsDiff(p.data, gold.trajectory[t - 1]), `${id} step ${t}`).toBeLessThanOrEqual(tolerance(gold));
    }
    expect(Math.abs(loss(gold.problem, p.data) - gold.loss[gold.loss.length - 1])).toBeLessThan(1e-4);
  });

  // Registered only where it applies: the native kernels reproduce ATen's fused multiply-adds.
  if (fma) {
    it.each(TORCH113_IDS)('%s: open loop matches torch bit for bit (FMA kernels)', (id) => {
      openLoop(loadGolden(id, 'torch-1.13'), (p, opt, gold, t) => {
        expect(Array.from(p.data), `${id} step ${t}`).toEqual(gold.trajectory[t - 1]);
        expectState(opt, gold, t, true);
      });
    });
  }
});

// NAdam and RAdam options the torch 2.13 recordings do not cover (test/golden-torch213.test.ts) are
// checked against scalar transcriptions of torch 2.13's single-tensor loops, written independently
// of src/ (Math.pow, no folded scalars).

interface ScalarOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
  maximize: boolean;
}

/**
 * torch/optim/nadam.py, _single_tensor_nadam (torch 2.13), one element:
 *   step += 1; bias_correction2 = 1 - beta2 ** step
 *   if weight_decay: decoupled ? param *= 1 - lr*wd : grad = grad + wd*param
 *   mu = beta1 * (1 - 0.5 * 0.96 ** (step * momentum_decay))
 *   mu_next = beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
 *   mu_product *= mu                        (a float32 0-d tensor: multiplied in float32)
 *   exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq = beta2*exp_avg_sq + (1-beta2)*grad*grad
 *   denom = sqrt(exp_avg_sq / bias_correction2) + eps
 *   param += (-lr * (1 - mu) / (1 - mu_product)) * grad / denom
 *   param += (-lr * mu_next / (1 - mu_product * mu_next)) * exp_avg / denom
 */
/**
 * The part NAdam and RAdam share, element i: weight decay (decoupled: p shrinks; else L2 on g),
 * then m = lerp(m, g, 1 − β1) and v = β2·v + (1 − β2)·g². Returns the gradient used.
 */
function decayAndMoments(o: ScalarOptions, p: Float64Array, grad: Float64Array, m: Float64Array, v: Float64Array, i: number): number {
  let g = o.maximize ? -grad[i] : grad[i];
  if (o.weightDecay !== 0) {
    if (o.decoupled) p[i] *= 1 - o.lr * o.weightDecay;
    else g += o.weightDecay * p[i];
  }
  m[i] += (1 - o.beta1) * (g - m[i]);
  v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
  return g;
}

function nadamScalar(o: ScalarOptions & { momentumDecay: number }) {
  const n = 7;
  const m = new Float64Array(n);
  const v = new Float64Array(n);
  let step = 0;
  let muProduct = 1;
  return (p: Float64Array, grad: Float64Array): void => {
    step += 1;
    const bc2 = 1 - o.beta2 ** step;
    const mu = o.beta1 * (1 - 0.5 * 0.96 ** (step * o.momentumDecay));
    const muNext = o.beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * o.momentumDecay));
    muProduct = Math.fround(muProduct * Math.fround(mu)); // a float32 0-d tensor in torch 2.13
    for (let i = 0; i < n; i++) {
      const g = decayAndMoments(o, p, grad, m, v, i);
      const denom = Math.sqrt(v[i] / bc2) + o.eps;
      p[i] += ((-o.lr * (1 - mu)) / (1 - muProduct)) * (g / denom);
      p[i] += ((-o.lr * muNext) / (1 - muProduct * muNext)) * (m[i] / denom);
    }
  };
}

/**
 * torch/optim/radam.py, _single_tensor_radam (torch 2.13), one element:
 *   step += 1; (weight decay as NAdam)
 *   exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq = beta2*exp_avg_sq + (1-beta2)*grad*grad
 *   bias_correction1 = 1 - beta1 ** step; bias_correction2 = 1 - beta2 ** step
 *   bias_corrected_exp_avg = exp_avg / bias_correction1
 *   rho_inf = 2 / (1 - beta2) - 1; rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
 *   if rho_t > 5:
 *     rect = sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
 *     adaptive_lr = sqrt(bias_correction2) / (sqrt(exp_avg_sq) + eps)
 *     param -= bias_corrected_exp_avg * lr * adaptive_lr * rect
 *   else: param -= bias_corrected_exp_avg * lr
 */
function radamScalar(o: ScalarOptions) {
  const n = 7;
  const m = new Float64Array(n);
  const v = new Float64Array(n);
  let step = 0;
  return (p: Float64Array, grad: Float64Array): void => {
    step += 1;
    const bc1 = 1 - o.beta1 ** step;
    const bc2 = 1 - o.beta2 ** step;
    const rhoInf = 2 / (1 - o.beta2) - 1;
    const rhoT = rhoInf - (2 * step * o.beta2 ** step) / bc2;
    for (let i = 0; i < n; i++) {
      const g = decayAndMoments(o, p, grad, m, v, i);
      const mh = m[i] / bc1;
      if (rhoT > 5) {
        const rect = Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
        const adaptive = Math.sqrt(bc2) / (Math.sqrt(v[i]) + o.eps);
        p[i] -= mh * o.lr * adaptive * rect;
      } else {
        p[i] -= mh * o.lr;
      }
    }
  };
}

const PROBLEM = loadGolden('adam').problem;

const NADAM_CASES = [
  { name: 'defaults, lr 0.01', options: { lr: 0.01 } },
  { name: 'L2 weight decay', options: { lr: 0.01, weightDecay: 0.1 } },
  { name: 'decoupled weight decay', options: { lr: 0.01, weightDecay: 0.1, decoupledWeightDecay: true } },
  { name: 'betas, momentumDecay, eps', options: { lr: 0.02, betas: [0.8, 0.99] as [number, number], momentumDecay: 0.01, eps: 1e-6 } },
];

const RADAM_CASES = [
  { name: 'defaults, lr 0.01', options: { lr: 0.01 } },
  { name: 'L2 weight decay', options: { lr: 0.01, weightDecay: 0.1 } },
  { name: 'decoupled weight decay', options: { lr: 0.01, weightDecay: 0.1, decoupledWeightDecay: true } },
  { name: 'betas (rectified from step 6), eps', options: { lr: 0.02, betas: [0.8, 0.9] as [number, number], eps: 1e-6 } },
];

function scalarOptions(o: { lr: number; betas?: [number, number]; eps?: number; weightDecay?: number; decoupledWeightDecay?: boolean }): ScalarOptions {
  return {
    lr: o.lr,
    beta1: o.betas?.[0] ?? 0.9,
    beta2: o.betas?.[1] ?? 0.999,
    eps: o.eps ?? 1e-8,
    weightDecay: o.weightDecay ?? 0,
    decoupled: o.decoupledWeightDecay ?? false,
    maximize: false,
  };
}

/** Runs `opt` and the scalar transcription side by side for 50 steps on the same gradients. */
function compareWithScalar(opt: AnyOptimizer, p: Param<Float64Array>, scalarStep: (p: Float64Array, g: Float64Array) => void): number {
  const q = Float64Array.from(p.data);
  let worst = 0;
  for (let t = 1; t <= 50; t++) {
    fillGrad(PROBLEM, p.data, p.grad);
    scalarStep(q, p.grad);
    opt.step();
    worst = Math.max(worst, maxAbsDiff(p.data, q));
  }
  return worst;
}

describe.each(backendRows)('NAdam and RAdam against torch 2.13 formulas, %s backend', (_name, backend) => {
  useBackend(backend);

  it.each(NADAM_CASES)('NAdam $name: 50 steps match the scalar formula', ({ options }) => {
    const p = param(Float64Array.from(PROBLEM.w0));
    const opt = new NAdam([p], options) as unknown as AnyOptimizer;
    const scalar = nadamScalar({ ...scalarOptions(options), momentumDecay: options.momentumDecay ?? 4e-3 });
    expect(compareWithScalar(opt, p, scalar)).toBeLessThanOrEqual(1e-12);
  });

  it.each(RADAM_CASES)('RAdam $name: 50 steps match the scalar formula', ({ options }) => {
    const p = param(Float64Array.from(PROBLEM.w0));
    const opt = new RAdam([p], options) as unknown as AnyOptimizer;
    expect(compareWithScalar(opt, p, radamScalar(scalarOptions(options)))).toBeLessThanOrEqual(1e-12);
  });

  it('NAdam maximize ascends (the mirror image of minimizing -f)', () => {
    const a = param(Float64Array.from(PROBLEM.w0));
    const b = param(Float64Array.from(PROBLEM.w0));
    const min = new NAdam([a], { lr: 0.01 });
    const max = new NAdam([b], { lr: 0.01, maximize: true });
    for (let t = 0; t < 20; t++) {
      fillGrad(PROBLEM, a.data, a.grad);
      fillGrad(PROBLEM, b.data, b.grad);
      b.grad.forEach((g, i) => (b.grad[i] = -g));
      min.step();
      max.step();
    }
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
  });

  it.each([
    ['NAdam', (p: Param) => new NAdam([p], { lr: 0.02 })],
    ['RAdam', (p: Param) => new RAdam([p], { lr: 0.02 })],
    ['NAdam f32', (p: Param) => new NAdam([p], { lr: 0.02 })],
    ['RAdam f32', (p: Param) => new RAdam([p], { lr: 0.02 })],
  ] as const)('%s decreases the golden problem loss', (name, make) => {
    const data = name.endsWith('f32') ? Float32Array.from(PROBLEM.w0) : Float64Array.from(PROBLEM.w0);
    const p = param(data);
    const opt = make(p);
    const before = loss(PROBLEM, p.data);
    for (let t = 0; t < 300; t++) {
      fillGrad(PROBLEM, p.data, p.grad);
      opt.step();
    }
    expect(loss(PROBLEM, p.data)).toBeLessThan(before / 50);
  });
});
