/**
 * optim: PyTorch-grade optimizers for Node.js. Fused SIMD C++ kernels over Node-API, with a
 * pure-TypeScript twin of every kernel behind the same interface.
 */
export { param } from './param.js';
export type { Param } from './param.js';
export * from './optim/index.js';
export { backendInfo, setBackend, getBackend, nativeAvailable } from './backend/select.js';
export type { BackendName } from './backend/select.js';
export type { Backend, BackendInfo, FloatArray, DType, TensorList, PreparedList } from './backend/types.js';
export { OptimTypeError, OptimRangeError, OptimStateError } from './errors.js';
export { VERSION } from './version.js';
