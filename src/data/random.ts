import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';
import { OptimRangeError } from '../errors.js';
import { checkNumber, path, show } from '../validate.js';

/** The most indices a Uint32Array batch can name. */
export const MAX_COUNT = 2 ** 32 - 1;

/**
 * A seed or a number of samples: an integer in [0, 2³² − 1] (pure-rand's xoroshiro128+ takes
 * 32 bits of seed; a Uint32Array names at most 2³² − 1 indices).
 */
export function checkUint32(v: unknown, key: string, where: string): number {
  const x = checkNumber(v, key, where);
  if (!Number.isInteger(x) || x < 0 || x > MAX_COUNT) {
    throw new OptimRangeError(`${path(where, key)} must be an integer in [0, 2^32 - 1], got ${show(x)}`);
  }
  return x;
}

/**
 * One independent random stream per epoch from one seed: epoch e draws from xoroshiro128+
 * seeded with `seed` and jumped e + 1 times (each jump moves 2⁶⁴ draws on), so epochs never
 * overlap and epoch e does not depend on how much earlier epochs drew. The first jump also
 * mixes the seed: pure-rand places it in the state as is, and the first draws of nearby seeds
 * are then nearly equal.
 */
export class EpochStreams {
  private readonly rng: JumpableRandomGenerator;

  constructor(seed: number) {
    this.rng = xoroshiro128plus(seed);
  }

  /** The next epoch's generator. */
  next(): JumpableRandomGenerator {
    this.rng.jump();
    return this.rng.clone();
  }
}

/** Fisher–Yates (Durstenfeld), with pure-rand's unbiased bounded integers (rejection sampling). */
export function shuffleInPlace(a: Uint32Array, rng: JumpableRandomGenerator): Uint32Array {
  for (let i = a.length - 1; i > 0; i--) {
    const j = uniformInt(rng, 0, i);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/**
 * A seeded source of uniform numbers in [0, 1): each call returns the next one (pure-rand's
 * uniformFloat64, a multiple of 2⁻⁵³, from the first epoch stream of EpochStreams, so nearby seeds
 * give unrelated streams). The same seed gives the same numbers on every platform. For synthetic
 * data in examples, tests and benchmarks; `seed` is an integer in [0, 2³² − 1].
 *
 * ```js
 * const next = uniformStream(42);
 * const x = Float64Array.from({ length: 100 }, () => 2 * next() - 1); // uniform in [−1, 1)
 * ```
 */
export function uniformStream(seed: number): () => number {
  checkUint32(seed, 'seed', 'uniformStream(seed): ');
  const rng = new EpochStreams(seed).next();
  return () => uniformFloat64(rng);
}

/**
 * Fills `a` with uniform numbers in [−1, 1) from `seed` (`2u − 1` for u from uniformStream(seed)):
 * the synthetic data of the tests' fixtures and of the benchmarks, the same on every platform.
 */
export function fillUniform<A extends Float32Array | Float64Array>(a: A, seed: number): A {
  const next = uniformStream(seed);
  for (let i = 0; i < a.length; i++) a[i] = 2 * next() - 1;
  return a;
}

/** 0, 1, ..., n − 1. */
export function identity(n: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

/** Fills `out` with indices drawn uniformly from [0, n), independently (with replacement). */
export function drawInto(out: Uint32Array, n: number, rng: JumpableRandomGenerator): Uint32Array {
  for (let i = 0; i < out.length; i++) out[i] = uniformInt(rng, 0, n - 1);
  return out;
}

/**
 * A random permutation of 0..n−1, the same for the same seed on every platform: the order
 * `minibatches(n, { seed })` uses for its first epoch.
 */
export function permutation(n: number, seed = 0): Uint32Array {
  checkUint32(n, 'n', 'permutation(n, seed): ');
  checkUint32(seed, 'seed', 'permutation(n, seed): ');
  return shuffleInPlace(identity(n), new EpochStreams(seed).next());
}
