import type { AnyKernel } from '../../src/backend/kernel.js';

/**
 * The slots that need another value to move every buffer: Rprop's growth factor must exceed its
 * shrink factor (η₊ > 1 > η₋, else every step looks like a sign flip and p stays), and its step
 * size must be free to change within [stepMin, stepMax].
 */
const OTHER: Readonly<Record<string, number>> = { etaPlus: 1.5, stepMin: 1e-3, stepMax: 4 };

/**
 * Scalars that move every state buffer of any kernel: every slot 0.5 (but OTHER's), so no rate is
 * zero, no divisor is zero and no sign flips. (test/kernels-property.test.ts checks that they do,
 * for every kernel and both backends.)
 */
export function scalarsFor(kernel: AnyKernel): Float64Array {
  return Float64Array.from(kernel.scalars as readonly string[], (name) => OTHER[name] ?? 0.5);
}
