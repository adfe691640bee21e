/**
 * Data for training loops (`optim/data`): seeded minibatch index streams, permutations and
 * uniform random numbers, the IDX file format, and Fashion-MNIST (Debian's gzipped files, or a
 * seeded synthetic stand-in).
 * Everything here is also exported by the package root.
 */
export { minibatches, Minibatches } from './minibatches.js';
export type { MinibatchOptions } from './minibatches.js';
export { permutation, uniformStream } from './random.js';
export { parseIdx, readIdx } from './idx.js';
export type { IdxArray, IdxData, IdxDType } from './idx.js';
export {
  loadFashionMnist, syntheticFashionMnist, hasFashionMnist, scalePixels, FASHION_MNIST_CLASSES, FASHION_MNIST_DEBIAN_DIR,
} from './fashion-mnist.js';
export type { FashionMnist, ImageSplit, LoadFashionMnistOptions, SyntheticFashionMnistOptions } from './fashion-mnist.js';
