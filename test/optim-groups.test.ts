import { afterEach, describe, expect, it, vi } from 'vitest';
import { Adam, AdamW, RMSprop, SGD, param } from '../src/optim/index.js';
import type { Param } from '../src/optim/index.js';
import { OptimRangeError } from '../src/errors.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { CHECK_ONLY } from '../src/backend/types.js';
import type { Backend } from '../src/backend/types.js';
import type { AnyKernel } from '../src/backend/kernel.js';
import { ADAM_KERNEL } from '../src/optim/adam.js';
import { RMSPROP_KERNEL } from '../src/optim/rmsprop.js';
import { fillGrad, loadGolden } from './helpers/golden.js';

const PROBLEM = loadGolden('adam').problem;

function fill(ps: Param[]): void {
  for (const p of ps) {
    if (p.data.length === PROBLEM.w0.length) fillGrad(PROBLEM, p.data, p.grad);
    else for (let i = 0; i < p.data.length; i++) p.grad[i] = p.data[i] - i;
  }
}

/** The calls a `backend.step` spy recorded for `kernel`. */
const callsOf = (spy: { mock: { calls: Array<Parameters<Backend['step']>> } }, kernel: AnyKernel) =>
  spy.mock.calls.filter((c) => c[0] === kernel);

function golden64(name: string): Param<Float64Array> {
  return param(Float64Array.from(PROBLEM.w0), name);
}

