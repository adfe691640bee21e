/**
 * Consecutive views (native backend): a prepared list whose tensors are consecutive views of the
 * same buffers is stepped as one tensor per stretch of them (native/bindings/addon.cc, coalesce).
 * The kernels are elementwise, so every kernel must give the same bytes as the same values stepped
 * tensor by tensor from buffers of their own, on one thread and on the pool; a non-finite gradient
 * must still be reported at the index of the tensor the caller listed it in, with nothing written;
 * and an optimizer over a parameter arena must name the param that holds it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative } from '../src/backend/native.js';
import { CHECK_FINITE } from '../src/backend/types.js';
import { uniformStream } from '../src/data/random.js';
import { Adam, NonFiniteError, paramArena, setNumThreads } from '../src/index.js';
import { KERNEL_CASES } from './helpers/kernels.js';

const native = loadNative();
const addon = native.addon;
const backend = native.backend;
const DEFAULT_THREADS = addon?.info().stepThreads ?? 1;

afterAll(() => {
  if (addon) setNumThreads(DEFAULT_THREADS);
});

type FloatCtor = Float32ArrayConstructor | Float64ArrayConstructor;
type FloatArray = Float32Array | Float64Array;

/**
 * Tensor lengths, and where each tensor's views sit: in stretch 0, 1 or 2 of the arenas, or in
 * buffers of its own (-1). In stretch 0 a gap of 3 elements comes before tensor 3 (adjacent in
 * the list and in one buffer, but not consecutive); stretch 2 holds p and g in list order and the
 * state buffers in reverse order (p and g consecutive, the state not). Two tensors are empty.
 * 24 tensors, 150 000 elements: enough for the pool to split the call.
 */
const LENGTHS = [4096, 7, 0, 9000, 1, 6001, 30000, 17, 12000, 3, 0, 15000, 2500, 6000, 5, 999, 20000, 1024, 64, 10000, 8000, 333, 1955, 12995];
const WHERE = [0, 0, 0, 0, 0, -1, 1, 1, 1, 1, 1, -1, 1, 1, 1, 2, 2, 2, 2, 2, -1, 0, 0, 1];
const TOTAL = LENGTHS.reduce((a, b) => a + b, 0);
const STRETCH2 = LENGTHS.filter((_, i) => WHERE[i] === 2).reduce((a, b) => a + b, 0);

/** The layout above: `list` for a prepared handle, `own` the same values in buffers of their own. */
function layout(C: FloatCtor, stride: number, seed: number): { list: FloatArray[]; own: FloatArray[] } {
  const arenas = Array.from({ length: stride }, () => new C(3 * TOTAL));
  const cursor = [0, TOTAL, 2 * TOTAL];
  let reversed = 2 * TOTAL + STRETCH2;
  const rand = uniformStream(seed);
  const list: FloatArray[] = [];
  const own: FloatArray[] = [];
  LENGTHS.forEach((n, i) => {
    const w = WHERE[i];
    if (i === 3) cursor[0] += 3;
    for (let j = 0; j < stride; j++) {
      let view: FloatArray;
      if (w < 0) view = new C(n);
      else if (w === 2 && j >= 2) view = arenas[j].subarray(reversed - n, reversed);
      else view = arenas[j].subarray(cursor[w], cursor[w] + n);
      for (let k = 0; k < n; k++) view[k] = j >= 2 ? rand() * 2 : rand() * 4 - 2;
      list.push(view);
      own.push(view.slice());
    }
    if (w >= 0) cursor[w] += n;
    if (w === 2) reversed -= n;
  });
  return { list, own };
}

describe.runIf(addon !== undefined)('consecutive views in a prepared list are stepped as one tensor', () => {
  for (const threads of [1, 2]) {
    for (const { kernel, flags, stride, scalars } of KERNEL_CASES) {
      for (const C of [Float32Array, Float64Array]) {
        it(`${kernel.name} ${C.name}, ${threads} step thread(s): the same bytes as tensor by tensor`, () => {
          setNumThreads(threads);
          const { list, own } = layout(C, stride, 11);
          const handle = backend!.prepare(list, stride);
          expect(handle.tensors).toBe(LENGTHS.length);
          expect(backend!.step(kernel, handle, scalars, flags | CHECK_FINITE)).toBeUndefined();
          for (let i = 0; i < LENGTHS.length; i++) {
            expect(backend!.step(kernel, own.slice(i * stride, (i + 1) * stride), scalars, flags)).toBeUndefined();
          }
          list.forEach((x, j) => {
            const same = Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(own[j].buffer));
            expect(same, `tensor ${Math.floor(j / stride)}, buffer ${j % stride}`).toBe(true);
          });
        });
      }
    }
  }

  for (const threads of [1, 2]) {
    it(`a NaN or an infinity is reported at the caller's tensor index, nothing written (${threads} step thread(s))`, () => {
      setNumThreads(threads);
      const { kernel, flags, stride, scalars } = KERNEL_CASES.find((c) => c.kernel.name === 'adam') ?? KERNEL_CASES[0];
      for (const [tensor, at, bad] of [[0, 0, NaN], [3, 8999, Infinity], [4, 0, -Infinity], [8, 5000, NaN], [12, 1, NaN], [19, 9999, NaN], [23, 12994, Infinity]] as const) {
        const { list } = layout(Float32Array, stride, 7);
        list[tensor * stride + 1][at] = bad;
        const handle = backend!.prepare(list, stride);
        const before = list.map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex'));
        expect(backend!.step(kernel, handle, scalars, flags | CHECK_FINITE), `tensor ${tensor}`).toBe(tensor);
        expect(list.map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex'))).toEqual(before);
      }
    });
  }

  it('Adam over a parameter arena names the param whose grad holds the NaN', () => {
    setNumThreads(DEFAULT_THREADS);
    const ps = paramArena({ a: 70000, b: 1000, c: 90000 });
    for (const p of Object.values(ps)) p.grad.fill(0.5);
    const opt = new Adam(Object.values(ps), { lr: 0.1 });
    opt.step();
    ps.b.grad[999] = NaN;
    const before = Object.values(ps).map((p) => p.data.slice());
    expect(() => opt.step()).toThrow(NonFiniteError);
    expect(() => opt.step()).toThrow(/param "b" holds NaN at index 999/);
    Object.values(ps).forEach((p, i) => expect(p.data).toEqual(before[i]));
    ps.b.grad[999] = 0.5;
    opt.step();
    expect(opt.state.get(ps.b)?.step).toBe(2);
  });
});
