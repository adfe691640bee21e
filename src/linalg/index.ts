/**
 * Dense linear algebra for second-order methods: row-major Float32Array / Float64Array in and
 * out, on the selected backend (native: OpenBLAS/LAPACKE when the build found them, else the
 * built-in blocked kernels; reference: plain TypeScript).
 */
export { matmul, matmulAsync, gram } from './matmul.js';
export type { MatmulOptions, GramOptions } from './matmul.js';
export { cholesky, choleskyAsync, choSolve, choSolveAsync, solveSPD } from './cholesky.js';
export type { CholeskyOptions, ChoSolveOptions, SolveSPDOptions } from './cholesky.js';
export { eigh, eighAsync } from './eigh.js';
export type { EighOptions, EighResult } from './eigh.js';
export { CholeskyError } from '../errors.js';
