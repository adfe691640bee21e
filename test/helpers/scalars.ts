import { ADAM, NADAM, RADAM } from '../../src/backend/types.js';
import type { StepKernel } from '../../src/backend/types.js';

/** Scalars for a step kernel that move every buffer (no zero rates, no zero divisors). */
export function scalarsFor(k: { kernel: StepKernel; nScalars: number }): Float64Array {
  const s = new Float64Array(k.nScalars).fill(0.5);
  if (k.kernel === 'adamStep') s[ADAM.S_BC2_SQRT] = 1;
  if (k.kernel === 'nadamStep') s[NADAM.S_BC2] = 1;
  if (k.kernel === 'radamStep') s[RADAM.S_BC1] = 1;
  return s;
}
