/**
 * Multi-core steps (native backend): a step of at least 131072 elements is split across the
 * pool's threads in chunks, each thread taking its own run of chunks first and then what the
 * others have left (native/kernels/pool.h). The updates are elementwise, so
 * every kernel, on every instruction set, must give the same bytes with 1, 2 or 3 threads (3 on a
 * 2-core machine: more parts than cores), for tensors split across parts and tensors whole; the
 * non-finite scan must report the same first bad tensor and change nothing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative } from '../src/backend/native.js';
import { CHECK_FINITE, CHECK_ONLY } from '../src/backend/types.js';
import { backendInfo, OptimRangeError, OptimTypeError, setNumThreads } from '../src/index.js';
import { uniformStream } from '../src/data/random.js';
import { KERNEL_CASES } from './helpers/kernels.js';

const native = loadNative();
const addon = native.addon;
const backend = native.backend;
const ISAS = addon ? (['avx512', 'avx2', 'baseline'] as const).filter((isa) => addon.setIsa(isa)) : [];
addon?.setIsa('best');
const DEFAULT_THREADS = addon?.info().stepThreads ?? 1;

afterAll(() => {
  addon?.setIsa('best');
  if (addon) setNumThreads(DEFAULT_THREADS);
});

/** Tensor lengths: one split across parts at an odd place, small ones, one whole part. */
const SIZES = [150_001, 7, 64, 70_000, 131_075];

function makeList(C: Float32ArrayConstructor | Float64ArrayConstructor, stride: number, seed: number): Array<Float32Array | Float64Array> {
  const rand = uniformStream(seed);
  const list: Array<Float32Array | Float64Array> = [];
  for (const n of SIZES) {
    for (let j = 0; j < stride; j++) {
      const a = new C(n);
      // State buffers that must stay >= 0 (second moments, accumulators) get |x|.
      for (let i = 0; i < n; i++) a[i] = j >= 2 ? rand() * 2 : rand() * 4 - 2;
      list.push(a);
    }
  }
  return list;
}

const bytes = (list: ReadonlyArray<Float32Array | Float64Array>) => list.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength));

/** The indices of the arrays whose bytes differ (toEqual on megabytes of bytes is far too slow). */
const differing = (a: readonly Buffer[], b: readonly Buffer[]) => a.flatMap((x, i) => (x.equals(b[i]) ? [] : [i]));

describe.runIf(addon !== undefined)('multi-core steps give the same bits as one thread', () => {
  for (const isa of ISAS) {
    for (const { kernel, flags, stride, scalars } of KERNEL_CASES) {
      for (const C of [Float32Array, Float64Array]) {
        it(`${isa} ${kernel.name} ${C.name}`, () => {
          addon!.setIsa(isa);
          const runs = [1, 2, 3].map((threads) => {
            setNumThreads(threads);
            const list = makeList(C, stride, 7);
            expect(backend!.step(kernel, list, scalars, flags)).toBeUndefined();
            expect(backend!.step(kernel, list, scalars, flags | CHECK_FINITE)).toBeUndefined();
            return bytes(list);
          });
          expect(differing(runs[1], runs[0])).toEqual([]);
          expect(differing(runs[2], runs[0])).toEqual([]);
        });
      }
    }
  }
});

describe.runIf(addon !== undefined)('the split non-finite scan', () => {
  const { kernel, flags, stride, scalars } = KERNEL_CASES[0];
  // (tensor, element): in the first part, at the far end of the split tensor, in the last tensor.
  const places: Array<[number, number]> = [[0, 3], [0, 150_000], [3, 69_999], [4, 131_074], [1, 6]];
  for (const [t, e] of places) {
    for (const bad of [NaN, Infinity, -Infinity]) {
      it(`${bad} in tensor ${t} at ${e}: reported, nothing written (2 threads)`, () => {
        setNumThreads(2);
        const list = makeList(Float32Array, stride, 11);
        list[t * stride + 1][e] = bad;
        // A second bad value further on must not hide the first.
        list[(SIZES.length - 1) * stride + 1][100] = NaN;
        const before = bytes(list).map((b) => Buffer.from(b));
        expect(backend!.step(kernel, list, scalars, flags | CHECK_FINITE)).toBe(t);
        expect(backend!.step(kernel, list, scalars, flags | CHECK_FINITE | CHECK_ONLY)).toBe(t);
        expect(differing(bytes(list), before)).toEqual([]);
      });
    }
  }
});

describe.runIf(addon !== undefined)('parts that take each other\'s chunks', () => {
  const { kernel, flags, stride, scalars } = KERNEL_CASES[0];
  // 48 tensors of 9000 elements: 54 chunks of 8192, cut across tensors. With 3 parts on 2 cores
  // a part often runs out first and takes the others' last chunks, where the second bad value is.
  const COUNT = 48;
  const N = 9000;
  const makeMany = () => {
    const rand = uniformStream(5);
    return Array.from({ length: COUNT * stride }, (_, k) => Float32Array.from({ length: N }, () => (k % stride >= 2 ? rand() * 2 : rand() * 4 - 2)));
  };
  for (const [first, second] of [[3, 47], [20, 21], [46, 47], [0, 40]]) {
    it(`report tensor ${first} before ${second}, and write nothing, at every one of 40 tries (3 threads)`, () => {
      setNumThreads(3);
      const list = makeMany();
      list[first * stride + 1][N - 1] = NaN;
      list[second * stride + 1][0] = Infinity;
      const before = bytes(list).map((b) => Buffer.from(b));
      const got = new Set<unknown>();
      for (let k = 0; k < 40; k++) got.add(backend!.step(kernel, list, scalars, flags | CHECK_FINITE));
      expect([...got]).toEqual([first]);
      expect(differing(bytes(list), before)).toEqual([]);
    });
  }
  it('step every chunk exactly once: the bytes of 3 threads over 40 steps equal 1 thread\'s', () => {
    const runs = [1, 3].map((threads) => {
      setNumThreads(threads);
      const list = makeMany();
      for (let k = 0; k < 40; k++) backend!.step(kernel, list, scalars, flags);
      return bytes(list);
    });
    expect(differing(runs[1], runs[0])).toEqual([]);
  });
});

describe('setNumThreads', () => {
  it.runIf(addon !== undefined)('is reported by backendInfo().stepThreads on the native backend', () => {
    setNumThreads(3);
    expect(addon!.info().stepThreads).toBe(3);
    setNumThreads(DEFAULT_THREADS);
    expect(addon!.info().stepThreads).toBe(DEFAULT_THREADS);
    expect(typeof backendInfo().stepThreads).toBe('number');
  });

  it('refuses what is not an integer from 1 to 64, changing nothing', () => {
    const before = addon?.info().stepThreads;
    expect(() => setNumThreads(0)).toThrow(OptimRangeError);
    expect(() => setNumThreads(65)).toThrow(OptimRangeError);
    expect(() => setNumThreads(1.5)).toThrow(OptimRangeError);
    expect(() => setNumThreads(NaN)).toThrow(OptimRangeError);
    expect(() => setNumThreads('2' as unknown as number)).toThrow(OptimTypeError);
    expect(() => setNumThreads(0)).toThrow(/setNumThreads\(n\): n must be an integer >= 1, got 0/);
    expect(addon?.info().stepThreads).toBe(before);
  });

  it.runIf(addon !== undefined)('the addon refuses bad counts itself', () => {
    expect(() => addon!.setNumThreads(0)).toThrow(/setNumThreads\(n\): n must be an integer from 1 to 64/);
    expect(() => addon!.setNumThreads('x' as unknown as number)).toThrow(/must be a number/);
  });
});
