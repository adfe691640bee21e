/**
 * Bad input to the linear algebra functions, on both backends (and every native path for the
 * failures found while computing): matrices that are not positive definite, singular or hold
 * NaN/±Inf, and wrong types, sizes and options. Each gives a clear error naming the argument,
 * and no buffer changes (a failed factorisation leaves `a` alone; only an explicit `out` or
 * `inPlace` destination may hold partial results, as documented). The raw addon exports are
 * fuzzed with random arguments in a child process: no crash.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CholeskyError, choSolve, choSolveAsync, cholesky, choleskyAsync, eigh, eighAsync, gram, matmul, matmulAsync, solveSPD,
} from '../src/linalg/index.js';
import { OptimRangeError, OptimTypeError } from '../src/errors.js';
import type { FloatArray } from '../src/backend/types.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { bytes, linalgAddon, nativePaths, useNativePath } from './helpers/linalg.js';
import type { NativePath } from './helpers/linalg.js';
import { errorOf } from './helpers/snapshot.js';

/** n×n diagonal matrix with the given diagonal, off-diagonals `off` (small enough to keep it PD). */
function diag(d: number[], off = 0): Float64Array {
  const n = d.length;
  const a = new Float64Array(n * n).fill(off);
  for (let i = 0; i < n; i++) a[i * n + i] = d[i];
  return a;
}

/** Runs `fn`, expecting it to throw `cls`; checks that no array in `arrays` changed. */
function refuses(fn: () => unknown, cls: new (...args: never[]) => Error, pattern: RegExp, arrays: FloatArray[]): Error {
  const before = arrays.map(bytes);
  const err = errorOf(fn);
  expect(err).toBeInstanceOf(cls);
  expect((err as Error).message).toMatch(pattern);
  arrays.forEach((a, i) => expect(Buffer.from(bytes(a)).equals(before[i]), `argument ${i} changed`).toBe(true));
  return err as Error;
}

async function rejects(p: () => Promise<unknown>, cls: new (...args: never[]) => Error, pattern: RegExp): Promise<Error> {
  let promise: Promise<unknown> | undefined;
  expect(() => {
    promise = p();
  }).not.toThrow();
  const err = await promise!.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(cls);
  expect((err as Error).message).toMatch(pattern);
  return err as Error;
}

interface Config {
  label: string;
  backend: (typeof backendRows)[number][1];
  path?: NativePath;
}

const configs: Config[] = backendRows.flatMap(([name, backend]): Config[] =>
  name === 'native' ? nativePaths.map((p) => ({ label: `native ${p.name}`, backend, path: p })) : [{ label: name, backend }],
);

