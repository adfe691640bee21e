/**
 * Issue 12, item 1: the WebAssembly backend (wasm/optim.wasm, the native kernel headers compiled
 * for wasm32 + SIMD128, src/backend/wasm.ts).
 *
 * Its kernels round every operation (WebAssembly has no guaranteed FMA), as the native baseline
 * set does, from the same sources with the same -ffp-contract=off: so for every registered kernel,
 * every flag combination and every storage (float32, float64, float32 with bfloat16 state), a
 * step must give the native baseline's bits. And in float64 the baseline evaluates the reference
 * loop's operations in the same order (test/kernels-property.test.ts), so there wasm must give
 * the reference backend's bits too, which holds without the addon. Tensors longer than the
 * backend's copy chunk (16384 elements) and several tensors per call cover the copying. Then the
 * backend's contract (checks, non-finite policy, prepared lists), the selection (`setBackend`,
 * OPTIM_BACKEND, `auto` falling back native -> wasm -> reference). A worker thread runs it in
 * test/pack-install.test.ts, on the installed package.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { AnyKernel } from '../src/backend/kernel.js';
import { loadNative } from '../src/backend/native.js';
import { referenceBackend } from '../src/backend/reference.js';
import { getBackend, setBackend } from '../src/backend/select.js';
import { CHECK_FINITE, CHECK_ONLY } from '../src/backend/types.js';
import type { Backend, BackendInfo, StateArray } from '../src/backend/types.js';
import { loadWasm } from '../src/backend/wasm.js';
import { Adam } from '../src/optim/index.js';
import { param } from '../src/param.js';
import { KERNELS } from './helpers/kernels.js';
import { mulberry32 } from './helpers/linalg.js';

const wasmLoad = loadWasm();
const wasm = wasmLoad.backend as Backend;
const native = loadNative();

type Storage = 'float32' | 'float64' | 'bfloat16';
const STORAGES: readonly Storage[] = ['float32', 'float64', 'bfloat16'];
/** One short tensor, one spanning two copy chunks with a ragged tail, one of a single element. */
const LENGTHS = [37, 16384 + 1001, 1];

/** A random call of kernel k: positive states (no square root of a negative), scalars in (0.01, 0.5). */
function makeCall(k: AnyKernel, flags: number, storage: Storage, seed: number): { list: StateArray[]; scalars: Float64Array } {
  const rand = mulberry32(seed);
  const F = storage === 'float64' ? Float64Array : Float32Array;
  const ns = k.stride(flags) - 2;
  const list: StateArray[] = [];
  for (const n of LENGTHS) {
    list.push(F.from({ length: n }, () => rand() * 2 - 1), F.from({ length: n }, () => rand() * 2 - 1));
    for (let j = 0; j < ns; j++) {
      // bfloat16 bit patterns of 0.5 to 2: exponent 0x3f/0x40, random mantissa.
      list.push(storage === 'bfloat16'
        ? Uint16Array.from({ length: n }, () => 0x3f00 + Math.floor(rand() * 0x180))
        : F.from({ length: n }, () => rand() + 0.1));
    }
  }
  return { list, scalars: Float64Array.from({ length: k.nScalars }, () => 0.01 + rand() * 0.49) };
}

function copyList(list: StateArray[]): StateArray[] {
  return list.map((a) => a.slice());
}

/** Indices of elements whose bits differ (both NaN counts as equal: wasm may canonicalize NaN payloads). */
function bitDiffs(a: StateArray[], b: StateArray[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    for (let e = 0; e < x.length; e++) {
      if (!Object.is(x[e], y[e]) && !(Number.isNaN(x[e]) && Number.isNaN(y[e]))) {
        out.push(`list[${i}][${e}]: ${x[e]} vs ${y[e]}`);
        break;
      }
    }
  }
  return out;
}

function storages(k: AnyKernel, flags: number): Storage[] {
  return STORAGES.filter((s) => s !== 'bfloat16' || k.stride(flags) > 2);
}

describe('the module', () => {
  it('loads, and reports the wasm backend', () => {
    expect(wasmLoad.error).toBeUndefined();
    expect(wasm.info()).toMatchObject({ backend: 'wasm', simd: 'wasm-simd128', fma: false, blas: 'none', stepThreads: 1 });
  });

  it('holds exactly the registered kernels, with their scalar counts (else: npm run build:wasm)', () => {
    expect(wasmLoad.kernels).toEqual(KERNELS.map((k) => ({ name: k.name, nScalars: k.nScalars })));
  });
});

describe('float64: the reference backend\'s bits, every kernel and flag combination', () => {
  for (const k of KERNELS) {
    it(k.name, () => {
      const bad: string[] = [];
      for (let flags = 0; flags <= k.allFlags; flags++) {
        const { list, scalars } = makeCall(k, flags, 'float64', 1000 + flags);
        const ref = copyList(list);
        wasm.step(k, list, scalars, flags);
        referenceBackend.step(k, ref, scalars, flags);
        for (const d of bitDiffs(list, ref)) bad.push(`flags ${flags}: ${d}`);
      }
      expect(bad).toEqual([]);
    });
  }
});

