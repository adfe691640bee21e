import { describe, expect, it } from 'vitest';
import { OptimRangeError, OptimTypeError } from '../src/errors.js';
import { linearRegression, logisticRegression, softmaxRegression } from '../src/objectives/index.js';

const X = Float64Array.from([1, 2, 3, 4, 5, 6]);

describe('objective constructors refuse bad input, naming it', () => {
  it('X and its shape', () => {
    expect(() => logisticRegression([1, 2] as unknown as Float64Array, [0], { cols: 2 })).toThrow(OptimTypeError);
    expect(() => logisticRegression(X, [0, 1, 0])).toThrow(/give options.rows or options.cols/);
    expect(() => logisticRegression(X, [0, 1], { cols: 4 })).toThrow(/X has length 6, which is not a multiple of cols = 4/);
    expect(() => logisticRegression(X, [0, 1], { rows: 2, cols: 2 })).toThrow(/X has length 6, expected rows\*cols = 4/);
    expect(() => logisticRegression(new Float64Array(0), [], { cols: 2 })).toThrow(/X has no rows/);
  });

  it('targets', () => {
    expect(() => logisticRegression(X, [0, 1], { rows: 3 })).toThrow(/y has length 2, expected rows = 3/);
    expect(() => logisticRegression(X, [0, 1, 2], { rows: 3 })).toThrow(/y\[2\] = 2 is not in \[0, 1\]/);
    expect(() => linearRegression(X, [0, NaN, 1], { rows: 3 })).toThrow(/y\[1\] = NaN is not finite/);
    expect(() => softmaxRegression(X, [0, 1.5, 1], { rows: 3 })).toThrow(/y\[1\] = 1.5 is not a class label in 0..1/);
    expect(() => softmaxRegression(X, [0, 3, 1], { rows: 3, classes: 3 })).toThrow(/y\[1\] = 3 is not a class label in 0..2/);
    expect(() => softmaxRegression(X, [0, 1, 1], { rows: 3, classes: 1 })).toThrow(/options.classes must be an integer >= 2/);
    expect(() => linearRegression(X, 'abc' as unknown as number[], { rows: 3 })).toThrow(OptimTypeError);
  });

  it('options', () => {
    expect(() => linearRegression(X, [0, 1, 2], { rows: 3, l2: -1 })).toThrow(/options.l2 must be a finite number >= 0, got -1/);
    expect(() => linearRegression(X, [0, 1, 2], { rows: 3, l1: Infinity })).toThrow(OptimRangeError);
    expect(() => linearRegression(X, [0, 1, 2], { rows: 3, reduction: 'max' as 'sum' })).toThrow(/options.reduction must be 'mean' or 'sum'/);
    expect(() => linearRegression(X, [0, 1, 2], { rows: 3, fitIntercept: 1 as unknown as boolean })).toThrow(/options.fitIntercept must be a boolean/);
    expect(() => linearRegression(X, [0, 1, 2], { rows: 3, lambda: 1 } as never)).toThrow(/unknown option/);
  });
});

describe('objective methods check before writing', () => {
  const obj = logisticRegression(X, [0, 1, 0], { rows: 3, l2: 0.1 });
  const w = Float64Array.from([0.1, -0.2, 0.3]);

  it('w of the wrong type or length', () => {
    expect(() => obj.loss(new Float32Array(3) as unknown as Float64Array)).toThrow(/logisticRegression.loss: w must be a Float64Array like X/);
    expect(() => obj.grad(new Float64Array(2))).toThrow(/logisticRegression.grad: w has length 2, expected size = 3/);
    expect(() => obj.predict(new Float64Array(4))).toThrow(/w has length 4/);
  });

  it('out of the wrong length, or sharing memory with w, is refused and left as it was', () => {
    const out = Float64Array.from([7, 7]);
    expect(() => obj.grad(w, out)).toThrow(/out has length 2, expected size = 3/);
    expect(Array.from(out)).toEqual([7, 7]);
    const H = new Float64Array(8).fill(7);
    expect(() => obj.hessian(w, H)).toThrow(/out has length 8, expected size\*size = 9/);
    expect(H.every((v) => v === 7)).toBe(true);
    const buf = new Float64Array(6);
    buf.set(w);
    expect(() => obj.grad(buf.subarray(0, 3), buf.subarray(2, 5))).toThrow(/out must not share memory with w/);
    expect(() => obj.hvp(w, new Float64Array(2))).toThrow(/v has length 2/);
  });

  it('batch indices', () => {
    expect(() => obj.batch([])).toThrow(/indices is empty/);
    expect(() => obj.batch([0, 3])).toThrow(/indices\[1\] = 3 is not a row in 0..2/);
    expect(() => obj.batch([0.5])).toThrow(OptimRangeError);
    expect(() => obj.batch(new Float64Array([0]) as unknown as number[])).toThrow(OptimTypeError);
    expect(() => obj.batch([2, 1]).batch([2])).toThrow(/indices\[0\] = 2 is not a row in 0..1/);
  });

  it('w is never modified', () => {
    const copy = w.slice();
    obj.evaluate(w);
    obj.hvp(w, w.slice());
    obj.lossAndGrad(w);
    expect(Array.from(w)).toEqual(Array.from(copy));
  });
});
