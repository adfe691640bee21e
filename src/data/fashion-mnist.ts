/**
 * Fashion-MNIST (Zalando): 28×28 grey-scale images of clothing in 10 classes, 60 000 for
 * training and 10 000 for testing, as the four IDX files that Debian's `dataset-fashion-mnist`
 * package installs in /usr/share/datasets/fashion-mnist. Where the files are missing, a seeded
 * synthetic set of the same shape stands in, so that programs built on it always run; its
 * `notice` says so, and no accuracy measured on it says anything about the real data.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { readIdx } from './idx.js';

export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
]);

/** Where Debian's dataset-fashion-mnist package puts the files. */
export const FASHION_MNIST_DEBIAN_DIR = '/usr/share/datasets/fashion-mnist';

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

const SIDE = 28;
const FEATURES = SIDE * SIDE;

/** One split: `count` images of 28·28 bytes each (row-major, 0 = background), and labels 0..9. */
export interface ImageSplit {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface FashionMnist {
  train: ImageSplit;
  test: ImageSplit;
  height: number;
  width: number;
  /** height × width = 784. */
  features: number;
  classes: readonly string[];
  /** 'files': read from `dir`; 'synthetic': generated (see `notice`). */
  source: 'files' | 'synthetic';
  dir: string | null;
  /** Why the data is synthetic, in a sentence fit to print; null for real files. */
  notice: string | null;
}

export interface LoadFashionMnistOptions {
  /** Folder holding the four IDX files (gzipped or not). Default: the Debian package's folder. */
  dir?: string;
  /**
   * What to do when no files are found: 'fallback' (default) generates the synthetic set;
   * 'never' throws; 'always' skips the files.
   */
  synthetic?: 'fallback' | 'never' | 'always';
  /** Seed of the synthetic set (default 0). */
  seed?: number;
}

/** The path of `name` in `dir`, gzipped or not, or null. */
function locate(dir: string, name: string): string | null {
  for (const file of [`${name}.gz`, name]) {
    const p = path.join(dir, file);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** Whether `dir` holds all four files. */
export function hasFashionMnist(dir: string): boolean {
  return Object.values(FILES).every((name) => locate(dir, name) !== null);
}

function readSplit(dir: string, imagesName: string, labelsName: string): ImageSplit {
  const imagesFile = locate(dir, imagesName);
  const labelsFile = locate(dir, labelsName);
  if (imagesFile === null || labelsFile === null) {
    throw new OptimRangeError(`loadFashionMnist: ${dir} has no ${imagesFile === null ? imagesName : labelsName}[.gz]`);
  }
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  if (images.dtype !== 'uint8' || images.shape.length !== 3 || images.shape[1] !== SIDE || images.shape[2] !== SIDE) {
    throw new OptimRangeError(`loadFashionMnist: ${imagesFile} holds ${images.dtype} [${images.shape.join(', ')}], expected uint8 [n, 28, 28]`);
  }
  if (labels.dtype !== 'uint8' || labels.shape.length !== 1) {
    throw new OptimRangeError(`loadFashionMnist: ${labelsFile} holds ${labels.dtype} [${labels.shape.join(', ')}], expected uint8 [n]`);
  }
  const count = images.shape[0];
  if (labels.shape[0] !== count) {
    throw new OptimRangeError(`loadFashionMnist: ${imagesFile} has ${count} images but ${labelsFile} has ${labels.shape[0]} labels`);
  }
  const data = labels.data as Uint8Array;
  for (let i = 0; i < count; i++) {
    if (data[i] >= FASHION_MNIST_CLASSES.length) {
      throw new OptimRangeError(`loadFashionMnist: ${labelsFile}: label ${data[i]} at index ${i} is not a class 0..9`);
    }
  }
  return { images: images.data as Uint8Array, labels: data, count };
}

/**
 * Loads Fashion-MNIST from `options.dir` (default: Debian's folder). When `dir` was given and
 * lacks the files, throws: a folder named on purpose should not be replaced silently. When no
 * `dir` was given and the default folder lacks them, returns the synthetic set (unless
 * `synthetic: 'never'`), with a `notice` saying how to get the real data.
 */
export function loadFashionMnist(options: LoadFashionMnistOptions = {}): FashionMnist {
  if (options === null || typeof options !== 'object') {
    throw new OptimTypeError(`loadFashionMnist(options): options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  const { dir, synthetic = 'fallback', seed = 0 } = options;
  if (dir !== undefined && (typeof dir !== 'string' || dir === '')) {
    throw new OptimTypeError(`loadFashionMnist: options.dir must be a non-empty path string, got ${JSON.stringify(dir)}`);
  }
  if (synthetic !== 'fallback' && synthetic !== 'never' && synthetic !== 'always') {
    throw new OptimRangeError(`loadFashionMnist: options.synthetic must be 'fallback', 'never' or 'always', got ${String(synthetic)}`);
  }
  if (synthetic === 'always') {
    return syntheticFashionMnist({ seed, notice: 'synthetic data requested: a seeded stand-in for Fashion-MNIST, not the real images' });
  }
  const folder = dir ?? FASHION_MNIST_DEBIAN_DIR;
  if (!hasFashionMnist(folder)) {
    const missing = `${folder} does not hold the Fashion-MNIST IDX files (${Object.values(FILES).map((f) => `${f}.gz`).join(', ')})`;
    if (dir !== undefined || synthetic === 'never') {
      throw new OptimRangeError(`loadFashionMnist: ${missing}; install them with \`apt-get install dataset-fashion-mnist\` or give the folder that holds them`);
    }
    return syntheticFashionMnist({
      seed,
      notice: `${missing}. Using a SYNTHETIC stand-in of the same shape (seed ${seed}): accuracies and losses below say nothing about ` +
        'Fashion-MNIST. For the real data: `apt-get install dataset-fashion-mnist`, or pass --data DIR.',
    });
  }
  return {
    train: readSplit(folder, FILES.trainImages, FILES.trainLabels),
    test: readSplit(folder, FILES.testImages, FILES.testLabels),
    height: SIDE,
    width: SIDE,
    features: FEATURES,
    classes: FASHION_MNIST_CLASSES,
    source: 'files',
    dir: folder,
    notice: null,
  };
}

export interface SyntheticFashionMnistOptions {
  seed?: number;
  /** Training images (default 60 000). */
  train?: number;
  /** Test images (default 10 000). */
  test?: number;
  notice?: string;
}

/**
 * A seeded stand-in for Fashion-MNIST: each class has a prototype made of a few soft blobs;
 * an image is its class's prototype blended with another class's (up to 60 %), scaled in
 * brightness and overlaid with noise. Linear models learn it well but not perfectly, as on the
 * real data. Same seed, same bytes.
 */
export function syntheticFashionMnist(options: SyntheticFashionMnistOptions = {}): FashionMnist {
  const { seed = 0, train = 60_000, test = 10_000 } = options;
  for (const [name, v] of [['train', train], ['test', test]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new OptimRangeError(`syntheticFashionMnist: options.${name} must be an integer >= 0, got ${String(v)}`);
  }
  if (!Number.isInteger(seed)) throw new OptimRangeError(`syntheticFashionMnist: options.seed must be an integer, got ${String(seed)}`);
  const rng = xoroshiro128plus(seed);
  const k = FASHION_MNIST_CLASSES.length;
  const prototypes = Array.from({ length: k }, () => prototype(rng));
  // Shirts look like T-shirts in the real data; keep the 0-vs-6 task hard here too.
  for (let p = 0; p < FEATURES; p++) prototypes[6][p] = 0.85 * prototypes[0][p] + 0.15 * prototypes[6][p];
  return {
    train: syntheticSplit(rng, prototypes, train),
    test: syntheticSplit(rng, prototypes, test),
    height: SIDE,
    width: SIDE,
    features: FEATURES,
    classes: FASHION_MNIST_CLASSES,
    source: 'synthetic',
    dir: null,
    notice: options.notice ?? `synthetic stand-in for Fashion-MNIST (seed ${seed})`,
  };
}

/** Intensities in [0, 1]: the largest of 3–5 Gaussian blobs at each pixel. */
function prototype(rng: RandomGenerator): Float64Array {
  const img = new Float64Array(FEATURES);
  const blobs = 3 + Math.floor(uniformFloat64(rng) * 3);
  for (let b = 0; b < blobs; b++) {
    const cy = 4 + uniformFloat64(rng) * 20;
    const cx = 4 + uniformFloat64(rng) * 20;
    const sy = 2 + uniformFloat64(rng) * 5;
    const sx = 2 + uniformFloat64(rng) * 5;
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        const v = Math.exp(-0.5 * (((y - cy) / sy) ** 2 + ((x - cx) / sx) ** 2));
        if (v > img[y * SIDE + x]) img[y * SIDE + x] = v;
      }
    }
  }
  return img;
}

function syntheticSplit(rng: RandomGenerator, prototypes: Float64Array[], count: number): ImageSplit {
  const k = prototypes.length;
  const images = new Uint8Array(count * FEATURES);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = Math.floor(uniformFloat64(rng) * k);
    const other = prototypes[Math.floor(uniformFloat64(rng) * k)];
    const mix = 0.6 * uniformFloat64(rng);
    const gain = 200 + 55 * uniformFloat64(rng);
    const own = prototypes[label];
    labels[i] = label;
    const row = i * FEATURES;
    // One 32-bit draw gives four bytes of noise.
    for (let p = 0; p < FEATURES; p += 4) {
      const bits = rng.next();
      for (let q = 0; q < 4 && p + q < FEATURES; q++) {
        const noise = ((bits >>> (8 * q)) & 0xff) - 128;
        const v = gain * ((1 - mix) * own[p + q] + mix * other[p + q]) + 0.5 * noise;
        images[row + p + q] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
      }
    }
  }
  return { images, labels, count };
}

