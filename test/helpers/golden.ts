import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { FloatArray } from '../../src/backend/types.js';

/**
 * The vendored reference data: test/golden (see test/golden/README.md for provenance, schema and
 * tolerances). Everything the tests and examples compare against lives here, inside the repository.
 */
export const GOLDEN_DIR = path.resolve(__dirname, '../golden');

/**
 * Parses the golden JSON file at `relPath` under GOLDEN_DIR, e.g. `torch-1.13/adam.json`. Paths
 * that would leave GOLDEN_DIR are refused, so no test reads data from outside the repository.
 */
export function readGolden<T = unknown>(relPath: string): T {
  const file = path.resolve(GOLDEN_DIR, relPath);
  const rel = path.relative(GOLDEN_DIR, file);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new Error(`readGolden: ${relPath} is not a file under ${GOLDEN_DIR}`);
  }
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

type StateValue = number | number[] | null;

/** The fields of a first-order golden file the tests use (see test/golden/README.md). */
export interface FirstOrderGolden {
  id: string;
  optimizer: string;
  dtype: 'float32' | 'float64';
  constructor_kwargs: Record<string, number | boolean>;
  problem: { a: number[]; c: number[]; w0: number[] };
  trajectory: number[][];
  grads: number[][];
  loss: number[];
  state_at_checkpoints: Record<string, Record<string, StateValue>>;
}

/**
 * The torch 1.13 first-order files kept (test/golden/README.md): torch 1.13 took square roots
 * with a correctly rounded sqrt, so for the optimizers whose arithmetic 2.13 left unchanged they
 * show the FMA kernels equal to torch bit for bit, which torch 2.13's MKL sqrt no longer can.
 */
export const TORCH113_IDS = ['adagrad', 'rmsprop'] as const;

/** A first-order file, test/golden/<version>/<id>.json (torch 2.13 unless told). */
export function loadGolden(id: string, version: 'torch-2.13' | 'torch-1.13' = 'torch-2.13'): FirstOrderGolden {
  return readGolden<FirstOrderGolden>(`${version}/${id}.json`);
}

/** torch's snake_case keyword arguments as this library's camelCase options. */
export function camelOptions(kwargs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kwargs)) out[k.replace(/_(\w)/g, (_, c: string) => c.toUpperCase())] = v;
  return out;
}

/** torch's state names as this library's. */
export function camelState(key: string): string {
  return key.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());
}

/** The problem's gradient, evaluated as the README prescribes (float32: rounded once on store). */
export function fillGrad(problem: FirstOrderGolden['problem'], w: FloatArray, g: FloatArray): void {
  const { a, c } = problem;
  for (let i = 0; i < w.length; i++) g[i] = a[i] * (w[i] - c[i]) + 0.1 * Math.cos(w[i]);
}

/** f(w) = 0.5 Σ a_i (w_i − c_i)² + 0.1 Σ sin(w_i). */
export function loss(problem: FirstOrderGolden['problem'], w: ArrayLike<number>): number {
  const { a, c } = problem;
  let f = 0;
  for (let i = 0; i < w.length; i++) f += 0.5 * a[i] * (w[i] - c[i]) ** 2 + 0.1 * Math.sin(w[i]);
  return f;
}

/** Largest |a_i − b_i|, and NaN anywhere makes it NaN (so a comparison with it fails). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d;
  }
  return m;
}

/** Largest |a_i − b_i| / max(1, |b_i|): for state buffers, whose values reach 1e4. */
export function maxScaledDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(d <= m)) m = d;
  }
  return m;
}
