export { minibatches, Minibatches } from './minibatches.js';
export type { MinibatchOptions } from './minibatches.js';
export { permutation } from './random.js';
