import { OptimRangeError, OptimTypeError } from '../errors.js';
import type { FloatArray } from '../backend/types.js';

/**
 * Where a hyperparameter lives, for messages: a group index (`paramGroups[i].`) or a literal
 * prefix such as `options.`. A number keeps the per-step checks free of string building.
 */
export type Where = number | string;

/** The prefix for hyperparameters given to a constructor. */
export const OPTIONS: Where = 'options.';

export function isFloatArray(v: unknown): v is FloatArray {
  return v instanceof Float64Array || v instanceof Float32Array;
}

/** A short description of a value's type for messages: `Int32Array`, `Array`, `null`, `string`. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'Array';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return typeof v;
}

function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : typeof v === 'string' ? JSON.stringify(v) : describe(v);
}

export function path(where: Where, key: string): string {
  return typeof where === 'number' ? `paramGroups[${where}].${key}` : `${where}${key}`;
}

/**
 * A finite number >= 0. `label` is torch's message (`Invalid learning rate`), kept verbatim so
 * users searching for it find the same cause.
 */
export function checkNonNegative(v: unknown, key: string, label: string, where: Where): void {
  if (typeof v !== 'number') {
    throw new OptimTypeError(`${label}: ${show(v)} (${path(where, key)} must be a number, got ${describe(v)})`);
  }
  if (!(v >= 0 && v < Infinity)) {
    throw new OptimRangeError(`${label}: ${show(v)} (${path(where, key)} must be a finite number >= 0)`);
  }
}

export function checkFinite(v: unknown, key: string, label: string, where: Where): void {
  if (typeof v !== 'number') {
    throw new OptimTypeError(`${label}: ${show(v)} (${path(where, key)} must be a number, got ${describe(v)})`);
  }
  if (!Number.isFinite(v)) {
    throw new OptimRangeError(`${label}: ${show(v)} (${path(where, key)} must be a finite number)`);
  }
}

export function checkBoolean(v: unknown, key: string, where: Where): void {
  if (typeof v !== 'boolean') {
    throw new OptimTypeError(`${path(where, key)} must be a boolean, got ${describe(v)}`);
  }
}

/** `betas`: two numbers in [0, 1). */
export function checkBetas(v: unknown, where: Where): void {
  if (!Array.isArray(v) || v.length !== 2) {
    throw new OptimTypeError(
      `${path(where, 'betas')} must be an array of two numbers, got ${Array.isArray(v) ? `an Array of length ${v.length}` : describe(v)}`,
    );
  }
  for (let i = 0; i < 2; i++) {
    const b: unknown = v[i];
    if (typeof b !== 'number') {
      throw new OptimTypeError(
        `Invalid beta parameter at index ${i}: ${show(b)} (${path(where, 'betas')}[${i}] must be a number, got ${describe(b)})`,
      );
    }
    if (!(b >= 0 && b < 1)) {
      throw new OptimRangeError(
        `Invalid beta parameter at index ${i}: ${show(b)} (${path(where, 'betas')}[${i}] must be in [0, 1))`,
      );
    }
  }
}

/** Refuses keys that are not options (typos such as `weight_decay` or `beta1`). */
export function checkKnownKeys(obj: object, known: readonly string[], where: string, allowParams: boolean): void {
  for (const key of Object.keys(obj)) {
    if (allowParams && key === 'params') continue;
    if (!known.includes(key)) {
      throw new OptimTypeError(
        `${where}: unknown option "${key}" (known options: ${known.join(', ')})`,
      );
    }
  }
}
