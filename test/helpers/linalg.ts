/**
 * Helpers for the linear algebra tests: the native implementations to cover (OpenBLAS, built-in
 * AVX2, built-in baseline; the built-in kernels' ISA is the addon's one setting, setIsa) and matrix
 * utilities.
 */
import { loadNative } from '../../src/backend/native.js';
import type { NativeLinalgAddon } from '../../src/backend/native-linalg.js';
import type { NativeAddon } from '../../src/backend/native.js';
import type { FloatArray } from '../../src/backend/types.js';

const native = loadNative();
export const linalgAddon = native.addon as unknown as (NativeLinalgAddon & NativeAddon) | undefined;

export interface NativePath {
  name: string;
  blas: 'openblas' | 'builtin';
  isa: 'avx2' | 'baseline';
}

/** Every native linear algebra path this build and CPU can run. */
export const nativePaths: NativePath[] = (() => {
  const a = linalgAddon;
  if (!a) return [];
  const paths: NativePath[] = [];
  if (a.info().openblasAvailable) paths.push({ name: 'openblas', blas: 'openblas', isa: 'avx2' });
  if (a.setIsa('avx2')) paths.push({ name: 'builtin-avx2', blas: 'builtin', isa: 'avx2' });
  paths.push({ name: 'builtin-baseline', blas: 'builtin', isa: 'baseline' });
  a.setBlas('best');
  a.setIsa('best');
  return paths;
})();

/** Switches this environment's native linear algebra to `path` (undefined: back to the default). */
export function useNativePath(path: NativePath | undefined): void {
  const a = linalgAddon;
  if (!a) return;
  a.setBlas(path ? path.blas : 'best');
  a.setIsa(path ? path.isa : 'best');
}

/** n uniform numbers in [−1, 1) from `rnd` (uniform in [0, 1): uniformStream in src/data/random.ts). */
export function randomArray<T extends FloatArray>(Ctor: { new (n: number): T }, n: number, rnd: () => number): T {
  const a = new Ctor(n);
  for (let i = 0; i < n; i++) a[i] = 2 * rnd() - 1;
  return a;
}

/** A well-conditioned SPD matrix: G Gᵀ / n + shift·I (eigenvalues in about [shift, shift + 4]). */
export function randomSPD(Ctor: Float32ArrayConstructor | Float64ArrayConstructor, n: number, rnd: () => number, shift = 1): FloatArray {
  const g = randomArray(Float64Array, n * n, rnd);
  const a = new Ctor(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let p = 0; p < n; p++) s += g[i * n + p] * g[j * n + p];
      a[i * n + j] = a[j * n + i] = s / n + (i === j ? shift : 0);
    }
  }
  return a;
}

/** ‖x − y‖₂ / ‖y‖₂ (NaN anywhere gives NaN, which fails any ≤ comparison). */
export function normwise(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) return Infinity;
  let d = 0, s = 0;
  for (let i = 0; i < x.length; i++) {
    d += (x[i] - y[i]) ** 2;
    s += y[i] ** 2;
  }
  return Math.sqrt(d) / (Math.sqrt(s) || 1);
}

export function flat(rows: number[][]): number[] {
  return rows.flat();
}

/** The bytes of a typed array (a copy). */
export function bytes(a: FloatArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}