describe.each(configs)('matrices a factorisation cannot take: $label', ({ backend, path: p }) => {
  useBackend(backend);
  beforeAll(() => useNativePath(p));
  afterAll(() => useNativePath(undefined));

  it('a symmetric indefinite matrix: CholeskyError with the first non-positive pivot; a unchanged', () => {
    const a = Float64Array.from([1, 2, 2, 1]);
    const e = refuses(() => cholesky(a, 2), CholeskyError, /not positive definite.*pivot 1/, [a]);
    expect(e).toBeInstanceOf(OptimRangeError);
    expect(e).toBeInstanceOf(RangeError);
    expect((e as CholeskyError).pivot).toBe(1);
    expect(e.name).toBe('CholeskyError');
  });

  for (const [n, bad] of [[5, 0], [40, 37], [100, 70], [300, 200]] as const) {
    it(`pivot ${bad} of ${n}: found at the right index whichever block holds it, in every mode`, () => {
      const d = Array.from({ length: n }, (_, i) => (i === bad ? -1 : 2));
      const a = diag(d, 0.001);
      refuses(() => cholesky(a, n), CholeskyError, new RegExp(`pivot ${bad} `), [a]);
      const out = new Float64Array(n * n);
      const e = refuses(() => cholesky(a, n, { out }), CholeskyError, /pivot/, [a]);
      expect((e as CholeskyError).pivot).toBe(bad);
      const f = a.slice();
      expect(() => cholesky(f, n, { inPlace: true })).toThrow(CholeskyError);
      expect(() => cholesky(Float32Array.from(a), n)).toThrow(CholeskyError);
    });
  }

  it('a singular positive semidefinite matrix (all ones) fails at pivot 1, also through solveSPD', () => {
    const a = new Float64Array(9).fill(1);
    const b = Float64Array.from([1, 2, 3]);
    expect((refuses(() => cholesky(a, 3), CholeskyError, /pivot 1/, [a]) as CholeskyError).pivot).toBe(1);
    refuses(() => solveSPD(a, b, 3), CholeskyError, /pivot 1/, [a, b]);
  });

  it('a zero matrix fails at pivot 0; n = 0 factors to nothing', () => {
    expect(() => cholesky(new Float64Array(4), 2)).toThrow(/pivot 0/);
    expect(cholesky(new Float64Array(0), 0)).toHaveLength(0);
  });

  for (const bad of [NaN, Infinity, -Infinity]) {
    it(`${bad} in the lower triangle is refused before anything is written (cholesky, eigh, solveSPD)`, () => {
      const a = diag([4, 4, 4]);
      a[2 * 3 + 1] = bad;
      const out = new Float64Array(9).fill(7);
      refuses(() => cholesky(a, 3, { out }), OptimRangeError, new RegExp(`a\\[2, 1\\] is ${bad}`), [a, out]);
      refuses(() => cholesky(a, 3, { inPlace: true }), OptimRangeError, /must be finite/, [a]);
      const values = new Float64Array(3), vectors = new Float64Array(9);
      refuses(() => eigh(a, 3, { values, vectors }), OptimRangeError, /a\[2, 1\] is/, [a, values, vectors]);
      refuses(() => solveSPD(a, new Float64Array(3), 3), OptimRangeError, /must be finite/, [a]);
    });
  }

  it('the upper triangle is not read: NaN there changes nothing', () => {
    const a = diag([4, 9]);
    a[1] = NaN;
    expect(Array.from(cholesky(a, 2))).toEqual([2, 0, 0, 3]);
    expect(Array.from(eigh(a, 2).values)).toEqual([4, 9]);
  });

  it('choSolve refuses a non-finite b and a zero or non-finite diagonal in L; x untouched', () => {
    const L = diag([2, 3]);
    const x = new Float64Array(2).fill(5);
    refuses(() => choSolve(L, Float64Array.from([1, NaN]), 2, { out: x }), OptimRangeError, /b\[1, 0\] is NaN/, [L, x]);
    const Z = diag([2, 0]);
    refuses(() => choSolve(Z, Float64Array.from([1, 1]), 2, { out: x }), OptimRangeError, /L\[1, 1\] is 0/, [Z, x]);
    const I = diag([2, Infinity]);
    refuses(() => choSolve(I, Float64Array.from([1, 1]), 2, { out: x }), OptimRangeError, /L\[1, 1\] is Infinity/, [I, x]);
  });

  it('matmul propagates NaN as IEEE arithmetic does (not refused)', () => {
    const c = matmul(Float64Array.from([NaN, 1]), Float64Array.from([1, 1]), { m: 1, n: 1 });
    expect(c[0]).toBeNaN();
  });

  it('async forms reject with the same errors (CholeskyError, RangeError), never throw synchronously', async () => {
    const e = await rejects(() => choleskyAsync(Float64Array.from([1, 2, 2, 1]), 2), CholeskyError, /pivot 1/);
    expect((e as CholeskyError).pivot).toBe(1);
    await rejects(() => eighAsync(Float64Array.from([NaN, 0, 0, 1]), 2), OptimRangeError, /a\[0, 0\] is NaN/);
    await rejects(() => choSolveAsync(diag([1, 1]), Float64Array.from([Infinity, 0]), 2), OptimRangeError, /b\[0, 0\]/);
  });
});

