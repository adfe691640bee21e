/**
 * Losses of linear models with their gradients and Hessians, built on `matmul` and `gram`:
 * least squares, binary logistic regression and softmax regression, each with an elastic-net
 * penalty. Each is an `Objective`: usable by `minimize` (`evaluate`, `lossAndGrad`), by
 * `Newton`, and by the first-order optimizers through minibatches (`batch`).
 */
export { linearRegression } from './linear.js';
export type { LinearRegressionOptions } from './linear.js';
export { logisticRegression } from './logistic.js';
export type { LogisticRegressionOptions } from './logistic.js';
export { softmaxRegression } from './softmax.js';
export type { SoftmaxRegressionOptions } from './softmax.js';
export type {
  ClassifierObjective, Evaluated, Objective, ObjectiveOptions, Reduction, RegressorObjective, RowIndices,
} from './types.js';
