/**
 * Checks for derivatives and curvature: gradients and Hessians against central differences,
 * and the eigenvalue diagnosis of a stationary point.
 */
export { gradCheck } from './grad-check.js';
export type { GradCheckResult, GradFunction } from './grad-check.js';
export { hessianCheck } from './hessian-check.js';
export type { HessianCheckResult, HessianFunction } from './hessian-check.js';
export type { CheckOptions, Comparison, Discrepancy } from './compare.js';
export { diagnose } from './diagnose.js';
export type { Diagnosis, DiagnoseOptions, PointKind } from './diagnose.js';
