/**
 * A scheduler's options read declaratively: each option's check and default in one table, read
 * before the scheduler touches the optimizer, and set on the scheduler as its readonly fields.
 */
import { checkBoolean, checkInRange, checkInteger, checkNonNegative, checkOptions, checkRequired } from '../validate.js';

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
