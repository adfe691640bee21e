/**
 * Argument checks shared by the public linear algebra functions. Each names the function and
 * the argument (`matmul: options.out has length 5, expected m*n = 6`) and throws before anything
 * is written.
 */
import { OptimRangeError, OptimTypeError } from '../errors.js';
import type { FloatArray } from '../backend/types.js';
import { checkKnownKeys, describe, isFloatArray } from '../optim/validate.js';

export function floatArray(fn: string, name: string, v: unknown): FloatArray {
  if (!isFloatArray(v)) {
    throw new OptimTypeError(`${fn}: ${name} must be a Float32Array or Float64Array, got ${describe(v)}`);
  }
  return v;
}

/** `v` must be the same kind of array as `like` (one dtype per call). */
export function sameType(fn: string, name: string, v: unknown, like: FloatArray, likeName: string): FloatArray {
  const arr = floatArray(fn, name, v);
  if (arr.constructor !== like.constructor) {
    throw new OptimTypeError(`${fn}: ${name} must be a ${like.constructor.name} like ${likeName}, got ${describe(v)}`);
  }
  return arr;
}

/** The options object (undefined reads as none); unknown keys are refused, as typos. */
export function options(fn: string, v: unknown, known: readonly string[]): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) {
    throw new OptimTypeError(`${fn}: options must be an object, got ${describe(v)}`);
  }
  checkKnownKeys(v, known, fn, false);
  return v as Record<string, unknown>;
}

export function dimension(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number') throw new OptimTypeError(`${fn}: ${name} must be a number, got ${describe(v)}`);
  if (!(v >= 0 && Number.isSafeInteger(v))) {
    throw new OptimRangeError(`${fn}: ${name} must be a non-negative integer, got ${v}`);
  }
  return v;
}

export function optionalDimension(fn: string, name: string, v: unknown): number | undefined {
  return v === undefined ? undefined : dimension(fn, name, v);
}

export function finiteNumber(fn: string, name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw new OptimTypeError(`${fn}: ${name} must be a number, got ${describe(v)}`);
  if (!Number.isFinite(v)) throw new OptimRangeError(`${fn}: ${name} must be a finite number, got ${v}`);
  return v;
}

export function boolean(fn: string, name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new OptimTypeError(`${fn}: ${name} must be a boolean, got ${describe(v)}`);
  return v;
}

function detached(a: FloatArray): boolean {
  if (a.length !== 0) return false;
  try {
    new Uint8Array(a.buffer);
    return false;
  } catch {
    return true;
  }
}

export function expectLength(fn: string, name: string, a: FloatArray, want: number, formula: string): void {
  if (a.length === want) return;
  if (detached(a)) throw new OptimTypeError(`${fn}: ${name} is backed by a detached ArrayBuffer`);
  throw new OptimRangeError(`${fn}: ${name} has length ${a.length}, expected ${formula} = ${want}`);
}

/** `total / by`, which must be exact; `by` must be positive. */
export function quotient(fn: string, name: string, total: number, by: number, byName: string): number {
  const q = total / by;
  if (!Number.isInteger(q)) {
    throw new OptimRangeError(`${fn}: ${name} has length ${total}, which is not a multiple of ${byName} = ${by}`);
  }
  return q;
}

export function sameMemory(x: FloatArray, y: FloatArray): boolean {
  return x.buffer === y.buffer && x.byteOffset === y.byteOffset && x.length === y.length;
}

export function noOverlap(fn: string, outName: string, out: FloatArray, name: string, other: FloatArray): void {
  if (out.buffer !== other.buffer || out.length === 0 || other.length === 0) return;
  if (out.byteOffset < other.byteOffset + other.byteLength && other.byteOffset < out.byteOffset + out.byteLength) {
    throw new OptimRangeError(`${fn}: ${outName} must not share memory with ${name}`);
  }
}

/** A zeroed array of `like`'s type. */
export function alloc<T extends FloatArray>(like: T, length: number): T {
  return (like instanceof Float32Array ? new Float32Array(length) : new Float64Array(length)) as T;
}
