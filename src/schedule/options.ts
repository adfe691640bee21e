/**
 * A scheduler's options read declaratively: each option's check and default in one table, read
 * before the scheduler touches the optimizer, and set on the scheduler as its readonly fields.
 */
import { OptimTypeError } from '../errors.js';
import { checkBoolean, checkChoice, checkInRange, checkInteger, checkNonNegative, checkOptions, checkRequired, describe } from '../validate.js';

/** Reads one option: `v` as given (undefined when absent), its key, and the message prefix. */
export type OptionReader<T> = (v: unknown, key: string, at: string) => T;

/** A reader from a check and a default (none: the option is required). */
function reader<T>(check: OptionReader<T>, fallback?: T): OptionReader<T> {
  return (v, key, at) => check(v ?? (fallback === undefined ? checkRequired(v, key, at) : fallback), key, at);
}

/** An integer >= min. */
export const integer = (min: number, fallback?: number): OptionReader<number> =>
  reader((v, key, at) => checkInteger(v, key, at, min), fallback);
/** A finite number >= 0. */
export const nonNegative = (fallback?: number): OptionReader<number> => reader((v, key, at) => checkNonNegative(v, key, at), fallback);
/** A finite number in [min, max] (open ends as checkInRange). */
export const inRange = (
  min: number,
  max: number,
  open: { minOpen?: boolean; maxOpen?: boolean },
  fallback?: number,
): OptionReader<number> => reader((v, key, at) => checkInRange(v, key, at, min, max, open), fallback);
/** A boolean. */
export const flag = (fallback: boolean): OptionReader<boolean> => reader((v, key, at) => checkBoolean(v, key, at), fallback);
/** One of `choices`. */
export const choice = <T extends string>(choices: readonly T[], fallback?: T): OptionReader<T> =>
  reader((v, key, at) => checkChoice(v, key, at, choices), fallback);
/** An option that may be left out (undefined) and has no default; read by `read` when given. */
export const optional = <T>(read: OptionReader<T>): OptionReader<T | undefined> => (v, key, at) => (v === undefined ? undefined : read(v, key, at));
/** A function (optional: undefined when left out). */
export const callable = <F extends (...args: never[]) => unknown>(): OptionReader<F | undefined> => (v, key, at) => {
  if (v === undefined || typeof v === 'function') return v as F | undefined;
  throw new OptimTypeError(`${at}${key} must be a function, got ${describe(v)}`);
};
/**
 * A number for every parameter group, or an array of them, one per group (torch's per-group
 * form, as `max_lr=[0.1, 0.01]`), each entry read by `each`; expand it with `perGroup` once the
 * group count is known.
 */
export const perGroupList = (each: OptionReader<number>, fallback?: number): OptionReader<number | readonly number[]> =>
  reader((v, key, at) => {
    if (typeof v === 'number') return each(v, key, at);
    if (!Array.isArray(v)) {
      throw new OptimTypeError(`${at}${key} must be a number or an array of numbers (one per group), got ${describe(v)}`);
    }
    return v.map((x: unknown, i) => each(x, `${key}[${i}]`, at));
  }, fallback);

type Read<R> = { readonly [K in keyof R]: R[K] extends OptionReader<infer T> ? T : never };

/**
 * Checks a scheduler's `options` object (no unknown keys) and reads each option of `readers`;
 * `lastEpoch` is passed through for LRScheduler to check.
 */
export function readOptions<R extends Record<string, OptionReader<unknown>>>(
  name: string,
  options: unknown,
  readers: R,
): Read<R> & { lastEpoch?: unknown } {
  const keys = Object.keys(readers);
  const o = checkOptions<Record<string, unknown>>(options, [...keys, 'lastEpoch'], `${name}(optimizer, options)`);
  const out: Record<string, unknown> = { lastEpoch: o.lastEpoch };
  for (const key of keys) out[key] = readers[key](o[key], key, `${name}: options.`);
  return out as Read<R> & { lastEpoch?: unknown };
}
