import { describe, expect, it } from 'vitest';
import { minibatches, OptimRangeError, OptimTypeError, permutation } from '../src/index.js';
import type { MinibatchOptions } from '../src/index.js';

/** The batches grouped by epoch. */
function epochsOf(n: number, options: MinibatchOptions): Uint32Array[][] {
  const mb = minibatches(n, options);
  const all = [...mb];
  const out: Uint32Array[][] = [];
  for (let i = 0; i < all.length; i += mb.batchesPerEpoch) out.push(all.slice(i, i + mb.batchesPerEpoch));
  return out;
}

function concat(batches: Uint32Array[]): number[] {
  return batches.flatMap((b) => [...b]);
}

function bytes(batches: Iterable<Uint32Array>): string {
  return [...batches].map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')).join('|');
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Pearson's χ² of observed counts against equal expected counts. */
function chiSquare(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
}

describe('minibatches without replacement', () => {
  it('covers every index exactly once per epoch, in batches of batchSize and a remainder', () => {
    const epochs = epochsOf(1000, { batchSize: 64, epochs: 3, seed: 7 });
    expect(epochs).toHaveLength(3);
    for (const batches of epochs) {
      expect(batches.map((b) => b.length)).toEqual([...new Array(15).fill(64), 40]);
      for (const b of batches) expect(b).toBeInstanceOf(Uint32Array);
      expect(concat(batches).sort((a, b) => a - b)).toEqual(range(1000));
    }
  });

  it('reshuffles each epoch, and different seeds give different orders', () => {
    const [e0, e1, e2] = epochsOf(500, { batchSize: 50, epochs: 3 }).map(concat);
    expect(e0).not.toEqual(e1);
    expect(e1).not.toEqual(e2);
    expect(e0).not.toEqual(range(500));
    expect(concat([...minibatches(500, { batchSize: 50, seed: 1 })])).not.toEqual(e0);
  });

  it('dropLast leaves out the short last batch of each epoch', () => {
    const mb = minibatches(1000, { batchSize: 64, dropLast: true, epochs: 2 });
    expect(mb.batchesPerEpoch).toBe(15);
    expect(mb.totalBatches).toBe(30);
    const epochs = epochsOf(1000, { batchSize: 64, dropLast: true, epochs: 2 });
    for (const batches of epochs) {
      expect(batches.every((b) => b.length === 64)).toBe(true);
      expect(new Set(concat(batches)).size).toBe(960);
    }
    expect([...minibatches(10, { batchSize: 11, dropLast: true })]).toEqual([]);
  });

  it('is reproducible byte for byte, from a new call or a second pass over the same object', () => {
    const options = { batchSize: 33, epochs: 4, seed: 123456789 };
    const mb = minibatches(777, options);
    const first = bytes(mb);
    expect(bytes(mb)).toBe(first);
    expect(bytes(minibatches(777, { ...options }))).toBe(first);
  });

  it('epoch 0 is permutation(n, seed), and epoch e depends only on (seed, e), not on the batch size', () => {
    const seed = 99;
    const a = epochsOf(300, { batchSize: 7, epochs: 3, seed }).map(concat);
    const b = epochsOf(300, { batchSize: 300, epochs: 3, seed }).map(concat);
    expect(a).toEqual(b);
    expect(a[0]).toEqual([...permutation(300, seed)]);
  });

  it('shuffle: false keeps 0..n−1 in order, every epoch', () => {
    const epochs = epochsOf(10, { batchSize: 4, shuffle: false, epochs: 2 });
    expect(epochs.map((e) => e.map((b) => [...b]))).toEqual([
      [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]],
      [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]],
    ]);
  });

  it('a batch changed by the caller changes no other batch or epoch', () => {
    const mb = minibatches(8, { batchSize: 4, shuffle: false, epochs: 2 });
    const seen = [...mb];
    seen[0].fill(0);
    expect([...seen[1]]).toEqual([4, 5, 6, 7]);
    expect([...seen[2]]).toEqual([0, 1, 2, 3]);
  });

  it('edge sizes: n = 0, batchSize > n, epochs 0', () => {
    expect([...minibatches(0, { batchSize: 4 })]).toEqual([]);
    expect(minibatches(0, { batchSize: 4, epochs: Infinity }).totalBatches).toBe(0);
    const one = [...minibatches(3, { batchSize: 10 })];
    expect(one).toHaveLength(1);
    expect([...one[0]].sort()).toEqual([0, 1, 2]);
    expect([...minibatches(5, { batchSize: 2, epochs: 0 })]).toEqual([]);
  });

  it('epochs: Infinity is an endless stream', () => {
    const mb = minibatches(10, { batchSize: 3, epochs: Infinity });
    expect(mb.totalBatches).toBe(Infinity);
    const it = mb[Symbol.iterator]();
    const taken: number[] = [];
    for (let i = 0; i < 400; i++) taken.push(...(it.next().value as Uint32Array));
    expect(taken).toHaveLength(100 * 10);
    for (let e = 0; e < 100; e++) expect(taken.slice(10 * e, 10 * e + 10).sort((x, y) => x - y)).toEqual(range(10));
  });

  it('each index is equally likely in each position (χ² over the first position, fixed seed)', () => {
    const counts = new Array(10).fill(0);
    const mb = minibatches(10, { batchSize: 10, epochs: 5000, seed: 2024 });
    for (const b of mb) counts[b[0]]++;
    // χ² with 9 degrees of freedom: the 99.99% quantile is 33.7.
    expect(chiSquare(counts)).toBeLessThan(33.7);
  });
});

