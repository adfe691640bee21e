/**
 * Argument checks for the whole library, in one place. Each names the argument and what was
 * expected, throws OptimTypeError for a value of the wrong type and OptimRangeError for a value
 * of the right type that is out of range, and returns the value checked.
 *
 * One argument order, value first:
 *
 *   checkX(v, key, where, ...rule)
 *
 * - `v`: the value.
 * - `key`: the argument as the message names it: `'gamma'`, `'options.out'`, `'a'`.
 * - `where`: the context the key is read under, a prefix prepended as is (`'StepLR: options.'`,
 *   `'cholesky: '`), or a group index for optimizer hyperparameters (`3` reads
 *   `paramGroups[3].`; see {@link Where}). A number keeps the per-step checks free of string
 *   building: messages are built only when a check fails. Default `''`: the key is the whole name.
 * - `...rule`: what the check needs besides: bounds, choices, the array to match.
 *
 * torch's label. `checkNonNegative` and `checkFinite` also take `(v, key, label, where)`:
 * `label` is torch's wording of the error (`'Invalid learning rate'`), and the message takes
 * torch's form, `Invalid learning rate: -1 (options.lr must be a finite number >= 0)`. The label
 * sits between key and where, as a second name of the argument; it is the form the optimizers'
 * `checkHyper` has always used (sgd.ts, adam.ts, ...), so their calls stay valid. A call with
 * three arguments (or two) has no label; one with four has.
 *
 * Whole-object checks (`checkKnownKeys`, `checkOptions`) take `(obj, known, where)`: `known`,
 * the keys allowed, stands in the key's place, and `where` names the call, before a colon
 * (`'StepLR(optimizer, options)'`): `StepLR(optimizer, options): unknown option "step_size"`.
 */
import { OptimRangeError, OptimTypeError } from './errors.js';
import type { FloatArray } from './backend/types.js';

/**
 * Where a value lives, for messages: a literal prefix (`'options.'`, `'cholesky: '`) or an
 * optimizer group index, read as `paramGroups[i].`.
 */
export type Where = number | string;

/** The prefix for hyperparameters given to an optimizer's constructor. */
export const OPTIONS: Where = 'options.';

/** The full name of `key` under `where`: `paramGroups[2].lr`, `options.lr`, `cholesky: a`. */
export function path(where: Where, key: string): string {
  return typeof where === 'number' ? `paramGroups[${where}].${key}` : `${where}${key}`;
}

/** A short description of a value's type for messages: `Int32Array`, `Array`, `null`, `string`. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'Array';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return typeof v;
}

/** A value as a message quotes it: a number as is, a string in quotes, anything else by type. */
export function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : typeof v === 'string' ? JSON.stringify(v) : describe(v);
}

export function isFloatArray(v: unknown): v is FloatArray {
  return v instanceof Float64Array || v instanceof Float32Array;
}

/** An object made by `{}`, `Object.create(null)` or JSON.parse: not an array, Map, Date, class instance. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Whether `a`'s buffer was detached (transferred): such a view reads as length 0 and must be
 * refused, not taken for an empty array. Node 20 has no `ArrayBuffer.prototype.detached`, but
 * no view can be made on a detached buffer.
 */
export function isDetached(a: ArrayBufferView & { readonly length: number }): boolean {
  if (a.length !== 0) return false;
  try {
    new Uint8Array(a.buffer);
    return false;
  } catch {
    return true;
  }
}

/** `v`, or `fallback` when `v` is undefined (an option left out); null is a value, checked as one. */
export function orDefault(v: unknown, fallback: unknown): unknown {
  return v === undefined ? fallback : v;
}

/**
 * Refuses keys that are not among `known` (typos such as `weight_decay` or `beta1`), naming the
 * first: `${where}: unknown option "beta1" (known options: lr, betas, ...)`. `allowParams` lets
 * a parameter group's `params` through; `noun` says what the keys are (`'key'` for a file's).
 */
export function checkKnownKeys(
  obj: object,
  known: readonly string[],
  where: string,
  allowParams = false,
  noun = 'option',
): void {
  for (const key of Object.keys(obj)) {
    if (allowParams && key === 'params') continue;
    if (!known.includes(key)) {
      throw new OptimTypeError(`${where}: unknown ${noun} "${key}" (known ${noun}s: ${known.join(', ')})`);
    }
  }
}

/**
 * An options argument: undefined reads as none (`{}`); anything but an object (null, an array,
 * a typed array, a primitive) is refused, and so are unknown keys.
 */
export function checkOptions<O extends object = Record<string, unknown>>(
  v: unknown,
  known: readonly string[],
  where: string,
): Partial<O> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v)) {
    throw new OptimTypeError(`${where}: options must be an object, got ${describe(v)}`);
  }
  checkKnownKeys(v, known, where);
  return v as Partial<O>;
}

/** A required argument: present (not undefined), or an error naming it. */
export function checkRequired<T>(v: T | undefined, key: string, where: Where = ''): T {
  if (v === undefined) throw new OptimTypeError(`${path(where, key)} is required`);
  return v;
}

/**
 * The error of a failed number check: OptimTypeError when `v` is not a number, else
 * OptimRangeError saying `rule` (`a finite number >= 0`).
 */
function numberError(v: unknown, key: string, where: Where, rule: string): Error {
  const at = path(where, key);
  return typeof v === 'number'
    ? new OptimRangeError(`${at} must be ${rule}, got ${show(v)}`)
    : new OptimTypeError(`${at} must be a number, got ${describe(v)}`);
}