describe.each(backendRows)('parameter groups, %s backend', (_name, backend) => {
  useBackend(backend);
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('group options override constructor options, which override the defaults', () => {
    const a = golden64('a');
    const b = golden64('b');
    const opt = new SGD([{ params: [a], lr: 0.1 }, { params: [b], weightDecay: 0.5 }], { lr: 0.01, momentum: 0.9 });
    expect(opt.paramGroups[0]).toMatchObject({ lr: 0.1, momentum: 0.9, weightDecay: 0, dampening: 0, nesterov: false });
    expect(opt.paramGroups[1]).toMatchObject({ lr: 0.01, momentum: 0.9, weightDecay: 0.5 });
    expect(opt.paramGroups[0].params).toEqual([a]);
    expect(opt.defaults).toMatchObject({ lr: 0.01, momentum: 0.9, weightDecay: 0 });
  });

  it('a different lr per group equals separate optimizers, bit for bit', () => {
    const [a, b, a1, b1] = ['a', 'b', 'a', 'b'].map(golden64);
    const grouped = new Adam([{ params: [a], lr: 0.1 }, { params: [b] }], { lr: 0.01, amsgrad: true });
    const alone = [new Adam([a1], { lr: 0.1, amsgrad: true }), new Adam([b1], { lr: 0.01, amsgrad: true })];
    for (let t = 0; t < 20; t++) {
      fill([a, b, a1, b1]);
      grouped.step();
      alone.forEach((o) => o.step());
    }
    expect(Array.from(a.data)).toEqual(Array.from(a1.data));
    expect(Array.from(b.data)).toEqual(Array.from(b1.data));
    expect(Array.from(a.data)).not.toEqual(Array.from(b.data));
  });

  it('mixed float32 and float64 in one group: one update call per dtype (after one scan call each), same result as apart', () => {
    const w64 = golden64('w64');
    const w32 = param(Float32Array.from(PROBLEM.w0), 'w32');
    const x64 = golden64('w64');
    const x32 = param(Float32Array.from(PROBLEM.w0), 'w32');
    const mixed = new AdamW([w64, w32], { lr: 0.01 });
    const apart = [new AdamW([x64], { lr: 0.01 }), new AdamW([x32], { lr: 0.01 })];
    const spy = vi.spyOn(backend, 'step');
    for (let t = 0; t < 10; t++) {
      fill([w64, w32, x64, x32]);
      spy.mockClear();
      mixed.step();
      // Two calls make the step, so each is scanned for non-finite grads first (CHECK_ONLY).
      expect(spy).toHaveBeenCalledTimes(4);
      expect(callsOf(spy, ADAM_KERNEL).map((c) => (c[3] & CHECK_ONLY) !== 0)).toEqual([true, true, false, false]);
      apart.forEach((o) => o.step());
    }
    expect(Array.from(w64.data)).toEqual(Array.from(x64.data));
    expect(Array.from(w32.data)).toEqual(Array.from(x32.data));
  });

  it('a group of 1000 tensors costs one backend call per step', () => {
    const ps = Array.from({ length: 1000 }, (_, i) => param(new Float32Array(3).fill(i), `t${i}`));
    const opt = new RMSprop(ps, { lr: 0.01, momentum: 0.9 });
    const spy = vi.spyOn(backend, 'step');
    for (let t = 0; t < 3; t++) {
      fill(ps);
      opt.step();
    }
    expect(spy).toHaveBeenCalledTimes(3);
    expect(callsOf(spy, RMSPROP_KERNEL)).toHaveLength(3);
    expect(ps[999].data[0]).not.toBe(999);
  });

  it('an lr set on paramGroups between steps takes effect at the next step', () => {
    const p = golden64('p');
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
    fill([p]);
    opt.step();
    const after1 = Array.from(p.data);
    opt.paramGroups[0].lr = 0;
    opt.step();
    expect(Array.from(p.data)).toEqual(after1);
    opt.paramGroups[0].lr = 0.05;
    const buf = opt.stateDict().state.p.momentumBuffer as Float64Array;
    opt.step();
    const expected = after1.map((x, i) => x + -0.05 * (p.grad[i] + buf[i] * 0.9));
    for (let i = 0; i < expected.length; i++) expect(p.data[i]).toBeCloseTo(expected[i], 14);
  });

  it('options switched on between steps (momentum, amsgrad) create their state then', () => {
    const p = golden64('p');
    const opt = new Adam([p], { lr: 0.01 });
    fill([p]);
    opt.step();
    expect(opt.stateDict().state.p.maxExpAvgSq).toBeUndefined();
    opt.paramGroups[0].amsgrad = true;
    opt.step();
    expect(opt.stateDict().state.p.maxExpAvgSq).toBeInstanceOf(Float64Array);

    const q = golden64('q');
    const sgd = new SGD([q], { lr: 0.01 });
    fill([q]);
    sgd.step();
    sgd.paramGroups[0].momentum = 0.9;
    sgd.step();
    expect(Array.from(sgd.stateDict().state.q.momentumBuffer as Float64Array)).toEqual(Array.from(q.grad));
  });

  it('new data or grad arrays of the same length are picked up', () => {
    const p = golden64('p');
    const opt = new Adam([p], { lr: 0.01 });
    fill([p]);
    opt.step();
    const oldData = p.data;
    p.data = Float64Array.from(oldData);
    p.grad = Float64Array.from(p.grad);
    const frozen = Array.from(oldData);
    opt.step();
    expect(Array.from(oldData)).toEqual(frozen);
    expect(Array.from(p.data)).not.toEqual(frozen);
  });

  it('addParamGroup adds a group with its own options and refuses a param already present', () => {
    const a = golden64('a');
    const opt = new SGD([a], { lr: 0.1 });
    const b = golden64('b');
    opt.addParamGroup({ params: [b], lr: 0.01 });
    expect(opt.paramGroups.map((g) => g.lr)).toEqual([0.1, 0.01]);
    expect(() => opt.addParamGroup({ params: [a] })).toThrow(OptimRangeError);
    expect(() => opt.addParamGroup({ params: [golden64('a')] })).toThrow(/share the name "a"/);
  });

  it('refuses a param in two groups, and two params with one name', () => {
    const a = golden64('a');
    expect(() => new SGD([{ params: [a] }, { params: [a] }], { lr: 0.1 })).toThrow(/appears in more than one parameter group/);
    expect(() => new SGD([a, golden64('a')], { lr: 0.1 })).toThrow(/share the name "a"/);
    const opt = new SGD([{ params: [a] }, { params: [golden64('b')] }], { lr: 0.1 });
    opt.paramGroups[1].params.push(a);
    fill([a]);
    expect(() => opt.step()).toThrow(/appears twice/);
  });

  it('step(closure) calls the closure first and returns its loss; zeroGrad zeroes every grad', () => {
    const p = golden64('p');
    const opt = new SGD([p], { lr: 0.01 });
    const order: string[] = [];
    const loss = opt.step(() => {
      order.push('closure');
      fill([p]);
      return 7;
    });
    expect(loss).toBe(7);
    expect(order).toEqual(['closure']);
    expect(opt.step()).toBeUndefined();
    opt.zeroGrad();
    expect(Array.from(p.grad)).toEqual(new Array(7).fill(0));
  });

  it('param() names are unique when not given, and grads match the data type', () => {
    const a = param(new Float32Array(4));
    const b = param(new Float32Array(4));
    expect(a.name).not.toBe(b.name);
    expect(a.name).toMatch(/^param_\d+$/);
    expect(a.grad).toBeInstanceOf(Float32Array);
    expect(a.grad.length).toBe(4);
    expect(param(new Float64Array(2), 'w').name).toBe('w');
  });
});
