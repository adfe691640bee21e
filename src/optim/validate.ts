/**
 * Transitional shim: the argument checks live in src/validate.ts. This file only re-exports
 * what optimizer.ts, sgd.ts, lbfgs.ts and newton.ts still import from './validate.js'; change
 * their imports to '../validate.js' and delete it. Their calls already match the new order
 * (`checkNonNegative(v, key, label, where)` is the labelled form of the one order).
 */
export {
  checkBoolean,
  checkFinite,
  checkKnownKeys,
  checkNonNegative,
  describe,
  isFloatArray,
  OPTIONS,
  path,
} from '../validate.js';
export type { Where } from '../validate.js';
