/**
 * The kernel calls a piece of code makes, as made: what the benchmarks and the kernel tests take
 * their cases from, so that they run the scalars and flags the optimizers really pass.
 */
import type { AnyKernel } from './kernel.js';
import type { Backend } from './types.js';

/** One `backend.step` call: the kernel, the scalars as they were at the call, the flags. */
export interface StepCall {
  kernel: AnyKernel;
  scalars: Float64Array;
  flags: number;
}

/**
 * Runs `fn` and returns the calls it made through `backend.step`, which is wrapped meanwhile and
 * restored after (also when `fn` throws). The scalars are copied at each call: an optimizer
 * refills one array.
 */
export function traceSteps(backend: Backend, fn: () => void): StepCall[] {
  const original = backend.step;
  const calls: StepCall[] = [];
  backend.step = (kernel, list, scalars, flags) => {
    calls.push({ kernel, scalars: scalars.slice(), flags });
    return original.call(backend, kernel, list, scalars, flags);
  };
  try {
    fn();
  } finally {
    backend.step = original;
  }
  return calls;
}
