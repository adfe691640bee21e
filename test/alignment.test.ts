/**
 * Cache-line alignment (native backend): a tensor of at least 128 elements is stepped in two
 * calls, the elements before p's first 64-byte boundary and then the rest (native/bindings/
 * addon.cc, step_aligned), and its non-finite scan likewise. The updates are elementwise, so a
 * tensor at any offset from a cache line must get the same bytes as the same values stepped in
 * pieces too short to be split (100 elements), on every instruction set, with and without the
 * non-finite scan; a bad value in the head or in the rest must be reported with nothing written.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative } from '../src/backend/native.js';
import { CHECK_FINITE } from '../src/backend/types.js';
import { uniformStream } from '../src/data/random.js';
import { KERNEL_CASES } from './helpers/kernels.js';

const native = loadNative();
const addon = native.addon;
const backend = native.backend;
const ISAS = addon ? (['avx512', 'avx2', 'baseline'] as const).filter((isa) => addon.setIsa(isa)) : [];
addon?.setIsa('best');

afterAll(() => {
  addon?.setIsa('best');
});

const N = 10_007;
const PIECE = 100;
type FloatCtor = Float32ArrayConstructor | Float64ArrayConstructor;

/** One view per buffer of the tuple, `offset` elements into an ArrayBuffer of its own. */
function tuple(C: FloatCtor, stride: number, offset: number, seed: number): Array<Float32Array | Float64Array> {
  const rand = uniformStream(seed);
  return Array.from({ length: stride }, (_, j) => {
    const a = new C(new ArrayBuffer((N + 16) * C.BYTES_PER_ELEMENT), offset * C.BYTES_PER_ELEMENT, N);
    for (let i = 0; i < N; i++) a[i] = j >= 2 ? rand() * 2 : rand() * 4 - 2;
    return a;
  });
}

describe.runIf(addon !== undefined)('a tensor at any offset from a cache line gets the same bits as stepped in short pieces', () => {
  for (const isa of ISAS) {
    for (const { kernel, flags, stride, scalars } of KERNEL_CASES) {
      for (const C of [Float32Array, Float64Array]) {
        it(`${isa} ${kernel.name} ${C.name}, offsets 0 to ${64 / C.BYTES_PER_ELEMENT - 1} elements`, () => {
          addon!.setIsa(isa);
          for (let offset = 0; offset < 64 / C.BYTES_PER_ELEMENT; offset++) {
            const whole = tuple(C, stride, offset, 3 + offset);
            const pieces = tuple(C, stride, offset, 3 + offset);
            const check = offset % 2 === 0 ? CHECK_FINITE : 0;
            expect(backend!.step(kernel, whole, scalars, flags | check)).toBeUndefined();
            const list = [];
            for (let a = 0; a < N; a += PIECE) list.push(...pieces.map((x) => x.subarray(a, a + PIECE)));
            expect(backend!.step(kernel, list, scalars, flags | CHECK_FINITE)).toBeUndefined();
            whole.forEach((x, j) => expect(Buffer.from(x.buffer).equals(Buffer.from(pieces[j].buffer)), `offset ${offset}, buffer ${j}`).toBe(true));
          }
        });
      }
    }
  }

  it('a NaN before the first boundary, or after it, is reported with nothing written', () => {
    const { kernel, flags, stride, scalars } = KERNEL_CASES[0];
    for (const at of [0, 1, 2, 100, N - 1]) {
      const list = tuple(Float32Array, stride, 1, 5);
      list[1][at] = NaN;
      const before = list.map((x) => Buffer.from(x.buffer).toString('hex'));
      expect(backend!.step(kernel, list, scalars, flags | CHECK_FINITE)).toBe(0);
      expect(list.map((x) => Buffer.from(x.buffer).toString('hex'))).toEqual(before);
    }
  });
});