describe('the native baseline set\'s bits, every kernel, flag combination and storage', () => {
  const addon = native.addon;
  afterAll(() => addon?.setIsa('best'));
  for (const k of KERNELS) {
    it(k.name, () => {
      if (!addon || !native.backend) throw new Error(`this comparison needs the native addon, which did not load: ${native.error}`);
      expect(addon.setIsa('baseline')).toBe(true);
      const bad: string[] = [];
      for (let flags = 0; flags <= k.allFlags; flags++) {
        for (const storage of storages(k, flags)) {
          const { list, scalars } = makeCall(k, flags, storage, 2000 + flags);
          const ref = copyList(list);
          wasm.step(k, list, scalars, flags);
          native.backend.step(k, ref, scalars, flags);
          for (const d of bitDiffs(list, ref)) bad.push(`${storage} flags ${flags}: ${d}`);
        }
      }
      expect(bad).toEqual([]);
    });
  }
});

describe('the backend contract', () => {
  const adam = KERNELS.find((k) => k.name === 'adam') as AnyKernel;

  it('CHECK_FINITE: returns the first tensor with a non-finite gradient and writes nothing; CHECK_ONLY never writes', () => {
    const { list, scalars } = makeCall(adam, 0, 'float32', 7);
    const stride = adam.stride(0);
    (list[1 * stride + 1] as Float32Array)[16000] = Number.POSITIVE_INFINITY;
    (list[2 * stride + 1] as Float32Array)[0] = Number.NaN;
    const before = copyList(list);
    expect(wasm.step(adam, list, scalars, CHECK_FINITE)).toBe(1);
    expect(bitDiffs(list, before)).toEqual([]);
    const clean = makeCall(adam, 0, 'float32', 8);
    const cleanBefore = copyList(clean.list);
    expect(wasm.step(adam, clean.list, clean.scalars, CHECK_FINITE | CHECK_ONLY)).toBeUndefined();
    expect(bitDiffs(clean.list, cleanBefore)).toEqual([]);
    expect(wasm.step(adam, clean.list, clean.scalars, CHECK_FINITE)).toBeUndefined();
    expect(bitDiffs(clean.list, cleanBefore).length).toBeGreaterThan(0);
  });

  it('steps through a prepared list, and refuses what the reference backend refuses, with its message', () => {
    const a = makeCall(adam, 0, 'float64', 9);
    const b = copyList(a.list);
    const prepared = wasm.prepare(a.list, adam.stride(0));
    wasm.step(adam, prepared, a.scalars, 0);
    wasm.step(adam, b, a.scalars, 0);
    expect(bitDiffs(a.list, b)).toEqual([]);
    const call = (be: Backend) => () => be.step(adam, a.list.slice(0, 5), a.scalars, 0);
    expect(call(wasm)).toThrow();
    expect(call(wasm)).toThrow((() => { try { call(referenceBackend)(); } catch (e) { return (e as Error).message; } return 'none'; })());
  });
});

describe('selection', () => {
  const previous = getBackend().name;
  afterAll(() => setBackend(previous));

  it("setBackend('wasm') runs the optimizers on it", () => {
    expect(setBackend('wasm').backend).toBe('wasm');
    const w = param(new Float32Array([1, 2, 3]), 'w');
    w.grad.set([0.5, -1, 2]);
    new Adam([w], { lr: 0.1 }).step();
    expect(Array.from(w.data).map((v) => Number(v.toFixed(5)))).toEqual([0.9, 2.1, 2.9]);
  });

  /** A fresh copy of the selection modules (nothing loaded or chosen yet) under `env`. */
  async function fresh(env: Record<string, string>): Promise<{ info: BackendInfo; warnings: string[] }> {
    const saved = { ...process.env };
    const warnings: string[] = [];
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(((_: unknown, o: { code?: string }) => {
      warnings.push(String(o?.code));
    }) as typeof process.emitWarning);
    try {
      for (const k of Object.keys(process.env)) if (k.startsWith('OPTIM_')) delete process.env[k];
      Object.assign(process.env, env);
      vi.resetModules();
      const sel = await import('../src/backend/select.js');
      return { info: sel.backendInfo(), warnings };
    } finally {
      spy.mockRestore();
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
      vi.resetModules();
    }
  }

  it('OPTIM_BACKEND=wasm selects it; auto falls back native -> wasm -> reference, warning once with the reason', async () => {
    expect(await fresh({ OPTIM_BACKEND: 'wasm' })).toMatchObject({ info: { backend: 'wasm' }, warnings: [] });
    if (native.backend) expect((await fresh({})).info.backend).toBe('native');
    const toWasm = await fresh({ OPTIM_ADDON_PATH: '/nonexistent/optim.node' });
    expect(toWasm.info.backend).toBe('wasm');
    expect(toWasm.info.fallbackReason).toMatch(/nonexistent/);
    expect(toWasm.warnings).toEqual(['OPTIM_NATIVE_UNAVAILABLE']);
    const toRef = await fresh({ OPTIM_ADDON_PATH: '/nonexistent/optim.node', OPTIM_WASM_PATH: '/nonexistent/optim.wasm' });
    expect(toRef.info.backend).toBe('reference');
    expect(toRef.info.fallbackReason).toMatch(/wasm: .*nonexistent/);
    expect(toRef.warnings).toEqual(['OPTIM_NATIVE_UNAVAILABLE']);
    await expect(fresh({ OPTIM_BACKEND: 'wasm', OPTIM_WASM_PATH: '/nonexistent/optim.wasm' })).rejects.toThrow(/wasm backend cannot load/);
  });
});
