import type { FloatArray } from './backend/types.js';
import { OptimTypeError } from './errors.js';
import { describe, isFloatArray } from './optim/validate.js';

/**
 * A trainable tensor: its values, a gradient buffer of the same type and length that the user
 * fills before each step, and a name that keys its optimizer state in checkpoints.
 */
export interface Param<T extends FloatArray = FloatArray> {
  readonly name: string;
  data: T;
  grad: T;
}

let nextId = 0;

/**
 * Wraps `data` (used in place, not copied) as a parameter with a zeroed gradient. Without a
 * `name`, a unique one is generated (`param_0`, `param_1`, ...); give stable names to
 * parameters whose state you save, so a checkpoint finds them again in a changed model.
 */
export function param<T extends FloatArray>(data: T, name?: string): Param<T> {
  if (!isFloatArray(data)) {
    throw new OptimTypeError(`param(data): data must be a Float32Array or Float64Array, got ${describe(data)}`);
  }
  if (name !== undefined && (typeof name !== 'string' || name === '')) {
    throw new OptimTypeError(
      `param(data, name): name must be a non-empty string, got ${name === '' ? 'an empty string' : describe(name)}`,
    );
  }
  const grad = (data instanceof Float32Array ? new Float32Array(data.length) : new Float64Array(data.length)) as T;
  return { name: name ?? `param_${nextId++}`, data, grad };
}
