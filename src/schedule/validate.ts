import { OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import { checkKnownKeys, describe } from '../optim/validate.js';
import type { ScheduledGroup, SchedulableOptimizer } from './scheduler.js';

function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : typeof v === 'string' ? JSON.stringify(v) : describe(v);
}

/**
 * The options object of a scheduler, with unknown keys refused (a typo such as `step_size` or
 * `Tmax` would otherwise fall back to a default without a word).
 */
export function readOptions<O extends object>(name: string, options: unknown, known: readonly string[]): Partial<O> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new OptimTypeError(`${name}(optimizer, options): options must be an object, got ${describe(options)}`);
  }
  checkKnownKeys(options, known, `${name}(optimizer, options)`, false);
  return options as Partial<O>;
}

/** A required option: present, or an error naming it. */
export function required<T>(name: string, value: T | undefined, key: string): T {
  if (value === undefined) throw new OptimTypeError(`${name}: options.${key} is required`);
  return value;
}

export function checkNumber(name: string, v: unknown, key: string): number {
  if (typeof v !== 'number') throw new OptimTypeError(`${name}: ${key} must be a number, got ${describe(v)}`);
  return v;
}

/** A finite number in [min, max] (either bound open when its flag says so). */
export function checkInRange(
  name: string,
  v: unknown,
  key: string,
  min: number,
  max: number,
  { minOpen = false, maxOpen = false }: { minOpen?: boolean; maxOpen?: boolean } = {},
): number {
  const x = checkNumber(name, v, key);
  const aboveMin = minOpen ? x > min : x >= min;
  const belowMax = maxOpen ? x < max : x <= max;
  if (!(Number.isFinite(x) && aboveMin && belowMax)) {
    const lo = min === -Infinity ? '' : `${minOpen ? '>' : '>='} ${min}`;
    const hi = max === Infinity ? '' : `${maxOpen ? '<' : '<='} ${max}`;
    const rule = ['a finite number', [lo, hi].filter((s) => s !== '').join(' and ')].filter((s) => s !== '').join(' ');
    throw new OptimRangeError(`${name}: ${key} must be ${rule}, got ${show(x)}`);
  }
  return x;
}

/** A finite number >= 0. */
export function checkNonNegative(name: string, v: unknown, key: string): number {
  return checkInRange(name, v, key, 0, Infinity);
}

/** An integer >= min. */
export function checkInteger(name: string, v: unknown, key: string, min: number): number {
  const x = checkNumber(name, v, key);
  if (!Number.isSafeInteger(x) || x < min) {
    throw new OptimRangeError(`${name}: ${key} must be an integer >= ${min}, got ${show(x)}`);
  }
  return x;
}

export function checkBoolean(name: string, v: unknown, key: string): boolean {
  if (typeof v !== 'boolean') throw new OptimTypeError(`${name}: ${key} must be a boolean, got ${describe(v)}`);
  return v;
}

export function checkChoice<T extends string>(name: string, v: unknown, key: string, choices: readonly T[]): T {
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    throw new OptimRangeError(`${name}: ${key} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${show(v)}`);
  }
  return v as T;
}

/**
 * The optimizer's groups, each with a finite `lr` >= 0: anything with `paramGroups` works
 * (the first-order optimizers, Newton, LBFGS).
 */
export function checkOptimizer(name: string, optimizer: unknown): ScheduledGroup[] {
  if (optimizer === null || typeof optimizer !== 'object') {
    throw new OptimTypeError(`${name}(optimizer): optimizer must be an optimizer, got ${describe(optimizer)}`);
  }
  const groups = (optimizer as Partial<SchedulableOptimizer>).paramGroups;
  if (!Array.isArray(groups) || groups.length === 0) {
    throw new OptimTypeError(`${name}(optimizer): optimizer.paramGroups must be a non-empty array, got ${describe(groups)}`);
  }
  groups.forEach((g: unknown, i) => {
    if (g === null || typeof g !== 'object') {
      throw new OptimTypeError(`${name}: optimizer.paramGroups[${i}] must be an object, got ${describe(g)}`);
    }
    checkNonNegative(name, (g as ScheduledGroup).lr, `optimizer.paramGroups[${i}].lr`);
  });
  return groups;
}

/** The groups again at a step: a group added after the scheduler was built has no base lr. */
export function checkGroupCount(name: string, groups: ScheduledGroup[], expected: number): void {
  if (groups.length !== expected) {
    throw new OptimStateError(
      `${name}: the optimizer has ${groups.length} parameter groups but the scheduler was built for ${expected}; build a new scheduler after addParamGroup()`,
    );
  }
}

/** A list given per group (torch's `min_lr` or `lr_lambda` as a list): one entry per group. */
export function perGroup<T>(name: string, v: T | readonly T[], key: string, nGroups: number): T[] {
  if (!Array.isArray(v)) return new Array<T>(nGroups).fill(v as T);
  if (v.length !== nGroups) {
    throw new OptimRangeError(`${name}: ${key} has ${v.length} entries but the optimizer has ${nGroups} parameter groups`);
  }
  return [...(v as readonly T[])];
}

/** A saved list of per-group lrs: finite numbers >= 0, one per group. */
export function checkSavedLrs(name: string, v: unknown, key: string, nGroups: number): number[] {
  if (!Array.isArray(v) || v.length !== nGroups) {
    throw new OptimStateError(
      `${name}.loadStateDict: ${key} must be an array of ${nGroups} numbers (one per parameter group), got ${Array.isArray(v) ? `an Array of length ${v.length}` : describe(v)}`,
    );
  }
  v.forEach((x: unknown, i) => {
    if (typeof x !== 'number' || !(x >= 0 && x < Infinity)) {
      throw new OptimStateError(`${name}.loadStateDict: ${key}[${i}] must be a finite number >= 0, got ${show(x)}`);
    }
  });
  return [...(v as number[])];
}

/** A saved counter: an integer >= min. */
export function checkSavedInteger(name: string, v: unknown, key: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new OptimStateError(`${name}.loadStateDict: ${key} must be an integer >= ${min}, got ${show(v)}`);
  }
  return v;
}

/** The saved dict is an object made by the same kind of scheduler. */
export function checkSavedKind(name: string, sd: unknown): Record<string, unknown> {
  if (sd === null || typeof sd !== 'object' || Array.isArray(sd)) {
    throw new OptimStateError(`${name}.loadStateDict(stateDict): expected an object, got ${describe(sd)}`);
  }
  const kind = (sd as Record<string, unknown>).scheduler;
  if (kind !== name) {
    throw new OptimStateError(`${name}.loadStateDict: the state dict was saved by ${show(kind)}, not by ${name}`);
  }
  return sd as Record<string, unknown>;
}