/** The same in torch's form: `Invalid learning rate: -1 (options.lr must be a finite number >= 0)`. */
function torchError(v: unknown, key: string, label: string, where: Where, rule: string): Error {
  const at = path(where, key);
  return typeof v === 'number'
    ? new OptimRangeError(`${label}: ${show(v)} (${at} must be ${rule})`)
    : new OptimTypeError(`${label}: ${show(v)} (${at} must be a number, got ${describe(v)})`);
}

/** The error of a labelled check: `(a, b)` is `(where)` or `(label, where)`. */
function labelledError(v: unknown, key: string, a: Where, b: Where | undefined, rule: string): Error {
  return b === undefined ? numberError(v, key, a, rule) : torchError(v, key, String(a), b, rule);
}

/** Any number, NaN and ±Infinity included. */
export function checkNumber(v: unknown, key: string, where: Where = ''): number {
  if (typeof v !== 'number') throw numberError(v, key, where, 'a number');
  return v;
}

/** A finite number; `(v, key, label, where)` gives torch's message form (see the module comment). */
export function checkFinite(v: unknown, key: string, where?: Where): number;
export function checkFinite(v: unknown, key: string, label: string, where: Where): number;
export function checkFinite(v: unknown, key: string, a: Where = '', b?: Where): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  throw labelledError(v, key, a, b, 'a finite number');
}

/** A finite number >= 0; `(v, key, label, where)` gives torch's message form (see the module comment). */
export function checkNonNegative(v: unknown, key: string, where?: Where): number;
export function checkNonNegative(v: unknown, key: string, label: string, where: Where): number;
export function checkNonNegative(v: unknown, key: string, a: Where = '', b?: Where): number {
  if (typeof v === 'number' && v >= 0 && v < Infinity) return v;
  throw labelledError(v, key, a, b, 'a finite number >= 0');
}

/** A finite number in [min, max]; either bound is open when its flag says so, absent when infinite. */
export function checkInRange(
  v: unknown,
  key: string,
  where: Where,
  min: number,
  max: number,
  { minOpen = false, maxOpen = false }: { minOpen?: boolean; maxOpen?: boolean } = {},
): number {
  if (typeof v === 'number' && Number.isFinite(v) && (minOpen ? v > min : v >= min) && (maxOpen ? v < max : v <= max)) {
    return v;
  }
  const lo = min === -Infinity ? '' : `${minOpen ? '>' : '>='} ${min}`;
  const hi = max === Infinity ? '' : `${maxOpen ? '<' : '<='} ${max}`;
  const bounds = [lo, hi].filter((s) => s !== '').join(' and ');
  throw numberError(v, key, where, bounds === '' ? 'a finite number' : `a finite number ${bounds}`);
}

/** A (safe) integer >= min. */
export function checkInteger(v: unknown, key: string, where: Where, min: number): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= min) return v;
  throw numberError(v, key, where, `an integer >= ${min}`);
}

/** An array dimension or count: a (safe) integer >= 0, said as `a non-negative integer`. */
export function checkDimension(v: unknown, key: string, where: Where = ''): number {
  if (typeof v === 'number' && v >= 0 && Number.isSafeInteger(v)) return v;
  throw numberError(v, key, where, 'a non-negative integer');
}

export function checkBoolean(v: unknown, key: string, where: Where = ''): boolean {
  if (typeof v !== 'boolean') throw new OptimTypeError(`${path(where, key)} must be a boolean, got ${describe(v)}`);
  return v;
}

/** One of `choices`; anything else, a string or not, is out of range. */
export function checkChoice<T extends string>(v: unknown, key: string, where: Where, choices: readonly T[]): T {
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    const list = choices.map((c) => `'${c}'`).join(', ');
    throw new OptimRangeError(`${path(where, key)} must be one of ${list}, got ${show(v)}`);
  }
  return v as T;
}

/** An optimizer's `betas`: two numbers in [0, 1), in torch's message form. */
export function checkBetas(v: unknown, key: string, where: Where): void {
  if (!Array.isArray(v) || v.length !== 2) {
    const got = Array.isArray(v) ? `an Array of length ${v.length}` : describe(v);
    throw new OptimTypeError(`${path(where, key)} must be an array of two numbers, got ${got}`);
  }
  for (let i = 0; i < 2; i++) {
    const b: unknown = v[i];
    if (!(typeof b === 'number' && b >= 0 && b < 1)) {
      throw torchError(b, `${key}[${i}]`, `Invalid beta parameter at index ${i}`, where, 'in [0, 1)');
    }
  }
}

export function checkFloatArray(v: unknown, key: string, where: Where = ''): FloatArray {
  if (!isFloatArray(v)) {
    throw new OptimTypeError(`${path(where, key)} must be a Float32Array or Float64Array, got ${describe(v)}`);
  }
  return v;
}

/** A Float32Array or Float64Array of the same type as `like` (one dtype per call), named `likeKey`. */
export function checkSameType(v: unknown, key: string, where: Where, like: FloatArray, likeKey: string): FloatArray {
  const arr = checkFloatArray(v, key, where);
  if (arr.constructor !== like.constructor) {
    throw new OptimTypeError(`${path(where, key)} must be a ${like.constructor.name} like ${likeKey}, got ${describe(v)}`);
  }
  return arr;
}

/**
 * `a` has length `want`, which `formula` explains (`'n*n'`). A detached buffer is named as such
 * (OptimTypeError), not as a length of 0.
 */
export function checkLength(a: FloatArray, key: string, where: Where, want: number, formula: string): void {
  if (a.length === want) return;
  if (isDetached(a)) throw new OptimTypeError(`${path(where, key)} is backed by a detached ArrayBuffer`);
  throw new OptimRangeError(`${path(where, key)} has length ${a.length}, expected ${formula} = ${want}`);
}
