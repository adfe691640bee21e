import type { AnyKernel } from '../../src/backend/kernel.js';

/**
 * Scalars that move every state buffer of any kernel: every slot 0.5, so no rate is zero, no
 * divisor is zero and no sign flips. (test/kernels-property.test.ts checks that they do, for
 * every kernel and both backends.)
 */
export function scalarsFor(kernel: AnyKernel): Float64Array {
  return new Float64Array(kernel.nScalars).fill(0.5);
}