describe('minibatches with replacement', () => {
  it('draws every index in [0, n), with the same batch sizes as without', () => {
    const mb = minibatches(1000, { batchSize: 64, withReplacement: true, epochs: 2, seed: 5 });
    const batches = [...mb];
    expect(batches.map((b) => b.length)).toEqual([...new Array(15).fill(64), 40, ...new Array(15).fill(64), 40]);
    for (const b of batches) for (const i of b) expect(i).toBeLessThan(1000);
    const first = concat(batches.slice(0, 16));
    expect(new Set(first).size).toBeLessThan(1000);
    expect(concat(batches.slice(16))).not.toEqual(first);
  });

  it('is roughly uniform (χ², fixed seed)', () => {
    const counts = new Array(20).fill(0);
    for (const b of minibatches(20, { batchSize: 8, withReplacement: true, epochs: 1000, seed: 31 })) {
      for (const i of b) counts[i]++;
    }
    expect(counts.reduce((a, b) => a + b, 0)).toBe(20_000);
    // χ² with 19 degrees of freedom: the 99.99% quantile is 49.5.
    expect(chiSquare(counts)).toBeLessThan(49.5);
  });

  it('is reproducible, and dropLast applies', () => {
    const options = { batchSize: 6, withReplacement: true, dropLast: true, epochs: 3, seed: 8 };
    expect(bytes(minibatches(50, options))).toBe(bytes(minibatches(50, options)));
    expect([...minibatches(50, options)].every((b) => b.length === 6)).toBe(true);
    expect(minibatches(50, options).totalBatches).toBe(24);
  });
});

describe('permutation', () => {
  it('is a permutation, reproducible, and differs between seeds', () => {
    const p = permutation(1000, 3);
    expect(p).toBeInstanceOf(Uint32Array);
    expect([...p].sort((a, b) => a - b)).toEqual(range(1000));
    expect(permutation(1000, 3)).toEqual(p);
    expect(permutation(1000, 4)).not.toEqual(p);
    expect(permutation(0, 1)).toEqual(new Uint32Array(0));
    expect(permutation(5)).toEqual(permutation(5, 0));
  });

  it.each([
    [-1, 0, OptimRangeError, /permutation\(n, seed\): n must be an integer in \[0, 2\^32 - 1\], got -1/],
    [2.5, 0, OptimRangeError, /n must be an integer/],
    ['5', 0, OptimTypeError, /n must be a number, got string/],
    [5, 2 ** 32, OptimRangeError, /seed must be an integer in \[0, 2\^32 - 1\], got 4294967296/],
    [5, -1, OptimRangeError, /seed must be an integer/],
  ])('refuses n=%o seed=%o', (n, seed, cls, pattern) => {
    expect(() => permutation(n as number, seed)).toThrow(cls);
    expect(() => permutation(n as number, seed)).toThrow(pattern);
  });
});

describe('minibatches refuses bad input', () => {
  it.each([
    [-1, { batchSize: 1 }, OptimRangeError, /minibatches\(n, options\): n must be an integer in \[0, 2\^32 - 1\], got -1/],
    [2 ** 32, { batchSize: 1 }, OptimRangeError, /n must be an integer in/],
    [NaN, { batchSize: 1 }, OptimRangeError, /n must be an integer/],
    [10n, { batchSize: 1 }, OptimTypeError, /n must be a number, got bigint/],
    [10, undefined, OptimTypeError, /options must be an object with at least batchSize, got undefined/],
    [10, {}, OptimTypeError, /options.batchSize is required/],
    [10, { batchSize: 0 }, OptimRangeError, /options.batchSize must be an integer >= 1, got 0/],
    [10, { batchSize: 2.5 }, OptimRangeError, /options.batchSize must be an integer >= 1, got 2.5/],
    [10, { batchSize: '2' }, OptimTypeError, /options.batchSize must be a number, got string/],
    [10, { batch_size: 2 }, OptimTypeError, /unknown option "batch_size"/],
    [10, { batchSize: 2, shuffle: 'yes' }, OptimTypeError, /options.shuffle must be a boolean, got string/],
    [10, { batchSize: 2, dropLast: 1 }, OptimTypeError, /options.dropLast must be a boolean/],
    [10, { batchSize: 2, seed: 1.5 }, OptimRangeError, /options.seed must be an integer in \[0, 2\^32 - 1\], got 1.5/],
    [10, { batchSize: 2, epochs: -1 }, OptimRangeError, /options.epochs must be an integer >= 0 or Infinity, got -1/],
    [10, { batchSize: 2, epochs: NaN }, OptimRangeError, /options.epochs/],
    [10, { batchSize: 2, withReplacement: true, shuffle: false }, OptimRangeError, /withReplacement draws indices at random/],
  ])('n=%o %o', (n, options, cls, pattern) => {
    expect(() => minibatches(n as number, options as MinibatchOptions)).toThrow(cls);
    expect(() => minibatches(n as number, options as MinibatchOptions)).toThrow(pattern);
  });
});