describe.each(backendRows)('wrong arguments: %s', (_name, backend) => {
  useBackend(backend);
  const a = Float64Array.from([1, 2, 3, 4, 5, 6]);
  const b = Float64Array.from([1, 0, 0, 1, 1, 1]);
  const spd = diag([4, 9]);

  it('matmul: types, dtypes, lengths, dimensions, options and overlap, each named', () => {
    const out = new Float64Array(4).fill(3);
    const all = [a, b, out];
    refuses(() => matmul([1, 2] as unknown as Float64Array, b, { m: 2 }), OptimTypeError, /matmul: a must be a Float32Array or Float64Array, got Array/, all);
    refuses(() => matmul(a, Float32Array.from(b), { m: 2 }), OptimTypeError, /b must be a Float64Array like a, got Float32Array/, all);
    refuses(() => matmul(a, b, { m: 2, out: new Int32Array(4) as unknown as Float64Array }), OptimTypeError, /options.out must be a Float32Array or Float64Array, got Int32Array/, all);
    refuses(() => matmul(a, b, {}), OptimTypeError, /give at least one of options.m/, all);
    refuses(() => matmul(a, b, { m: 4 }), OptimRangeError, /a has length 6, which is not a multiple of m = 4/, all);
    refuses(() => matmul(a, b, { m: 2, k: 3, n: 3 }), OptimRangeError, /b has length 6, expected k\*n = 9/, all);
    refuses(() => matmul(a, b, { m: 2, n: 2, out: new Float64Array(5) }), OptimRangeError, /options.out has length 5, expected m\*n = 4/, all);
    refuses(() => matmul(a, b, { m: -1 }), OptimRangeError, /options.m must be a non-negative integer, got -1/, all);
    refuses(() => matmul(a, b, { m: 1.5 }), OptimRangeError, /options.m must be a non-negative integer/, all);
    refuses(() => matmul(a, b, { m: '2' as unknown as number }), OptimTypeError, /options.m must be a number, got string/, all);
    refuses(() => matmul(a, b, { m: 2, alpha: NaN }), OptimRangeError, /options.alpha must be a finite number, got NaN/, all);
    refuses(() => matmul(a, b, { m: 2, transA: 1 as unknown as boolean }), OptimTypeError, /options.transA must be a boolean/, all);
    refuses(() => matmul(a, b, { m: 2, tranA: true } as never), OptimTypeError, /unknown option "tranA"/, all);
    refuses(() => matmul(a, b, 3 as never), OptimTypeError, /options must be an object/, all);
    const big = new Float64Array(12);
    const view = big.subarray(2, 6);
    refuses(() => matmul(big.subarray(0, 6), b, { m: 2, n: 2, out: view }), OptimRangeError, /options.out must not share memory with a/, [big, b]);
  });

  it('gram, cholesky, choSolve, solveSPD, eigh: sizes, dtypes and options, each named', () => {
    const all = [a, b, spd];
    refuses(() => gram(a, {}), OptimTypeError, /give options.rows or options.cols/, all);
    refuses(() => gram(a, { rows: 4 }), OptimRangeError, /a has length 6, which is not a multiple of rows = 4/, all);
    refuses(() => gram(a, { rows: 2, out: new Float64Array(9) }), OptimRangeError, /options.out has length 9, expected rows\*rows = 4/, all);
    refuses(() => cholesky(a, 2), OptimRangeError, /cholesky: a has length 6, expected n\*n = 4/, all);
    refuses(() => cholesky(spd, undefined as unknown as number), OptimTypeError, /cholesky: n must be a number/, all);
    refuses(() => cholesky(spd, 2, { out: new Float32Array(4) as unknown as Float64Array }), OptimTypeError, /options.out must be a Float64Array like a/, all);
    refuses(() => cholesky(spd, 2, { out: new Float64Array(4), inPlace: true }), OptimRangeError, /give one of them/, all);
    refuses(() => cholesky(spd, 2, { out: spd.subarray(1, 5) as Float64Array }), OptimRangeError, /has length 3|must not share memory/, all);
    refuses(() => choSolve(spd, a, 4), OptimRangeError, /choSolve: L has length 4, expected n\*n = 16/, all);
    refuses(() => choSolve(spd, Float64Array.from([1, 2, 3]), 2), OptimRangeError, /b has length 3, which is not a multiple of n = 2/, all);
    refuses(() => choSolve(spd, Float64Array.from([1, 2]), 2, { nrhs: 2 }), OptimRangeError, /b has length 2, expected n\*nrhs = 4/, all);
    refuses(() => choSolve(spd, spd.subarray(0, 2) as Float64Array, 2, { inPlace: true }), OptimRangeError, /b must not share memory with L/, all);
    refuses(() => solveSPD(spd, Float32Array.from([1, 2]) as unknown as Float64Array, 2), OptimTypeError, /solveSPD: b must be a Float64Array like a/, all);
    refuses(() => eigh(spd, 2, { values: new Float64Array(3) }), OptimRangeError, /options.values has length 3, expected n = 2/, all);
    refuses(() => eigh(spd, 2, { vectors: spd }), OptimRangeError, /options.vectors must not share memory with a/, all);
  });

  it('a detached buffer is named as such', () => {
    const d = new Float64Array(4);
    structuredClone(d.buffer, { transfer: [d.buffer] });
    refuses(() => cholesky(d, 2), OptimTypeError, /a is backed by a detached ArrayBuffer/, []);
  });

  it('async forms reject bad arguments instead of throwing', async () => {
    await rejects(() => matmulAsync(a, b, { m: 4 }), OptimRangeError, /matmulAsync: a has length 6/);
    await rejects(() => choleskyAsync(a, 2), OptimRangeError, /choleskyAsync: a has length 6/);
    await rejects(() => choSolveAsync(spd, a.subarray(0, 3), 2), OptimRangeError, /not a multiple of n = 2/);
    await rejects(() => eighAsync(a, 2), OptimRangeError, /eighAsync: a has length 6/);
  });

  it('the Backend kernels themselves refuse what the public functions would', () => {
    const out = new Float64Array(4);
    refuses(() => backend.gemm(a, b, out, 2, 2, 4, false, false, 1, 0), OptimRangeError, /a has length 6, expected m\*k = 8/, [out]);
    refuses(() => backend.gemm(a, Float32Array.from(b), out, 2, 2, 3, false, false, 1, 0), OptimTypeError, /b must be a Float64Array like a/, [out]);
    refuses(() => backend.gemm(a, b, out, 2, 2, 3, false, false, 1, Infinity), OptimRangeError, /beta must be finite/, [out]);
    refuses(() => backend.potrf(spd, out, 3), OptimRangeError, /a has length 4, expected n\*n = 9/, [out]);
    refuses(() => backend.potrs(spd, out, out.subarray(0, 2), 2, 2), OptimRangeError, /x has length 2, expected n\*nrhs = 4/, [out]);
    refuses(() => backend.syevd(spd, out, new Float64Array(4), 2), OptimRangeError, /values has length 4, expected n = 2/, [out]);
    refuses(() => backend.syrk(a, out, 2, 3, true), OptimRangeError, /c has length 4, expected cols\*cols = 9/, [out]);
  });
});

