/**
 * optim: PyTorch-grade optimizers for Node.js. Fused SIMD C++ kernels over Node-API, with a
 * pure-TypeScript twin of every kernel behind the same interface.
 */
export { param, paramArena } from './param.js';
export type { Param } from './param.js';
export * from './optim/index.js';
export { Newton } from './optim/newton.js';
export type { Damping, NewtonOptions, NewtonEvaluation, NewtonStepInfo } from './optim/newton.js';
export { LBFGS } from './optim/lbfgs.js';
export type { LBFGSOptions, LBFGSState, LBFGSStateDict, LossClosure } from './optim/lbfgs.js';
export type { BFGSOptions, BFGSSettings, BFGSState, BFGSStateDict } from './optim/bfgs.js';
export { minimize } from './minimize.js';
export type { Evaluation, IterationInfo, Method, MinimizeOptions, MinimizeResult } from './minimize.js';
export * from './linalg/index.js';
export * from './schedule/index.js';
export * from './data/index.js';
export { clipGradNorm, clipGradValue } from './optim/clip.js';
export type { ClipGradNormOptions } from './optim/clip.js';
export { backendInfo, setBackend, getBackend, nativeAvailable, setNumThreads } from './backend/select.js';
export type { BackendName } from './backend/select.js';
export type { Backend, BackendInfo, FloatArray, DType, TensorList, PreparedList } from './backend/types.js';
export * from './objectives/index.js';
export * from './checks/index.js';
export { parseIdx, readIdx } from './data/idx.js';
export type { IdxArray, IdxData, IdxDType } from './data/idx.js';
export {
  loadFashionMnist, syntheticFashionMnist, hasFashionMnist, scalePixels, FASHION_MNIST_CLASSES, FASHION_MNIST_DEBIAN_DIR,
} from './data/fashion-mnist.js';
export type { FashionMnist, ImageSplit, LoadFashionMnistOptions, SyntheticFashionMnistOptions } from './data/fashion-mnist.js';
export { OptimTypeError, OptimRangeError, OptimStateError, CholeskyError, NonFiniteError, CheckpointError, DistributedError } from './errors.js';
export { saveCheckpoint, loadCheckpoint } from './checkpoint.js';
export type { Checkpoint, LoadedCheckpoint, LoadCheckpointOptions } from './checkpoint.js';
export { VERSION } from './version.js';
