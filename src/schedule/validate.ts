/**
 * The checks only schedulers make, on src/validate.ts's primitives and in its order (value,
 * key, then the scheduler's name as the context): the optimizer's groups, per-group lists, and
 * a saved state dict (OptimStateError).
 */
import { OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import { checkNonNegative, describe, show } from '../validate.js';
import type { ScheduledGroup, SchedulableOptimizer } from './scheduler.js';

/**
 * The optimizer's groups, each with a finite `lr` >= 0: anything with `paramGroups` works
 * (the first-order optimizers, Newton, LBFGS).
 */
export function checkOptimizer(optimizer: unknown, name: string): ScheduledGroup[] {
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
    checkNonNegative((g as ScheduledGroup).lr, `optimizer.paramGroups[${i}].lr`, `${name}: `);
  });
  return groups;
}

/** The groups again at a step: a group added after the scheduler was built has no base lr. */
export function checkGroupCount(groups: ScheduledGroup[], name: string, expected: number): void {
  if (groups.length !== expected) {
    throw new OptimStateError(
      `${name}: the optimizer has ${groups.length} parameter groups but the scheduler was built for ${expected}; build a new scheduler after addParamGroup()`,
    );
  }
}

/** A list given per group (torch's `min_lr` or `lr_lambda` as a list): one entry per group. */
export function perGroup<T>(v: T | readonly T[], key: string, name: string, nGroups: number): T[] {
  if (!Array.isArray(v)) return new Array<T>(nGroups).fill(v as T);
  if (v.length !== nGroups) {
    throw new OptimRangeError(`${name}: ${key} has ${v.length} entries but the optimizer has ${nGroups} parameter groups`);
  }
  return [...(v as readonly T[])];
}

/** A saved list of per-group lrs: finite numbers >= 0, one per group. */
export function checkSavedLrs(v: unknown, key: string, name: string, nGroups: number): number[] {
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
export function checkSavedInteger(v: unknown, key: string, name: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new OptimStateError(`${name}.loadStateDict: ${key} must be an integer >= ${min}, got ${show(v)}`);
  }
  return v;
}

/** The saved dict is an object made by the same kind of scheduler. */
export function checkSavedKind(sd: unknown, name: string): Record<string, unknown> {
  if (sd === null || typeof sd !== 'object' || Array.isArray(sd)) {
    throw new OptimStateError(`${name}.loadStateDict(stateDict): expected an object, got ${describe(sd)}`);
  }
  const kind = (sd as Record<string, unknown>).scheduler;
  if (kind !== name) {
    throw new OptimStateError(`${name}.loadStateDict: the state dict was saved by ${show(kind)}, not by ${name}`);
  }
  return sd as Record<string, unknown>;
}