/**
 * Pixels as floats for a model: image / `divisor` (default 255, giving [0, 1]; a division, not a
 * multiplication by 1/255, so the values match numpy's `X / 255` bit for bit), in a new
 * Float32Array (default) or Float64Array. `rows` selects images by index (default: all).
 */
export function scalePixels(
  images: Uint8Array,
  options: { dtype?: 'float32' | 'float64'; divisor?: number; rows?: ArrayLike<number>; features?: number } = {},
): Float32Array | Float64Array {
  if (!(images instanceof Uint8Array)) throw new OptimTypeError('scalePixels(images): images must be a Uint8Array');
  const { dtype = 'float32', divisor = 255, rows, features = FEATURES } = options;
  if (dtype !== 'float32' && dtype !== 'float64') throw new OptimRangeError(`scalePixels: options.dtype must be 'float32' or 'float64', got ${String(dtype)}`);
  if (typeof divisor !== 'number' || !Number.isFinite(divisor) || divisor === 0) {
    throw new OptimRangeError(`scalePixels: options.divisor must be a finite non-zero number, got ${String(divisor)}`);
  }
  if (!Number.isInteger(features) || features <= 0 || images.length % features !== 0) {
    throw new OptimRangeError(`scalePixels: options.features (${String(features)}) must divide images.length (${images.length})`);
  }
  const total = images.length / features;
  const count = rows === undefined ? total : rows.length;
  const out = dtype === 'float32' ? new Float32Array(count * features) : new Float64Array(count * features);
  for (let i = 0; i < count; i++) {
    const r = rows === undefined ? i : rows[i];
    if (!Number.isInteger(r) || r < 0 || r >= total) {
      throw new OptimRangeError(`scalePixels: options.rows[${i}] = ${r} is not an image index in 0..${total - 1}`);
    }
    const src = r * features;
    const dst = i * features;
    for (let j = 0; j < features; j++) out[dst + j] = images[src + j] / divisor;
  }
  return out;
}
