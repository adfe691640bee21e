import { describe, expect, it } from 'vitest';
import { OptimRangeError, OptimStateError, OptimTypeError, ReduceLROnPlateau, SGD, param } from '../src/index.js';
import type { ReduceLROnPlateauOptions } from '../src/index.js';

function sgd(...lrs: number[]): SGD {
  return new SGD(
    lrs.map((lr, i) => ({ params: [param(new Float64Array(1), `p${i}`)], lr })),
    { lr: 1 },
  );
}

/** Feeds the metrics; returns, per step, the lrs and the counters after it. */
function feed(sched: ReduceLROnPlateau, opt: SGD, metrics: number[]): Array<{ lr: number[]; bad: number; cooldown: number }> {
  return metrics.map((m) => {
    sched.step(m);
    return { lr: opt.paramGroups.map((g) => g.lr), bad: sched.numBadEpochs, cooldown: sched.cooldownCounter };
  });
}

function lrsOf(opts: ReduceLROnPlateauOptions, metrics: number[], ...lrs: number[]): number[][] {
  const opt = sgd(...lrs);
  return feed(new ReduceLROnPlateau(opt, opts), opt, metrics).map((r) => r.lr);
}

describe('ReduceLROnPlateau, against torch’s algorithm worked by hand', () => {
  it('patience: cuts on the (patience + 1)-th epoch without improvement', () => {
    const opt = sgd(1);
    const sched = new ReduceLROnPlateau(opt, { patience: 2, factor: 0.5, threshold: 0 });
    const rows = feed(sched, opt, [10, 9, 9, 9, 9, 8, 8, 8, 8]);
    expect(rows.map((r) => r.lr[0])).toEqual([1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]);
    expect(rows.map((r) => r.bad)).toEqual([0, 0, 1, 2, 0, 0, 1, 2, 0]);
    expect(sched.best).toBe(8);
    expect(sched.lastEpoch).toBe(9);
    expect(sched.getLastLr()).toEqual([0.25]);
  });

  it('defaults: patience 10, factor 0.1', () => {
    const rows = lrsOf({}, new Array(12).fill(1), 1);
    expect(rows.map((r) => r[0])).toEqual([...new Array(11).fill(1), 0.1]);
  });

  it('cooldown: bad epochs are not counted for `cooldown` epochs after a cut', () => {
    const opt = sgd(1);
    const sched = new ReduceLROnPlateau(opt, { patience: 1, cooldown: 2, factor: 0.1 });
    const rows = feed(sched, opt, new Array(11).fill(5));
    const a = 1 * 0.1;
    const b = a * 0.1;
    const c = b * 0.1;
    expect(rows.map((r) => r.lr[0])).toEqual([1, 1, a, a, a, a, b, b, b, b, c]);
    expect(rows.map((r) => r.cooldown)).toEqual([0, 0, 2, 1, 0, 0, 2, 1, 0, 0, 2]);
    expect(rows.map((r) => r.bad)).toEqual([0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0]);
    expect(sched.inCooldown).toBe(true);
  });

  it('minLr: the lr stops at minLr, one bound per group', () => {
    const rows = lrsOf({ patience: 0, factor: 0.5, minLr: [0.3, 0.001] }, [1, 1, 1, 1, 1], 1, 0.01);
    expect(rows).toEqual([
      [1, 0.01],
      [0.5, 0.005],
      [0.3, 0.0025],
      [0.3, 0.00125],
      [0.3, 0.001],
    ]);
  });

  it('eps: a cut smaller than eps is skipped', () => {
    const rows = lrsOf({ patience: 0, factor: 0.5, eps: 1e-8 }, [1, 1, 1, 1], 4e-8, 1);
    expect(rows).toEqual([
      [4e-8, 1],
      [2e-8, 0.5],
      [2e-8, 0.25],
      [2e-8, 0.125],
    ]);
  });

  it("mode 'max' with a relative threshold: better means > best·(1 + threshold)", () => {
    const opt = sgd(1);
    const sched = new ReduceLROnPlateau(opt, { mode: 'max', threshold: 0.1, patience: 1, factor: 0.5 });
    const rows = feed(sched, opt, [1, 1.05, 1.2, 1.25, 1.3, 1.33]);
    expect(rows.map((r) => r.bad)).toEqual([0, 1, 0, 1, 0, 0]);
    expect(rows.map((r) => r.lr[0])).toEqual([1, 1, 1, 1, 0.5, 0.5]);
    expect(sched.best).toBe(1.33);
  });

  it("mode 'min' with an absolute threshold: better means < best − threshold", () => {
    const opt = sgd(1);
    const sched = new ReduceLROnPlateau(opt, { thresholdMode: 'abs', threshold: 0.5 });
    const rows = feed(sched, opt, [10, 9.6, 9.4, 9.0, 8.8]);
    expect(rows.map((r) => r.bad)).toEqual([0, 1, 0, 1, 0]);
    expect(sched.best).toBe(8.8);
  });

  it("mode 'max' with an absolute threshold, and the default relative one for 'min'", () => {
    const opt = sgd(1);
    const max = new ReduceLROnPlateau(opt, { mode: 'max', thresholdMode: 'abs', threshold: 1 });
    expect(feed(max, opt, [0, 0.5, 1.5, 2.4, 2.6]).map((r) => r.bad)).toEqual([0, 1, 0, 1, 0]);
    const opt2 = sgd(1);
    const min = new ReduceLROnPlateau(opt2, {});
    // 1e-4 relative: 100 → 99.99 is not enough (needs < 99.99), 99.98 is.
    expect(feed(min, opt2, [100, 99.99, 99.98]).map((r) => r.bad)).toEqual([0, 1, 0]);
  });

  it('a NaN metric is a bad epoch', () => {
    const opt = sgd(1);
    const sched = new ReduceLROnPlateau(opt, { patience: 1, factor: 0.5 });
    expect(feed(sched, opt, [1, NaN, NaN]).map((r) => r.lr[0])).toEqual([1, 1, 0.5]);
    expect(sched.best).toBe(1);
  });

  it('getLastLr before any step: the current lrs', () => {
    const opt = sgd(0.3, 0.7);
    expect(new ReduceLROnPlateau(opt).getLastLr()).toEqual([0.3, 0.7]);
  });
});

