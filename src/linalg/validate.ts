/**
 * The checks only the linear algebra (and the objectives built on it) make, in src/validate.ts's
 * order: value, key, where (`'matmul: '`), then the rule's arguments. Messages name the function
 * and the argument (`matmul: options.out must not share memory with a`); everything is checked
 * before anything is written.
 */
import { OptimRangeError } from '../errors.js';
import type { FloatArray } from '../backend/types.js';
import { checkDimension, path } from '../validate.js';

/** An optional dimension: undefined stays undefined (inferred later). */
export function optionalDimension(v: unknown, key: string, where: string): number | undefined {
  return v === undefined ? undefined : checkDimension(v, key, where);
}

/** `total / by`, the length `total` of `key` divided exactly by the dimension `byKey` = `by` (> 0). */
export function quotient(total: number, key: string, where: string, by: number, byKey: string): number {
  const q = total / by;
  if (!Number.isInteger(q)) {
    throw new OptimRangeError(`${path(where, key)} has length ${total}, which is not a multiple of ${byKey} = ${by}`);
  }
  return q;
}

export function sameMemory(x: FloatArray, y: FloatArray): boolean {
  return x.buffer === y.buffer && x.byteOffset === y.byteOffset && x.length === y.length;
}

/** The output `out` shares no byte with the input `other`, named `otherKey`. */
export function noOverlap(out: FloatArray, key: string, where: string, other: FloatArray, otherKey: string): void {
  if (out.buffer !== other.buffer || out.length === 0 || other.length === 0) return;
  if (out.byteOffset < other.byteOffset + other.byteLength && other.byteOffset < out.byteOffset + out.byteLength) {
    throw new OptimRangeError(`${path(where, key)} must not share memory with ${otherKey}`);
  }
}

/** A zeroed array of `like`'s type. */
export function alloc<T extends FloatArray>(like: T, length: number): T {
  return (like instanceof Float32Array ? new Float32Array(length) : new Float64Array(length)) as T;
}
