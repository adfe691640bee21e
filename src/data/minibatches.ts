import { OptimRangeError, OptimTypeError } from '../errors.js';
import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkRequired, describe, orDefault } from '../validate.js';
import { checkUint32, drawInto, EpochStreams, identity, shuffleInPlace } from './random.js';

export interface MinibatchOptions {
  /** Indices per batch (required). */
  batchSize: number;
  /** A new random order each epoch (default true); false keeps 0..n−1 in order. */
  shuffle?: boolean;
  /** Seed of the random order, an integer in [0, 2³² − 1] (default 0). */
  seed?: number;
  /** Draw each index uniformly and independently ("online" sampling) instead of permuting (default false). */
  withReplacement?: boolean;
  /** Leave out the last, smaller batch of each epoch (default false). */
  dropLast?: boolean;
  /** Passes over the data (default 1); Infinity for an endless stream. */
  epochs?: number;
}

const KEYS = ['batchSize', 'shuffle', 'seed', 'withReplacement', 'dropLast', 'epochs'];

/**
 * Index batches over n samples, epoch after epoch; iterate it as often as you like, each time
 * from the start, with the same batches byte for byte.
 *
 * - Without replacement (the default): each epoch is one random permutation of 0..n−1 (a new
 *   one every epoch), cut into batches of batchSize; every index appears exactly once per epoch.
 *   Epoch 0 is `permutation(n, seed)`.
 * - With replacement: each batch holds batchSize indices drawn uniformly from [0, n), so an
 *   epoch has the same number and sizes of batches but no coverage guarantee (torch's
 *   RandomSampler(replacement=True) under a BatchSampler).
 *
 * Per epoch: ⌈n / batchSize⌉ batches, the last one holding the remainder, or ⌊n / batchSize⌋
 * with dropLast. Epoch e draws from its own stream (the seeded generator jumped e + 1 times),
 * so it depends only on (seed, e). A batch is a view into its epoch's own array: keep it, or
 * change it, without affecting other batches or epochs.
 */
export class Minibatches implements Iterable<Uint32Array> {
  readonly n: number;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly withReplacement: boolean;
  readonly dropLast: boolean;
  readonly epochs: number;
  /** Batches in one epoch. */
  readonly batchesPerEpoch: number;

  constructor(n: number, options: MinibatchOptions) {
    const where = 'minibatches(n, options)';
    this.n = checkUint32(n, 'n', `${where}: `);
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new OptimTypeError(`${where}: options must be an object with at least batchSize, got ${describe(options)}`);
    }
    checkKnownKeys(options, KEYS, where, false);
    const o: Partial<MinibatchOptions> = options;
    const at = `${where}: options.`;
    this.batchSize = checkInteger(checkRequired(o.batchSize, 'batchSize', at), 'batchSize', at, 1);
    this.withReplacement = checkBoolean(orDefault(o.withReplacement, false), 'withReplacement', at);
    this.shuffle = checkBoolean(orDefault(o.shuffle, true), 'shuffle', at);
    this.dropLast = checkBoolean(orDefault(o.dropLast, false), 'dropLast', at);
    if (this.withReplacement && !this.shuffle) {
      throw new OptimRangeError(
        `${where}: options.withReplacement draws indices at random, which options.shuffle: false contradicts; leave shuffle out`,
      );
    }
    this.seed = checkUint32(o.seed ?? 0, 'seed', at);
    const epochs = checkNumber(o.epochs ?? 1, 'epochs', at);
    if (!(epochs === Infinity || (Number.isSafeInteger(epochs) && epochs >= 0))) {
      throw new OptimRangeError(`${where}: options.epochs must be an integer >= 0 or Infinity, got ${epochs}`);
    }
    this.epochs = epochs;
    this.batchesPerEpoch = this.dropLast ? Math.floor(this.n / this.batchSize) : Math.ceil(this.n / this.batchSize);
  }

  /** Batches over all epochs (Infinity for an endless stream). */
  get totalBatches(): number {
    return this.batchesPerEpoch === 0 ? 0 : this.batchesPerEpoch * this.epochs;
  }

  *[Symbol.iterator](): Iterator<Uint32Array> {
    const { n, batchSize, batchesPerEpoch } = this;
    if (batchesPerEpoch === 0) return;
    const streams = this.shuffle ? new EpochStreams(this.seed) : null;
    for (let e = 0; e < this.epochs; e++) {
      const rng = streams?.next();
      if (this.withReplacement && rng !== undefined) {
        for (let b = 0; b < batchesPerEpoch; b++) {
          yield drawInto(new Uint32Array(Math.min(batchSize, n - b * batchSize)), n, rng);
        }
        continue;
      }
      const order = rng === undefined ? identity(n) : shuffleInPlace(identity(n), rng);
      for (let b = 0; b < batchesPerEpoch; b++) yield order.subarray(b * batchSize, Math.min((b + 1) * batchSize, n));
    }
  }
}

/** Minibatches of sample indices; see {@link Minibatches}. */
export function minibatches(n: number, options: MinibatchOptions): Minibatches {
  return new Minibatches(n, options);
}