describe('ReduceLROnPlateau refuses', () => {
  it.each([
    [{ factor: 1 }, OptimRangeError, /options.factor must be a finite number >= 0 and < 1, got 1/],
    [{ factor: -0.5 }, OptimRangeError, /options.factor/],
    [{ mode: 'avg' }, OptimRangeError, /options.mode must be one of 'min', 'max', got "avg"/],
    [{ thresholdMode: 'pct' }, OptimRangeError, /options.thresholdMode must be one of 'rel', 'abs'/],
    [{ patience: 1.5 }, OptimRangeError, /options.patience must be an integer >= 0, got 1.5/],
    [{ cooldown: -1 }, OptimRangeError, /options.cooldown must be an integer >= 0/],
    [{ threshold: NaN }, OptimRangeError, /options.threshold must be a finite number >= 0, got NaN/],
    [{ minLr: [0, 0] }, OptimRangeError, /options.minLr has 2 entries but the optimizer has 1 parameter groups/],
    [{ minLr: [-1] }, OptimRangeError, /options.minLr\[0\] must be a finite number >= 0/],
    [{ minLr: '0' }, OptimTypeError, /options.minLr must be a number or an array/],
    [{ eps: '1e-8' }, OptimTypeError, /options.eps must be a number, got string/],
    [{ min_lr: 0 }, OptimTypeError, /unknown option "min_lr"/],
  ])('%o', (options, cls, pattern) => {
    const opt = sgd(1);
    expect(() => new ReduceLROnPlateau(opt, options as ReduceLROnPlateauOptions)).toThrow(cls);
    expect(() => new ReduceLROnPlateau(opt, options as ReduceLROnPlateauOptions)).toThrow(pattern);
  });

  it('a metric that is not a number, changing nothing', () => {
    const opt = sgd(1);
    const sched = new ReduceLROnPlateau(opt, { patience: 0 });
    sched.step(1);
    const before = sched.stateDict();
    expect(() => sched.step('0.5' as unknown as number)).toThrow(/metric must be a number, got string/);
    expect(sched.stateDict()).toEqual(before);
  });

  it('a group added after construction', () => {
    const opt = sgd(1);
    const sched = new ReduceLROnPlateau(opt);
    opt.addParamGroup({ params: [param(new Float64Array(1), 'late')] });
    expect(() => sched.step(1)).toThrow(OptimStateError);
    expect(sched.lastEpoch).toBe(0);
  });
});