describe.runIf(linalgAddon !== undefined)('the raw addon exports', () => {
  it('random argument lists never crash the process (fuzz, in a child process)', () => {
    const seed = Number(process.env.FC_SEED ?? (process.env.CI === 'true' ? 20251123 : Date.now() % 2 ** 31));
    const root = path.resolve(__dirname, '..');
    const load = `
      const root = ${JSON.stringify(root)};
      const explicit = process.env.OPTIM_ADDON_PATH;
      const addon = explicit ? require(require('node:path').resolve(explicit)) : require(require.resolve('node-gyp-build', { paths: [root] }))(root);
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', load + FUZZ.replace('__SEED__', String(seed))], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.signal, `seed ${seed}: ${r.stderr}`).toBeNull();
    expect(r.status, `seed ${seed}: ${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('calls:');
  });
});

/**
 * Calls random linear algebra exports with random arguments from a pool of valid, nearly valid
 * and absurd values (wrong types, detached, shared, resizable and aliased buffers, huge and
 * fractional dimensions). Anything thrown or rejected other than TypeError, RangeError or the
 * documented not-positive-definite / no-convergence errors fails; so does a crash.
 */
const FUZZ = `
let s = (__SEED__ >>> 0) || 1;
const rnd = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
const dims = [0, 1, 2, 3, 4, 9, 2 ** 31, 2 ** 32 + 1, 2 ** 53, -1, 1.5, NaN, Infinity, '2', undefined, null, 1n];
const resizable = [];
const array = (n) => {
  const C = pick([Float64Array, Float32Array, Float64Array, Float32Array, Int32Array, Uint8Array]);
  const k = rnd();
  if (k < 0.08) { const t = new C(n); structuredClone(t.buffer, { transfer: [t.buffer] }); return t; }
  if (k < 0.16) return new C(new SharedArrayBuffer((n + 2) * C.BYTES_PER_ELEMENT), C.BYTES_PER_ELEMENT, n);
  if (k < 0.24) {
    const b = new ArrayBuffer(n * C.BYTES_PER_ELEMENT, { maxByteLength: (n + 8) * C.BYTES_PER_ELEMENT });
    resizable.push(b);
    return new C(b);
  }
  const t = new C(n);
  for (let i = 0; i < n; i++) t[i] = pick([0.5, 1, 2, -1, 0, NaN, Infinity, 1e308]);
  if (C === Float64Array || C === Float32Array) for (let i = 0; i * Math.sqrt(n) < n; i++) t[i * Math.sqrt(n) + i] = 3;
  return t;
};
const pool = [];
const operand = () => {
  const r = rnd();
  if (r < 0.25 && pool.length) return pick(pool);
  if (r < 0.85) { const t = array(pick([0, 1, 2, 4, 9, 16])); pool.push(t); if (pool.length > 40) pool.shift(); return t; }
  return pick([undefined, null, {}, [], [1, 2], 'x', 3, Symbol('s'), () => 1, new Proxy([], {})]);
};
const arg = (kind) => (kind === 'a' ? operand() : kind === 'f' ? pick([0, 1, 2, 3, 4, -1, 0.5, NaN]) :
  kind === 'x' ? pick([0, 1, -2.5, 0.5, NaN, Infinity, 'a']) : pick(dims));
const SIGS = {
  matmul: 'aaadddfxx', matmulAsync: 'aaadddfxx', gram: 'aaddf', cholesky: 'aad', choleskyAsync: 'aad',
  choSolve: 'aaadd', choSolveAsync: 'aaadd', eigh: 'aaad', eighAsync: 'aaad',
  setBlas: 's', setIsa: 's', info: '',
};
const allowed = (e) => e instanceof TypeError || e instanceof RangeError ||
  (e instanceof Error && (e.code === 'ERR_OPTIM_NOT_POSITIVE_DEFINITE' || e.code === 'ERR_OPTIM_NO_CONVERGENCE'));
const pending = [];
let calls = 0, ok = 0;
for (let i = 0; i < 3000; i++) {
  const fn = pick(Object.keys(SIGS));
  const sig = SIGS[fn];
  let args = [...sig].map((k) => (k === 's' ? pick(['openblas', 'builtin', 'best', 'avx2', 'baseline', 'x', 1]) : arg(k)));
  // Consistent shapes now and then, so calls get past validation into the kernels.
  if (rnd() < 0.4 && sig.startsWith('aa')) {
    const n = pick([1, 2, 3, 4]);
    const C = pick([Float64Array, Float32Array]);
    const spd = () => { const t = new C(n * n); for (let j = 0; j < n; j++) t[j * n + j] = pick([2, -1, 0, NaN]); return t; };
    if (fn.startsWith('matmul')) args = [new C(n * n).fill(1), new C(n * n).fill(2), new C(n * n), n, n, n, pick([0, 1, 2, 3]), 1, pick([0, 1])];
    else if (fn === 'gram') args = [new C(n * 2).fill(1), new C(n * n), n, 2, 0];
    else if (fn.startsWith('cholesky')) { const t = spd(); args = [t, pick([t, new C(n * n)]), n]; }
    else if (fn.startsWith('choSolve')) { const t = spd(); const b = new C(n).fill(1); args = [t, b, pick([b, new C(n)]), n, 1]; }
    else args = [spd(), new C(n), new C(n * n), n];
  }
  if (rnd() < 0.05) args = args.slice(0, Math.floor(rnd() * args.length));
  calls++;
  try {
    const r = addon[fn](...args);
    if (!(r && typeof r.then === 'function')) ok++;
    else pending.push(r.then(() => { ok++; }, (e) => { if (!allowed(e)) { console.log(fn, e); process.exit(3); } }));
  } catch (e) {
    if (!allowed(e)) { console.log(fn, e); process.exit(3); }
  }
  if (rnd() < 0.05 && resizable.length) { const b = pick(resizable); b.resize(Math.floor(rnd() * (b.maxByteLength + 1))); }
  if (rnd() < 0.02 && typeof gc === 'function') gc();
}
Promise.all(pending).then(() => { addon.setBlas('best'); addon.setIsa('best'); console.log('calls:', calls, 'completed:', ok); });
`;
