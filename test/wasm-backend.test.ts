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
 *
 * The linear algebra (native/kernels/{gemm,gram,cholesky,eigh}.cc built into the module) must give
 * the native built-in baseline kernels' bits: same sources, no FMA, 16-byte vectors. eigh's one
 * library call, hypot, is glibc's algorithm in the module (native/wasm/include/cmath), so there the
 * bits are compared where the native build calls glibc >= 2.35 on x86-64 (no FMA in libm), and
 * elsewhere eigenvalues within 8 ulps of ‖A‖ and eigenvectors within 8·n ulps. Shapes cross the
 * blocking edges (tile 4×2 vectors, MC 128, KC 256/384, recursion bases 32 and 64); the module's
 * memory grows under a large call, after which steps still work; errors as native, before writing.
 * The linalg-*.test.ts files run on wasm too with OPTIM_TEST_WASM=1 (CI).
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AnyKernel } from '../src/backend/kernel.js';
import { loadNative } from '../src/backend/native.js';
import { referenceBackend } from '../src/backend/reference.js';
import { getBackend, setBackend } from '../src/backend/select.js';
import { CHECK_FINITE, CHECK_ONLY } from '../src/backend/types.js';
import type { Backend, BackendInfo, StateArray } from '../src/backend/types.js';
import { loadWasm } from '../src/backend/wasm.js';
import { Adam } from '../src/optim/index.js';
import { param } from '../src/param.js';
import { uniformStream } from '../src/data/random.js';
import { KERNELS } from './helpers/kernels.js';
import { compiledDist } from './helpers/dist.js';
import { nativePaths, randomArray, randomSPD, useNativePath } from './helpers/linalg.js';
import { CholeskyError, OptimRangeError } from '../src/errors.js';
import type { FloatArray } from '../src/backend/types.js';

const wasmLoad = loadWasm();
const wasm = wasmLoad.backend as Backend;
const native = loadNative();

type Storage = 'float32' | 'float64' | 'bfloat16';
const STORAGES: readonly Storage[] = ['float32', 'float64', 'bfloat16'];
/** One short tensor, one spanning two copy chunks with a ragged tail, one of a single element. */
const LENGTHS = [37, 16384 + 1001, 1];

