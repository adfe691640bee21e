/**
 * The addon's boundary: every export refuses bad input with a TypeError or RangeError (the public
 * wrapper: OptimTypeError / OptimRangeError) and writes to no buffer when it refuses. Unusual but
 * valid memory (SharedArrayBuffer, views at odd offsets) works and is touched only inside the
 * views. Anything that could crash the process runs in a child process.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNative } from '../src/backend/native.js';
import type { NativeAddon } from '../src/backend/native.js';
import { MAX_STATES } from '../src/backend/kernel.js';
import { OptimRangeError, OptimTypeError } from '../src/errors.js';
import type { Backend, FloatArray } from '../src/backend/types.js';
import { KERNEL_CASES, WIDEST_CASE } from './helpers/kernels.js';
import { errorOf } from './helpers/snapshot.js';

const native = loadNative();
if (process.env.CI === 'true' && !native.addon) {
  throw new Error(`CI requires the native addon, which did not load: ${native.error}`);
}

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;
type Step = (...args: unknown[]) => void;
type ErrorClass = new (message: string) => Error;

/** `tensors` tuples of the kernel's stride; tensor t has length lengths[t], all values nonzero. */
function makeList(k: { stride: number }, C: Ctor, lengths: number[]): FloatArray[] {
  const list: FloatArray[] = [];
  for (const n of lengths) {
    for (let j = 0; j < k.stride; j++) {
      const a = new C(n);
      for (let i = 0; i < n; i++) a[i] = 0.25 + 0.125 * ((i + j) % 5);
      list.push(a);
    }
  }
  return list;
}

/** A detached view reads as empty (constructing a view on its buffer would throw). */
const bytesOf = (a: ArrayBufferView) =>
  a.byteLength === 0 ? [] : Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
const snapshot = (list: readonly unknown[]) => list.map((a) => (ArrayBuffer.isView(a) ? bytesOf(a) : a));

/** Calls fn, checks no array of `list` changed, and returns what it threw (undefined if nothing). */
function thrownBy(fn: () => void, list: readonly unknown[]): unknown {
  const before = snapshot(list);
  const thrown = errorOf(fn);
  expect(snapshot(list)).toEqual(before);
  return thrown;
}

/** Calls fn, expects it to throw an instance of `kind`, and checks no array of `list` changed. */
function refuses(fn: () => void, kind: ErrorClass, list: readonly unknown[]): void {
  expect(thrownBy(fn, list), 'expected the call to throw').toBeInstanceOf(kind);
}

/** Refused with either class: the contract only promises a refusal and untouched buffers. */
function refusesAny(fn: () => void, list: readonly unknown[]): void {
  const thrown = thrownBy(fn, list);
  expect(thrown instanceof TypeError || thrown instanceof RangeError, `expected a TypeError or RangeError, got ${String(thrown)}`).toBe(true);
}

function detach(buffer: ArrayBufferLike): ArrayBuffer {
  return structuredClone(buffer as ArrayBuffer, { transfer: [buffer as ArrayBuffer] });
}

if (!native.addon) console.warn(`native-boundary: native addon not loaded (${native.error}); boundary tests skipped`);

it('the addon loads, or says why it cannot', () => {
  expect(native.addon !== undefined || (typeof native.error === 'string' && native.error.length > 0)).toBe(true);
});

const ADDONS: NativeAddon[] = native.addon ? [native.addon] : [];

