/**
 * The addon's errors as optim's classes, by the code the addon gives each (native/bindings/glue.h):
 * ERR_OPTIM_ARG_TYPE → OptimTypeError, ERR_OPTIM_ARG_VALUE → OptimRangeError,
 * ERR_OPTIM_NOT_POSITIVE_DEFINITE → CholeskyError (with its pivot). Anything else passes through.
 */
import { CholeskyError, OptimRangeError, OptimTypeError } from '../errors.js';

export function fromNative(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  switch ((e as { code?: unknown }).code) {
    case 'ERR_OPTIM_ARG_TYPE': return new OptimTypeError(e.message);
    case 'ERR_OPTIM_ARG_VALUE': return new OptimRangeError(e.message);
    case 'ERR_OPTIM_NOT_POSITIVE_DEFINITE': return new CholeskyError(e.message, Number((e as { pivot?: unknown }).pivot));
    default: return e;
  }
}