/** A random call of kernel k: positive states (no square root of a negative), scalars in (0.01, 0.5). */
function makeCall(k: AnyKernel, flags: number, storage: Storage, seed: number): { list: StateArray[]; scalars: Float64Array } {
  const rand = uniformStream(seed);
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
    expect(wasm.info()).toMatchObject({ backend: 'wasm', simd: 'wasm-simd128', fma: false, blas: 'builtin', threads: 1, stepThreads: 1 });
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

  it('CHECK_FINITE on one tensor (scanned in the step\'s own copy when it fits one chunk): 0 and nothing written', () => {
    for (const [F, n, at] of [[Float32Array, 100, 99], [Float64Array, 16384, 0], [Float32Array, 16385, 16384], [Float64Array, 40000, 20000]] as const) {
      for (const bad of [Number.NaN, Number.NEGATIVE_INFINITY]) {
        const rand = uniformStream(n);
        const list: StateArray[] = [0, 1, 2, 3].map(() => F.from({ length: n }, () => rand() + 0.1));
        (list[1] as Float32Array)[at] = bad;
        const before = copyList(list);
        expect(wasm.step(adam, list, Float64Array.from({ length: adam.nScalars }, () => 0.1), CHECK_FINITE)).toBe(0);
        expect(bitDiffs(list, before)).toEqual([]);
      }
    }
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

/** Indices and values of the first differing element of two arrays (bits), or []. */
function arrayDiff(name: string, a: FloatArray, b: FloatArray): string[] {
  if (a.length !== b.length) return [`${name}: length ${a.length} vs ${b.length}`];
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return [`${name}[${i}]: ${a[i]} vs ${b[i]}`];
  return [];
}

/** Whether the native eigh calls glibc's hypot without FMA, the algorithm the module carries. */
function nativeHypotIsWasms(): boolean {
  const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  if (process.arch !== 'x64' || !glibc) return false;
  const [major, minor] = glibc.split('.').map(Number);
  return major > 2 || (major === 2 && minor >= 35);
}

describe('linear algebra: the native built-in baseline kernels\' bits', () => {
  const baseline = nativePaths.find((p) => p.name === 'builtin-baseline');
  beforeAll(() => useNativePath(baseline));
  afterAll(() => useNativePath(undefined));
  const nb = (): Backend => {
    if (!native.backend || !baseline) throw new Error(`this comparison needs the native addon, which did not load: ${native.error}`);
    return native.backend;
  };
  const DTYPES = [Float64Array, Float32Array] as const;

  it('gemm: every transpose, alpha and beta, shapes across the block edges', () => {
    const rnd = uniformStream(11);
    const bad: string[] = [];
    const shapes = [[1, 1, 1], [5, 7, 3], [37, 41, 23], [130, 9, 300], [4, 129, 385], [65, 70, 0]];
    for (const C of DTYPES) {
      for (const [m, n, k] of shapes) {
        for (let t = 0; t < 4; t++) {
          for (const [alpha, beta] of [[1, 0], [-0.5, 2], [0, 1.5]]) {
            const a = randomArray(C, m * k, rnd), b = randomArray(C, k * n, rnd), c = randomArray(C, m * n, rnd);
            const cw = c.slice(), cn = c.slice();
            wasm.gemm(a, b, cw, m, n, k, (t & 1) !== 0, (t & 2) !== 0, alpha, beta);
            nb().gemm(a, b, cn, m, n, k, (t & 1) !== 0, (t & 2) !== 0, alpha, beta);
            bad.push(...arrayDiff(`${C.name} ${m}×${n}×${k} t${t} α${alpha} β${beta}`, cw, cn));
          }
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('gram, cholesky, choSolve (one and several right-hand sides, in place)', () => {
    const rnd = uniformStream(12);
    const bad: string[] = [];
    for (const C of DTYPES) {
      for (const [rows, cols] of [[70, 33], [5, 130], [1, 1]]) {
        for (const trans of [false, true]) {
          const a = randomArray(C, rows * cols, rnd);
          const n = trans ? cols : rows;
          const gw = new C(n * n), gn = new C(n * n);
          wasm.syrk(a, gw, rows, cols, trans);
          nb().syrk(a, gn, rows, cols, trans);
          bad.push(...arrayDiff(`gram ${C.name} ${rows}×${cols} ${trans}`, gw, gn));
        }
      }
      for (const n of [1, 7, 33, 65, 130, 300]) {
        const a = randomSPD(C, n, rnd);
        const lw = new C(n * n).fill(7), ln = new C(n * n);
        wasm.potrf(a, lw, n);
        nb().potrf(a, ln, n);
        bad.push(...arrayDiff(`cholesky ${C.name} n=${n}`, lw, ln));
        const inPlace = a.slice();
        wasm.potrf(inPlace, inPlace, n);
        bad.push(...arrayDiff(`cholesky in place ${C.name} n=${n}`, inPlace, ln));
        for (const nrhs of [1, 3, 40]) {
          const b = randomArray(C, n * nrhs, rnd);
          const xw = new C(n * nrhs), xn = new C(n * nrhs);
          wasm.potrs(ln, b, xw, n, nrhs);
          nb().potrs(ln, b, xn, n, nrhs);
          bad.push(...arrayDiff(`choSolve ${C.name} n=${n} nrhs=${nrhs}`, xw, xn));
          const y = b.slice();
          wasm.potrs(ln, y, y, n, nrhs);
          bad.push(...arrayDiff(`choSolve in place ${C.name} n=${n} nrhs=${nrhs}`, y, xn));
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it(`eigh: ${nativeHypotIsWasms() ? 'the same bits (native calls glibc >= 2.35 on x86-64)' : 'within 8 ulps (native calls another hypot)'}`, () => {
    const rnd = uniformStream(13);
    const exact = nativeHypotIsWasms();
    const bad: string[] = [];
    for (const C of DTYPES) {
      const u = C === Float64Array ? 2 ** -52 : 2 ** -23;
      for (const n of [1, 2, 3, 10, 40, 65, 130]) {
        const a = new C(n * n);
        for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = 2 * rnd() - 1;
        const ww = new C(n), vw = new C(n * n), wn = new C(n), vn = new C(n * n);
        wasm.syevd(a, ww, vw, n);
        nb().syevd(a, wn, vn, n);
        if (exact) {
          bad.push(...arrayDiff(`eigh values ${C.name} n=${n}`, ww, wn), ...arrayDiff(`eigh vectors ${C.name} n=${n}`, vw, vn));
          continue;
        }
        const norm = Math.max(...Array.from(wn, Math.abs), 1e-300);
        for (let j = 0; j < n; j++) if (!(Math.abs(ww[j] - wn[j]) <= 8 * u * norm)) bad.push(`values ${C.name} n=${n} [${j}]`);
        for (let i = 0; i < n * n; i++) if (!(Math.abs(vw[i] - vn[i]) <= 8 * n * u)) bad.push(`vectors ${C.name} n=${n} [${i}]`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('a CholeskyError names the pivot native names; non-finite input is refused before anything is written', () => {
    for (const [n, bad] of [[5, 0], [40, 37], [300, 200]]) {
      const a = new Float64Array(n * n).fill(0.001);
      for (let i = 0; i < n; i++) a[i * n + i] = i === bad ? -1 : 2;
      const pivot = (be: Backend): number => {
        try {
          be.potrf(a, new Float64Array(n * n), n);
        } catch (e) {
          expect(e).toBeInstanceOf(CholeskyError);
          return (e as CholeskyError).pivot;
        }
        return -1;
      };
      expect(pivot(wasm)).toBe(bad);
      expect(pivot(wasm)).toBe(pivot(nb()));
    }
    const a = Float64Array.from([4, 0, 0, NaN, 4, 0, 0, 0, 4]);
    a[3] = NaN;
    const out = new Float64Array(9).fill(7);
    expect(() => wasm.potrf(a, out, 3)).toThrow(OptimRangeError);
    expect(() => wasm.potrf(a, out, 3)).toThrow(/a\[1, 0\] is NaN; the matrix must be finite/);
    expect(Array.from(out)).toEqual(new Array(9).fill(7));
    const x = new Float64Array(3).fill(5);
    expect(() => wasm.potrs(Float64Array.from([2, 0, 0, 0, 0, 0, 0, 0, 2]), Float64Array.from([1, 1, 1]), x, 3, 1)).toThrow(/L\[1, 1\] is 0/);
    expect(Array.from(x)).toEqual([5, 5, 5]);
  });

  it('the memory grows under a large call, and steps and calls still run after it', () => {
    const n = 1200; // three 11.5 MB float64 operands: more than the module's memory so far
    const rnd = uniformStream(14);
    const a = randomArray(Float64Array, n * n, rnd), b = randomArray(Float64Array, n * n, rnd);
    const cw = new Float64Array(n * n), cn = new Float64Array(n * n);
    wasm.gemm(a, b, cw, n, n, n, false, true, 1, 0);
    nb().gemm(a, b, cn, n, n, n, false, true, 1, 0);
    expect(arrayDiff('gemm 1200', cw, cn)).toEqual([]);
    const adam = KERNELS.find((k) => k.name === 'adam') as AnyKernel;
    const { list, scalars } = makeCall(adam, 0, 'float64', 15);
    const ref = copyList(list);
    wasm.step(adam, list, scalars, 0);
    referenceBackend.step(adam, ref, scalars, 0);
    expect(bitDiffs(list, ref)).toEqual([]);
    // The blocks of the large call were released: a second one reuses them (same result again).
    wasm.gemm(a, b, cw, n, n, n, false, true, 1, 0);
    expect(arrayDiff('gemm 1200 again', cw, cn)).toEqual([]);
  });

  it('async forms give the sync bits, on a later turn of the event loop', async () => {
    const a = Float64Array.from([4, 2, 2, 3]);
    const out = new Float64Array(4);
    const p = wasm.potrfAsync(a, out, 2);
    expect(Array.from(out)).toEqual([0, 0, 0, 0]);
    await p;
    expect(Array.from(out)).toEqual([2, 0, 1, Math.SQRT2]);
    await expect(wasm.potrfAsync(Float64Array.from([1, 2, 2, 1]), new Float64Array(4), 2)).rejects.toThrow(CholeskyError);
  });

  it('runs in a worker thread with the main thread\'s bits', async () => {
    const dist = path.dirname(compiledDist());
    const n = 90;
    const spd = randomSPD(Float64Array, n, uniformStream(16));
    const want = new Float64Array(n * n);
    wasm.potrf(spd, want, n);
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const lib = require(workerData.index);
      const linalg = require(workerData.linalg);
      lib.setBackend('wasm');
      parentPort.postMessage({ backend: lib.backendInfo().backend, blas: lib.backendInfo().blas, L: linalg.cholesky(workerData.spd, workerData.n) });
    `;
    const got = await new Promise<{ backend: string; blas: string; L: Float64Array }>((resolve, reject) => {
      const w = new Worker(code, {
        eval: true,
        workerData: { index: path.join(dist, 'index.js'), linalg: path.join(dist, 'linalg', 'index.js'), spd, n },
      });
      w.once('message', (m) => {
        resolve(m);
        void w.terminate();
      });
      w.once('error', reject);
    });
    expect(got).toMatchObject({ backend: 'wasm', blas: 'builtin' });
    expect(arrayDiff('worker cholesky', got.L, want)).toEqual([]);
  }, 120_000); // the first caller of compiledDist() compiles src/ (seconds on a loaded machine)
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
