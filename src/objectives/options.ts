/** Argument checks shared by the objective constructors: the data, its shape, the penalty. */
import type { FloatArray } from '../backend/types.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { optionalDimension, quotient } from '../linalg/validate.js';
import {
  checkBoolean, checkFloatArray, checkLength, checkNonNegative, checkOptions, describe, orDefault,
} from '../validate.js';
import { Design } from './design.js';
import { Penalty } from './penalty.js';
import type { Reduction } from './types.js';

export const COMMON_KEYS = ['rows', 'cols', 'fitIntercept', 'penalizeIntercept', 'l1', 'l2', 'reduction'] as const;

export interface Setup<T extends FloatArray> {
  design: Design<T>;
  penalty: Penalty;
  reduction: Reduction;
  opts: Record<string, unknown>;
}

/**
 * Checks X (rows×cols; the missing dimension follows from its length) and the common options,
 * and builds the design and penalty for a model with `outputs(opts)` outputs.
 */
export function setup<T extends FloatArray>(
  fn: string,
  X: T,
  options: unknown,
  extraKeys: readonly string[],
  outputs: (opts: Record<string, unknown>) => number,
): Setup<T> {
  const at = `${fn}: `;
  const option = `${fn}: options.`;
  checkFloatArray(X, 'X', at);
  const opts = checkOptions(options, [...COMMON_KEYS, ...extraKeys], fn);
  let rows = optionalDimension(opts.rows, 'rows', option);
  let cols = optionalDimension(opts.cols, 'cols', option);
  if (rows === undefined && cols === undefined) throw new OptimTypeError(`${fn}: give options.rows or options.cols (X is rows×cols, row-major)`);
  if (rows === undefined) rows = cols! > 0 ? quotient(X.length, 'X', at, cols!, 'cols') : 0;
  if (cols === undefined) cols = rows > 0 ? quotient(X.length, 'X', at, rows, 'rows') : 0;
  if (rows === 0) throw new OptimRangeError(`${fn}: X has no rows`);
  if (cols === 0) throw new OptimRangeError(`${fn}: X has no columns`);
  checkLength(X, 'X', at, rows * cols, 'rows*cols');
  const fitIntercept = checkBoolean(orDefault(opts.fitIntercept, true), 'fitIntercept', option);
  const penalizeIntercept = checkBoolean(orDefault(opts.penalizeIntercept, false), 'penalizeIntercept', option);
  const l1 = checkNonNegative(orDefault(opts.l1, 0), 'l1', option);
  const l2 = checkNonNegative(orDefault(opts.l2, 0), 'l2', option);
  const reduction = opts.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum') {
    throw new OptimRangeError(`${fn}: options.reduction must be 'mean' or 'sum', got ${String(reduction)}`);
  }
  const K = outputs(opts);
  const design = new Design(X, rows, cols, K, fitIntercept);
  const penalized = fitIntercept && !penalizeIntercept ? cols * K : design.size;
  return { design, penalty: new Penalty(l1, l2, penalized), reduction, opts };
}

/**
 * y must be an array of `rows` numbers; `check` validates each (returns what is wrong, or
 * null). Returns a copy, so later changes to y do not reach the objective.
 */
export function targets(
  fn: string,
  y: unknown,
  rows: number,
  check: (v: number) => string | null,
): Float64Array {
  const ok = Array.isArray(y) || (ArrayBuffer.isView(y) && !(y instanceof DataView));
  if (!ok) throw new OptimTypeError(`${fn}: y must be an array or typed array of numbers, got ${describe(y)}`);
  const arr = y as ArrayLike<unknown>;
  if (arr.length !== rows) throw new OptimRangeError(`${fn}: y has length ${arr.length}, expected rows = ${rows}`);
  for (let i = 0; i < rows; i++) {
    const v = arr[i];
    if (typeof v !== 'number') throw new OptimTypeError(`${fn}: y[${i}] must be a number, got ${describe(v)}`);
    const err = check(v);
    if (err !== null) throw new OptimRangeError(`${fn}: y[${i}] = ${v} ${err}`);
  }
  return Float64Array.from(arr as ArrayLike<number>);
}