for (const addon of ADDONS) {
  const backend = native.backend as Backend;

  for (const k of KERNEL_CASES) {
    const { nScalars, allFlags, exportName } = k.kernel;
    describe(`${exportName}`, () => {
      const step = addon[exportName as `${string}Step`] as unknown as Step;
      const sc = k.scalars;
      const fresh = () => makeList(k, Float32Array, [3, 5, 4]);

      it('accepts the valid call these tests perturb, and writes to every buffer but the grads', () => {
        const list = fresh();
        const before = snapshot(list);
        step(list, sc, k.flags);
        list.forEach((a, i) => {
          if (i % k.stride === 1) expect(bytesOf(a)).toEqual(before[i]);
          else expect(bytesOf(a)).not.toEqual(before[i]);
        });
      });

      it('refuses a wrong argument count', () => {
        const list = fresh();
        refuses(() => step(), TypeError, list);
        refuses(() => step(list), TypeError, list);
        refuses(() => step(list, sc), TypeError, list);
        refuses(() => step(list, sc, k.flags, 0), TypeError, list);
      });

      it('refuses a list that is not an Array', () => {
        const list = fresh();
        for (const bad of [undefined, null, 42, 'list', {}, { length: list.length }, list[0], new Proxy(list, {})]) {
          refuses(() => step(bad, sc, k.flags), TypeError, list);
        }
      });

      it('refuses a non-typed-array element, even after valid tuples', () => {
        for (const bad of [1, null, undefined, [], {}, new ArrayBuffer(16), new DataView(new ArrayBuffer(16))]) {
          const list: unknown[] = fresh();
          list[list.length - 1] = bad;
          refuses(() => step(list, sc, k.flags), TypeError, list);
          list[0] = bad;
          refuses(() => step(list, sc, k.flags), TypeError, list);
        }
      });

      it('refuses integer and other non-float typed arrays', () => {
        const others = [Int32Array, Uint8Array, Int16Array, Uint32Array, Uint8ClampedArray, BigInt64Array];
        for (const Other of others) {
          const list: unknown[] = fresh();
          list[list.length - 1] = new Other(4);
          refuses(() => step(list, sc, k.flags), TypeError, list);
          const first: unknown[] = fresh();
          first[0] = new Other(3);
          refuses(() => step(first, sc, k.flags), TypeError, first);
        }
      });

      it('refuses mixed float32 and float64 in one call', () => {
        const mixed = [...makeList(k, Float32Array, [3, 5]), ...makeList(k, Float64Array, [4])];
        refuses(() => step(mixed, sc, k.flags), TypeError, mixed);
        const inTuple = fresh();
        inTuple[inTuple.length - 1] = new Float64Array(4);
        refuses(() => step(inTuple, sc, k.flags), TypeError, inTuple);
      });

      it('refuses mismatched lengths within a tuple and modifies no tensor, not even earlier tuples', () => {
        for (let j = 1; j < k.stride; j++) {
          for (const n of [3, 5, 0]) {
            const list = fresh();
            list[2 * k.stride + j] = new Float32Array(n).fill(1);
            refuses(() => step(list, sc, k.flags), RangeError, list);
          }
        }
        const shortParam = fresh();
        shortParam[2 * k.stride] = new Float32Array(3);
        refuses(() => step(shortParam, sc, k.flags), RangeError, shortParam);
      });

      it('refuses a list whose length is not a multiple of the stride the flags imply', () => {
        const list = fresh();
        refuses(() => step(list.slice(0, -1), sc, k.flags), RangeError, list);
        refuses(() => step([...list, new Float32Array(3)], sc, k.flags), RangeError, list);
      });

      it('refuses scalars of the wrong length or type', () => {
        const list = fresh();
        for (const n of [0, nScalars - 1, nScalars + 1]) {
          refuses(() => step(list, new Float64Array(n).fill(0.5), k.flags), RangeError, list);
        }
        const wrongTypes = [undefined, null, 0.5, Array.from(sc), new Float32Array(nScalars), new BigInt64Array(nScalars), {}];
        for (const bad of wrongTypes) refuses(() => step(list, bad, k.flags), TypeError, list);
      });

      it('refuses bad flags', () => {
        const list = fresh();
        for (const bad of [-1, 0.5, allFlags + 1, 1 << 20, 2 ** 32 + k.flags, NaN, Infinity, -Infinity]) {
          refuses(() => step(list, sc, bad), RangeError, list);
        }
        for (const bad of [undefined, null, '1', 1n, new Number(k.flags), [k.flags]]) {
          refuses(() => step(list, sc, bad), TypeError, list);
        }
      });

      it('refuses a fake prepared handle, and a real one prepared for another stride', () => {
        const list = fresh();
        const real = addon.prepare(list, k.stride);
        const fakes = [{}, { tensors: 3, buffers: 12 }, Object.create(real), new Proxy(real, {}), { ...real }];
        for (const fake of fakes) refuses(() => step(fake, sc, k.flags), TypeError, list);
        const otherStride = k.stride === 2 ? 3 : 2;
        const otherList = makeList({ stride: otherStride }, Float32Array, [3, 5]);
        const other = addon.prepare(otherList, otherStride);
        refuses(() => step(other, sc, k.flags), RangeError, otherList);
      });

      it("accepts a prepared handle's `native` (an External), which cannot be replaced or copied", () => {
        const a = fresh();
        const b = a.map((x) => x.slice());
        const real = addon.prepare(a, k.stride);
        const native = (real as { native?: unknown }).native;
        expect(typeof native).toBe('object');
        expect(Object.keys(real)).not.toContain('native');
        expect(() => {
          (real as { native?: unknown }).native = {};
        }).toThrow(TypeError);
        expect(() => delete (real as { native?: unknown }).native).toThrow(TypeError);
        expect((real as { native?: unknown }).native).toBe(native);
        step(native, sc, k.flags);
        step(b, sc, k.flags);
        expect(a.map(bytesOf)).toEqual(b.map(bytesOf));
        refuses(() => step({ native }, sc, k.flags), TypeError, a);
      });

      it('refuses a plain list with one detached buffer', () => {
        const list = fresh();
        detach(list[list.length - 1].buffer);
        refusesAny(() => step(list, sc, k.flags), list);
      });

      it('refuses a plain list whose last tuple is detached entirely (not an empty tensor)', () => {
        const list = fresh();
        for (const a of list.slice(-k.stride)) detach(a.buffer);
        refusesAny(() => step(list, sc, k.flags), list);
      });

      it('refuses a prepared handle whose buffer was detached', () => {
        const list = fresh();
        const handle = addon.prepare(list, k.stride);
        detach(list[list.length - 1].buffer);
        refuses(() => step(handle, sc, k.flags), TypeError, list);
      });

      it('works on SharedArrayBuffer-backed arrays, with the same result as ordinary ones', () => {
        const plain = fresh();
        const shared = plain.map((a) => {
          const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
          s.set(a);
          return s;
        });
        step(plain, sc, k.flags);
        step(shared, sc, k.flags);
        expect(shared.map(bytesOf)).toEqual(plain.map(bytesOf));
        const handle = addon.prepare(shared, k.stride);
        step(handle, sc, k.flags);
        step(plain, sc, k.flags);
        expect(shared.map(bytesOf)).toEqual(plain.map(bytesOf));
      });

      for (const C of [Float32Array, Float64Array]) {
        it(`works on ${C.name} views at odd offsets into one buffer, touching nothing outside them`, () => {
          const plain = makeList(k, C, [3, 17, 1, 9]);
          const total = plain.reduce((n, a) => n + a.length + 3, 1);
          const big = new C(total).fill(-7.5);
          let at = 1;
          const views = plain.map((a) => {
            const v = new C(big.buffer, at * C.BYTES_PER_ELEMENT, a.length);
            v.set(a);
            at += a.length + 3;
            return v;
          });
          const inside = new Set<number>();
          views.forEach((v) => {
            for (let i = 0; i < v.length; i++) inside.add(v.byteOffset / C.BYTES_PER_ELEMENT + i);
          });
          step(plain, sc, k.flags);
          step(views, sc, k.flags);
          expect(views.map(bytesOf)).toEqual(plain.map(bytesOf));
          big.forEach((x, i) => {
            if (!inside.has(i)) expect(x).toBe(-7.5);
          });
        });
      }

      it('reaches callers through the public wrapper as OptimTypeError and OptimRangeError', () => {
        const wrapped: Step = (list, scalars, flags) => backend.step(k.kernel, list as never, scalars as Float64Array, flags as number);
        const list = fresh();
        refuses(() => wrapped({}, sc, k.flags), OptimTypeError, list);
        refuses(() => wrapped(list, new Float32Array(nScalars), k.flags), OptimTypeError, list);
        refuses(() => wrapped(list, sc, -1), OptimRangeError, list);
        refuses(() => wrapped(list, new Float64Array(nScalars + 1), k.flags), OptimRangeError, list);
        const mismatched = fresh();
        mismatched[mismatched.length - 1] = new Float32Array(1);
        refuses(() => wrapped(mismatched, sc, k.flags), OptimRangeError, mismatched);
        try {
          wrapped(mismatched, sc, k.flags);
        } catch (e) {
          expect((e as Error).name).toBe('OptimRangeError');
          expect((e as Error).message).toContain(exportName);
        }
      });
    });
  }

  describe('prepare', () => {
    // The kernel with the most state buffers: S arrays per tensor.
    const k = WIDEST_CASE;
    const S = k.stride;
    const prepare = addon.prepare as unknown as (...args: unknown[]) => unknown;

    it('refuses bad arguments', () => {
      const list = makeList(k, Float32Array, [3, 5]);
      refuses(() => prepare(), TypeError, list);
      refuses(() => prepare(list), TypeError, list);
      refuses(() => prepare(list, S, 0), TypeError, list);
      for (const bad of [undefined, null, {}, list[0], 'x']) refuses(() => prepare(bad, S), TypeError, list);
      for (const bad of [undefined, String(S), BigInt(S), null]) refuses(() => prepare(list, bad), TypeError, list);
      for (const bad of [1, 3 + MAX_STATES, 2.5, NaN, -S, Infinity]) refuses(() => prepare(list, bad), RangeError, list);
      refuses(() => prepare(list, S - 1), RangeError, list);
      refuses(() => prepare([...list.slice(0, S), new Int32Array(5), ...list.slice(S + 1)], S), TypeError, list);
      refuses(() => prepare([...list.slice(0, S), ...makeList(k, Float64Array, [5])], S), TypeError, list);
      refuses(() => prepare([...list.slice(0, 2 * S - 1), new Float32Array(4)], S), RangeError, list);
      refuses(() => prepare([...list.slice(0, 2 * S - 1), 7], S), TypeError, list);
    });

    it('accepts an empty list, and reports tensors and distinct buffers', () => {
      expect(addon.prepare([], S)).toMatchObject({ tensors: 0, buffers: 0 });
      const shared = new Float64Array(10 * S);
      const list = Array.from({ length: 2 * S }, (_, i) => shared.subarray(i * 5, i * 5 + 5));
      expect(addon.prepare(list, S)).toMatchObject({ tensors: 2, buffers: 1 });
      expect(addon.prepare(makeList(k, Float32Array, [3, 5]), S)).toMatchObject({ tensors: 2, buffers: 2 * S });
    });

    it('accepts every stride from 2 (no state) to 2 + MAX_STATES', () => {
      for (let stride = 2; stride <= 2 + MAX_STATES; stride++) {
        expect(addon.prepare(makeList({ stride }, Float64Array, [2, 1]), stride)).toMatchObject({ tensors: 2 });
      }
    });

    it('reaches callers through the public wrapper as OptimTypeError and OptimRangeError', () => {
      const wrapped = backend.prepare as unknown as (...args: unknown[]) => unknown;
      const list = makeList(k, Float32Array, [3]);
      refuses(() => wrapped({}, S), OptimTypeError, list);
      refuses(() => wrapped(list, 3 + MAX_STATES), OptimRangeError, list);
    });
  });

  describe('info and setIsa', () => {
    it('info describes the kernel set in use', () => {
      const i = addon.info();
      expect(['avx512', 'avx2', 'sse2', 'neon', 'scalar']).toContain(i.simd);
      expect(typeof i.fma).toBe('boolean');
      expect(typeof i.version).toBe('string');
      expect(i.simd).toBe(i.bestSimd);
    });

    it('setIsa refuses a non-string, returns false for an unknown set, and changes nothing then', () => {
      const setIsa = addon.setIsa as unknown as (...args: unknown[]) => unknown;
      const before = addon.info().simd;
      for (const bad of [undefined, 3, null, {}]) expect(() => setIsa(bad)).toThrow(TypeError);
      expect(() => setIsa()).toThrow(TypeError);
      expect(() => setIsa('best', 'avx2')).toThrow(TypeError);
      expect(setIsa('avx1024')).toBe(false);
      expect(setIsa('')).toBe(false);
      expect(addon.info().simd).toBe(before);
      expect(setIsa('best')).toBe(true);
    });
  });

  describe('JavaScript running inside a call', () => {
    it('a list element getter that detaches an earlier buffer cannot make a step write into that memory', () => {
      for (const k of KERNEL_CASES) {
        const list = makeList(k, Float32Array, [4, 4]);
        const victim = list[0];
        let moved: ArrayBuffer | undefined;
        const movedBefore: number[] = [];
        Object.defineProperty(list, list.length - 1, {
          get() {
            moved = detach(victim.buffer);
            movedBefore.push(...new Float32Array(moved));
            return new Float32Array(4);
          },
        });
        try {
          (addon[k.kernel.exportName as `${string}Step`] as unknown as Step)(list, k.scalars, k.flags);
        } catch {
          // Refusing the call is one correct outcome; writing into `moved` is not.
        }
        expect(moved, k.kernel.exportName).toBeDefined();
        expect(Array.from(new Float32Array(moved!)), k.kernel.exportName).toEqual(movedBefore);
      }
    });

    it('a list element getter that calls another step (re-entrancy) does not crash the process', () => {
      // Every kernel's call, its last element a getter that runs the next kernel's call inside it.
      const calls = KERNEL_CASES.map((k, i) => {
        const inner = KERNEL_CASES[(i + 1) % KERNEL_CASES.length];
        return `{
          const list = Array.from({ length: ${k.stride} }, () => new Float32Array(4).fill(0.5));
          Object.defineProperty(list, ${k.stride - 1}, { get() {
            const inner = [];
            for (let i = 0; i < 64 * ${inner.stride}; i++) inner.push(new Float32Array(4).fill(0.5));
            addon.${inner.kernel.exportName}(inner, new Float64Array(${inner.kernel.nScalars}).fill(0.5), ${inner.flags});
            return new Float32Array(4);
          } });
          try { addon.${k.kernel.exportName}(list, new Float64Array(${k.kernel.nScalars}).fill(0.5), ${k.flags}); } catch (e) {
            if (!(e instanceof TypeError || e instanceof RangeError)) throw e;
          }
        }`;
      });
      const r = runChild(`${calls.join('\n')}\nconsole.log('survived');`);
      expect(r.signal, r.stderr).toBeNull();
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('survived');
    });

    it('random argument lists to every export never crash the process (fuzz, in a child process)', () => {
      const seed = Number(process.env.FC_SEED ?? (process.env.CI === 'true' ? 20251123 : Date.now() % 2 ** 31));
      const r = runChild(FUZZ.replace('__SEED__', String(seed)));
      expect(r.signal, `seed ${seed}: ${r.stderr}`).toBeNull();
      expect(r.status, `seed ${seed}: ${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('calls:');
    });
  });
}

/** Runs `body` in a fresh node process with `addon` bound to the same binary this process loads. */
function runChild(body: string) {
  const root = path.resolve(__dirname, '..');
  const load = `
    const root = ${JSON.stringify(root)};
    const explicit = process.env.OPTIM_ADDON_PATH;
    const addon = explicit ? require(require('node:path').resolve(explicit)) : require(require.resolve('node-gyp-build', { paths: [root] }))(root);
  `;
  return spawnSync(process.execPath, ['--expose-gc', '-e', load + body], { encoding: 'utf8', timeout: 60_000 });
}

/**
 * Calls random exports with random arguments drawn from a pool of valid, nearly valid and absurd
 * values. Any exception other than TypeError/RangeError, or a crash, fails the test.
 */
const FUZZ = `
let a = (__SEED__ >>> 0) || 1;
const rnd = () => { a ^= a << 13; a >>>= 0; a ^= a >>> 17; a ^= a << 5; a >>>= 0; return a / 4294967296; };
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
const resizable = [];
const len = () => pick([0, 1, 3, 8, 17]);
const arrays = () => {
  const n = len();
  const C = pick([Float32Array, Float64Array, Float32Array, Float64Array, Int32Array, Uint8Array, BigInt64Array]);
  const kind = rnd();
  if (kind < 0.1) { const t = new C(n); structuredClone(t.buffer, { transfer: [t.buffer] }); return t; }
  if (kind < 0.2) return new C(new SharedArrayBuffer((n + 2) * C.BYTES_PER_ELEMENT), C.BYTES_PER_ELEMENT, n);
  if (kind < 0.3) {
    const b = new ArrayBuffer((n + 1) * C.BYTES_PER_ELEMENT, { maxByteLength: (n + 4) * C.BYTES_PER_ELEMENT });
    resizable.push(b);
    return rnd() < 0.5 ? new C(b) : new C(b, 0, n);
  }
  return C === BigInt64Array ? new C(n) : new C(n).fill(0.5);
};
// The kernels as the addon declares them: scalar counts (and one off), flag masks, strides.
const layouts = Object.values(addon.kernelLayouts());
const count = (names) => (names === '' ? 0 : names.split(', ').length);
const nScalars = layouts.map((l) => count(l.scalars));
const scalarLengths = [0, 16, ...nScalars, ...nScalars.map((n) => n - 1), ...nScalars.map((n) => n + 1)];
const allFlags = layouts.map((l) => (1 << count(l.flags)) - 1);
const strides = Array.from({ length: addon.info().maxStates + 1 }, (_, i) => 2 + i);
const scalars = () => pick([new Float64Array(pick(scalarLengths)).fill(rnd()), new Float32Array(pick(nScalars)), [1, 2], undefined]);
const flags = () => pick([0, 1, 2, 3, 4, ...allFlags, ...allFlags.map((f) => f + 1), 256, 768, -1, 0.5, NaN, 2 ** 32, '1', undefined, 1n]);
const lists = () => {
  const stride = pick(strides);
  const tensors = pick([0, 1, 2, 3]);
  const n = len();
  const C = pick([Float32Array, Float64Array]);
  const out = [];
  for (let t = 0; t < tensors; t++) for (let j = 0; j < stride; j++) out.push(rnd() < 0.9 ? new C(n).fill(0.25) : arrays());
  if (rnd() < 0.2) out.push(pick([1, null, {}, arrays()]));
  return out;
};
const handles = [];
const value = () => {
  const r = rnd();
  if (r < 0.35) return lists();
  if (r < 0.5) return arrays();
  if (r < 0.6) return scalars();
  if (r < 0.7) return flags();
  if (r < 0.8 && handles.length) return pick(handles);
  return pick([undefined, null, {}, [], 'x', 3, -1, NaN, Symbol('s'), () => 1, new Proxy([], {}), { tensors: 1, buffers: 1 }]);
};
const steps = Object.keys(addon.kernelLayouts()).map((name) => name + 'Step');
let calls = 0, refused = 0;
for (let i = 0; i < 4000; i++) {
  const fn = pick([...steps, ...steps, 'prepare', 'kernelLayouts', 'setIsa', 'info']);
  let args;
  if (fn === 'prepare') args = [lists(), pick([...strides, strides.length + 2, value()])];
  else if (fn === 'setIsa') args = [pick(['avx512', 'avx2', 'baseline', 'best', 'x', value()])];
  else if (fn === 'info' || fn === 'kernelLayouts') args = [];
  else args = [rnd() < 0.3 && handles.length ? pick(handles) : lists(), scalars(), flags()];
  if (rnd() < 0.1) args = Array.from({ length: Math.floor(rnd() * 5) }, value);
  calls++;
  try {
    const out = addon[fn](...args);
    if (fn === 'prepare') handles.push(out);
  } catch (e) {
    if (!(e instanceof TypeError || e instanceof RangeError)) { console.log(fn, e); process.exit(3); }
    refused++;
  }
  if (rnd() < 0.05 && resizable.length) { const b = pick(resizable); b.resize(Math.floor(rnd() * (b.maxByteLength + 1))); }
  if (rnd() < 0.02 && typeof gc === 'function') gc();
}
addon.setIsa('best');
console.log('calls:', calls, 'refused:', refused);
`;
