/**
 * Native step kernels against the reference backend on randomized inputs (fast-check), for every
 * registered kernel, every flag combination, both dtypes and every native instruction set this
 * CPU runs. Params and every state buffer are compared after one step. Nothing here is written
 * per kernel: everything comes from the descriptors (src/backend/kernel.ts) and the classes.
 *
 * Inputs. Scalars are what the optimizer classes (src/optim) pass to `backend.step`: each class
 * is built with hyperparameters drawn around its own defaults and stepped 1 to 1000 times, and
 * each call it makes is captured (a pool per kernel). State is what the kernel itself leaves:
 * from zero, 0 to 5 steps of the descriptor's reference loop on random gradients, each step with
 * random flags among those that keep the same state buffers (so a look-ahead kernel finds a
 * velocity, an AMSGrad one a maximum that bounds its second moment).
 *
 * Tolerance. The backends may differ only by rounding: the native kernels fuse the multiply-adds
 * ATen fuses (on an FMA CPU) and compute float32 in float32 with scalars rounded to float32; the
 * reference rounds every operation and computes float32 in float64. A plain relative bound fails
 * wherever the formula cancels (p + update of opposite signs, sq − ga² in centered RMSprop). So
 * each output element is first checked against |native − ref| <= rel·|ref|, and only if that
 * fails against |native − ref| <= rel·max(|ref|, scale). `scale` measures the element's
 * sensitivity to rounding: the descriptor's reference loop is run again in float64 on that one
 * element, with every input (param, grad, state) and every scalar multiplied by (1 ± 4u), signs
 * at random, 8 draws, and then each input and each scalar alone by (1 ± 4u); scale = the max over
 * all of these of |output moved| / u, u the dtype's unit roundoff. (The single-input moves are
 * for outputs in which two terms cancel, m = β₁m + (1−β₁)g with β₁m ≈ −(1−β₁)g: the random draws
 * now and then all move both terms the same way, and the output hardly at all, while a rounding
 * of either term alone moves it by that term's rounding. Without them, AdaBelief float32 failed
 * about once in 4000 runs, on an m of −1.1e-8 made of two terms of 1.5e-5.)
 * A correct kernel's rounding errors are errors of that size in the same places (one rounding of
 * an input or an intermediate, a scalar rounded to float32), so scale is about what they can
 * reach divided by u, with a factor 4 to spare; rel/u is the slack on top:
 *   float64: rel = 1e-12, u = 2^-53 -> ~9000 x scale·u;
 *   float32: rel = 1e-5,  u = 2^-24 -> ~170 x scale·u.
 * A real bug (wrong slot, wrong state buffer, wrong branch, a skipped tail element) moves the
 * result by the size of a whole term, orders of magnitude above either. A perturbation that
 * makes the output non-finite gives no bound (scale NaN): the plain relative check must then hold.
 * Where the native set rounds every operation (no FMA: the baseline x86-64 set) and the dtype is
 * float64, both backends evaluate the same operations in the same order: bits must match, for
 * every kernel (Adamax's fused lerp included: without FMA it rounds as the reference does).
 *
 * Seed: fixed in CI, random elsewhere; FC_SEED=<n> reproduces a run, FC_RUNS=<n> sets runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { AnyKernel } from '../src/backend/kernel.js';
import { loadNative } from '../src/backend/native.js';
import { referenceBackend } from '../src/backend/reference.js';
import { getBackend, setBackend } from '../src/backend/select.js';
import type { Backend, FloatArray, TensorList } from '../src/backend/types.js';
import { OptimRangeError, OptimTypeError } from '../src/errors.js';
import { uniformStream } from '../src/data/random.js';
import { param } from '../src/param.js';
import {
  KERNELS, KERNEL_CASES, OPTIMIZER_CLASSES, captureSteps, flagName, flagRecord, scalarRecord,
} from './helpers/kernels.js';
import type { OptimizerClass } from './helpers/kernels.js';

const native = loadNative();
if (process.env.CI === 'true' && !native.addon) {
  throw new Error(`CI requires the native addon, which did not load: ${native.error}`);
}

if (!native.addon) console.warn(`kernels-property: native addon not loaded (${native.error}); native comparisons skipped`);

const SEED = Number(process.env.FC_SEED ?? (process.env.CI === 'true' ? 20251123 : Date.now() % 2 ** 31));
const RUNS = Number(process.env.FC_RUNS ?? 8);
console.log(`kernels-property: fast-check seed ${SEED} (FC_SEED=${SEED} reproduces), ${RUNS} runs per property`);
fc.configureGlobal({ seed: SEED, numRuns: RUNS });

/** Lengths every kernel must handle: empty, scalar, around SIMD widths, a large odd tail. */
const EXPLICIT_LENGTHS = [0, 1, 7, 8, 9, 1023, 100003];

type DType = 'float32' | 'float64';
const DTYPES: DType[] = ['float32', 'float64'];
const REL: Record<DType, number> = { float32: 1e-5, float64: 1e-12 };
const UNIT: Record<DType, number> = { float32: 2 ** -24, float64: 2 ** -53 };
/** The sensitivity estimate: perturbations of PERTURB units of roundoff, DRAWS random draws, then one input at a time. */
const PERTURB = 4;
const DRAWS = 8;

/** Every flag combination of a kernel. */
const allFlagSets = (k: AnyKernel) => Array.from({ length: k.allFlags + 1 }, (_, f) => f);

// ---------------------------------------------------------------------------------------------
// Random data

class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = uniformStream(seed);
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  logUniform(lo: number, hi: number): number {
    return Math.exp(this.uniform(Math.log(lo), Math.log(hi)));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
}

// ---------------------------------------------------------------------------------------------
// Scalars: what the optimizer classes pass to the kernels, a pool per kernel

/** A scalar array an optimizer passed to its kernel, and how it came about (for failure messages). */
interface Sample {
  scalars: Float64Array;
  source: string;
}

/**
 * A hyperparameter drawn around its default: a coin for a boolean; for a number, the default a
 * quarter of the time, else a decay factor d in [0.5, 1) gets 1 − d scaled by up to 10 either
 * way, a zero stays zero or becomes a rate up to 0.98, any other value is scaled by up to 30
 * either way; an option without a default (a required rate) is drawn from [1e-4, 1].
 */
function around(d: unknown, rng: Rng): unknown {
  if (typeof d === 'boolean') return rng.next() < 0.5;
  if (Array.isArray(d)) return d.map((x) => around(x, rng));
  if (d === undefined) return rng.logUniform(1e-4, 1);
  if (typeof d !== 'number' || rng.next() < 0.25) return d;
  if (d >= 0.5 && d < 1) return Math.max(0, 1 - (1 - d) * rng.logUniform(0.1, 10));
  if (d === 0) return rng.next() < 0.5 ? 0 : rng.logUniform(1e-4, 0.98);
  return d * rng.logUniform(1 / 30, 30);
}

/**
 * A class's defaults. A class that cannot be built without options lacks a default for torch's
 * one required option, lr: it is then given, and reads as undefined (drawn as a required rate).
 */
function defaultsOf(Class: OptimizerClass): Record<string, unknown> {
  const params = () => [param(new Float64Array(1))];
  try {
    return { ...new Class(params()).defaults };
  } catch (e) {
    if (!(e instanceof OptimTypeError)) throw e;
    return { ...new Class(params(), { lr: 1 }).defaults, lr: undefined };
  }
}

/**
 * Options for `Class` drawn around its defaults, redrawn until the class accepts them (its own
 * checks decide: SGD's Nesterov and look-ahead forms need momentum and no dampening, ...).
 */
function drawOptions(name: string, Class: OptimizerClass, rng: Rng): object {
  const defaults = defaultsOf(Class);
  for (let tries = 0; tries < 10_000; tries++) {
    const options = Object.fromEntries(Object.entries(defaults).map(([key, d]) => [key, around(d, rng)]));
    try {
      new Class([param(new Float64Array(1))], options);
      return options;
    } catch (e) {
      if (!(e instanceof OptimRangeError)) throw e;
    }
  }
  throw new Error(`${name}: no valid options drawn around its defaults in 10000 tries`);
}

const POOL_SIZE = 32;

/**
 * Steps every optimizer class (reference backend, one element) with options drawn around its
 * defaults for 1 to 1000 steps (log-uniform), keeping the scalars of each kernel's last call,
 * until every registered kernel has POOL_SIZE samples. A kernel no class reaches fails here.
 */
function scalarPool(seed: number): Map<AnyKernel, Sample[]> {
  const rng = new Rng(seed);
  const pool = new Map<AnyKernel, Sample[]>(KERNELS.map((k) => [k, []]));
  const missing = () => KERNELS.filter((k) => pool.get(k)!.length < POOL_SIZE);
  /** The kernels each class was seen to call. */
  const uses = new Map<string, Set<AnyKernel>>(OPTIMIZER_CLASSES.map(([name]) => [name, new Set()]));
  /** A class may rest once none of its kernels needs samples, unless no class is known to call one that does. */
  const rests = (name: string) => {
    const needed = missing();
    const known = (k: AnyKernel) => [...uses.values()].some((s) => s.has(k));
    return needed.every(known) && !needed.some((k) => uses.get(name)!.has(k));
  };
  const MAX_RUNS = 4000;
  const previous = getBackend().name;
  setBackend('reference');
  try {
    for (let i = 0, runs = 0; missing().length > 0 && runs < MAX_RUNS; i++) {
      const [name, Class] = OPTIMIZER_CLASSES[i % OPTIMIZER_CLASSES.length];
      if (rests(name)) continue;
      runs++;
      const options = drawOptions(name, Class, rng);
      const steps = Math.round(rng.logUniform(1, 1000));
      const p = param(Float64Array.of(1));
      const opt = new Class([p], { ...options, nonFinite: 'ignore' });
      const closure = () => {
        p.grad[0] = 0.1;
        return 0;
      };
      const calls = captureSteps(() => {
        for (let t = 0; t < steps; t++) opt.step(closure);
      });
      const last = new Map(calls.map((c) => [c.kernel, c]));
      for (const [kernel, c] of last) {
        uses.get(name)!.add(kernel);
        const samples = pool.get(kernel);
        if (samples === undefined) throw new Error(`${name} called ${kernel.exportName}, which is not registered`);
        if (samples.length < POOL_SIZE) samples.push({ scalars: c.scalars, source: `${name} ${JSON.stringify(options)} at step ${steps}` });
      }
    }
  } finally {
    setBackend(previous);
  }
  for (const [k, s] of pool) {
    if (s.length < POOL_SIZE) {
      throw new Error(`kernel ${k.name}: the optimizer classes gave ${s.length} scalar samples in ${MAX_RUNS} runs (no class uses it?)`);
    }
  }
  return pool;
}

const POOL = scalarPool(SEED);
const sampleArb = (k: AnyKernel) => fc.nat({ max: POOL_SIZE - 1 }).map((i) => POOL.get(k)![i]);

// ---------------------------------------------------------------------------------------------
// Tensors and state

interface Shape {
  lengths: number[];
  /** Element offset of each tensor's views into their ArrayBuffers (misaligns SIMD loads). */
  offsets: number[];
  seed: number;
  /** Reference steps that build the state from zero (0: fresh state, as at a first step). */
  warmup: number;
}

const lengthArb = fc.oneof(
  { arbitrary: fc.constantFrom(0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1023), weight: 2 },
  { arbitrary: fc.integer({ min: 0, max: 3000 }), weight: 3 },
);

const shapeArb: fc.Arbitrary<Shape> = fc
  .array(fc.tuple(lengthArb, fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 5 })
  .chain((ts) =>
    fc.record({
      lengths: fc.constant(ts.map((t) => t[0])),
      offsets: fc.constant(ts.map((t) => t[1])),
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      warmup: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 5 }), weight: 4 }, { arbitrary: fc.constant(0), weight: 1 }),
    }),
  );

const EXPLICIT_SHAPE: Shape = {
  lengths: EXPLICIT_LENGTHS,
  offsets: EXPLICIT_LENGTHS.map((_, i) => i % 3),
  seed: 12345,
  warmup: 3,
};

/** A view of `n` elements at element `offset` into a fresh buffer with 2 spare elements after. */
function makeView(dtype: DType, n: number, offset: number): FloatArray {
  const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
  return new Ctor(new ArrayBuffer((n + offset + 2) * Ctor.BYTES_PER_ELEMENT), offset * Ctor.BYTES_PER_ELEMENT, n);
}

/** The same bytes in a new buffer, viewed at the same offset (so a run cannot touch the original). */
function cloneView(a: FloatArray): FloatArray {
  const Ctor = a instanceof Float32Array ? Float32Array : Float64Array;
  return new Ctor((a.buffer as ArrayBuffer).slice(0), a.byteOffset, a.length);
}

/** For each kernel and flags, the flag sets with the same state buffers (the warm-up steps'). */
const sameBuffers = new Map(
  KERNELS.map((k) => [k, allFlagSets(k).map((f) => allFlagSets(k).filter((g) => k.stateNames(g).join() === k.stateNames(f).join()))]),
);

interface Case {
  kernel: AnyKernel;
  flags: number;
  dtype: DType;
  sample: Sample;
  /** Per tensor: [param, grad, ...state], the untouched inputs. */
  tensors: FloatArray[][];
}

function makeCase(kernel: AnyKernel, flags: number, dtype: DType, sample: Sample, shape: Shape): Case {
  const rng = new Rng(shape.seed);
  const stride = kernel.stride(flags);
  const s = scalarRecord(kernel, sample.scalars);
  const warmFlags = sameBuffers.get(kernel)![flags];
  const tensors = shape.lengths.map((n, t) => {
    const arrays = Array.from({ length: stride }, () => makeView(dtype, n, shape.offsets[t]));
    const [p, g] = arrays;
    const gs = rng.logUniform(1e-4, 1e2);
    const ps = rng.logUniform(1e-2, 10);
    for (let i = 0; i < n; i++) p[i] = rng.normal() * ps;
    for (let w = 0; w < shape.warmup; w++) {
      for (let i = 0; i < n; i++) g[i] = rng.normal() * gs;
      kernel.reference(p, g, arrays.slice(2), s, flagRecord(kernel, rng.pick(warmFlags)));
    }
    for (let i = 0; i < n; i++) g[i] = rng.next() < 0.03 ? 0 : rng.normal() * gs;
    return arrays;
  });
  return { kernel, flags, dtype, sample, tensors };
}

const cloneCase = (c: Case): FloatArray[][] => c.tensors.map((t) => t.map(cloneView));
const flat = (ts: FloatArray[][]): TensorList => ts.flat();

/** Runs one step on a copy of the case's inputs; returns the copy. */
function stepOn(backend: Backend, c: Case): FloatArray[][] {
  const ts = cloneCase(c);
  backend.step(c.kernel, flat(ts), c.sample.scalars, c.flags);
  return ts;
}

// ---------------------------------------------------------------------------------------------
// Comparison

/** The descriptor's reference loop on one element in float64: outputs [param, ...state]. */
function referenceElement(k: AnyKernel, x: readonly number[], scalars: ArrayLike<number>, flags: number): number[] {
  const arrays = x.map((v) => Float64Array.of(v));
  k.reference(arrays[0], arrays[1], arrays.slice(2), scalarRecord(k, scalars), flagRecord(k, flags));
  return [arrays[0][0], ...arrays.slice(2).map((a) => a[0])];
}

/**
 * The element's sensitivity to rounding, per output [param, ...state], in units of u: how far the
 * reference moves when every input and scalar is scaled by (1 ± PERTURB·u), the max over DRAWS
 * draws of random signs and over each input and scalar scaled alone (see the header). NaN when a
 * perturbation makes an output non-finite.
 */
function sensitivity(c: Case, x: readonly number[], seed: number): number[] {
  const u = UNIT[c.dtype];
  const rng = new Rng(seed);
  const nudge = (v: number) => v * (1 + (rng.next() < 0.5 ? -PERTURB : PERTURB) * u);
  const scalars = Array.from(c.sample.scalars);
  const base = referenceElement(c.kernel, x, scalars, c.flags);
  const moved = base.map(() => 0);
  const note = (out: number[]) => out.forEach((v, j) => (moved[j] = Math.max(moved[j], Math.abs(v - base[j]))));
  for (let d = 0; d < DRAWS; d++) note(referenceElement(c.kernel, x.map(nudge), scalars.map(nudge), c.flags));
  // Each input and scalar alone, too: where two terms cancel in an output, every draw above may
  // move both the same way (so the output hardly moves), while a rounding of either one alone
  // moves it by that term's rounding.
  const inputs = [...x, ...scalars];
  for (let k = 0; k < inputs.length; k++) {
    for (const sign of [1, -1]) {
      const v = inputs.slice();
      v[k] *= 1 + sign * PERTURB * u;
      note(referenceElement(c.kernel, v.slice(0, x.length), v.slice(x.length), c.flags));
    }
  }
  return moved.map((m) => m / u);
}

const sameBits = (a: number, b: number) => Object.is(a, b) || (a !== a && b !== b);

/**
 * The first element where `got` (native) and `want` (reference) differ by more than rounding,
 * described for the failure message; undefined when every output element agrees.
 */
function firstMismatch(c: Case, got: FloatArray[][], want: FloatArray[][], exact: boolean): string | undefined {
  const rel = REL[c.dtype];
  for (let t = 0; t < c.tensors.length; t++) {
    const inp = c.tensors[t];
    for (let i = 0; i < inp[0].length; i++) {
      let scale: number[] | undefined;
      for (let j = 0; j < inp.length; j++) {
        if (j === 1) {
          if (!sameBits(got[t][1][i], inp[1][i])) return `tensor ${t} grad[${i}] was written`;
          continue;
        }
        const a = got[t][j][i];
        const b = want[t][j][i];
        const where = () => `tensor ${t} (n=${inp[0].length}) ${j === 0 ? 'param' : c.kernel.stateNames(c.flags)[j - 2]}[${i}]`;
        if (exact || !Number.isFinite(a) || !Number.isFinite(b)) {
          if (sameBits(a, b) || (!exact && a === b)) continue;
          return `${where()}: native ${a} vs reference ${b}${exact ? ' (must be bit-identical)' : ''}`;
        }
        const diff = Math.abs(a - b);
        if (diff <= rel * Math.abs(b)) continue;
        const x = inp.map((s) => s[i]);
        scale ??= sensitivity(c, x, i + 7919 * t);
        const sc = scale[j === 0 ? 0 : j - 1];
        if (diff <= rel * Math.max(Math.abs(b), sc)) continue;
        return (
          `${where()}: native ${a} vs reference ${b}, |diff| ${diff.toExponential(3)} > ` +
          `${rel} * max(|ref|, scale ${sc.toExponential(3)}); inputs [p, g, ...state] = [${x.join(', ')}]`
        );
      }
    }
  }
  return undefined;
}

function describeCase(c: Case): string {
  return (
    `${c.kernel.exportName} flags=${c.flags} (${flagName(c.kernel, c.flags)}) ${c.dtype}, scalars from ${c.sample.source}: ` +
    `[${Array.from(c.sample.scalars).join(', ')}]`
  );
}

// ---------------------------------------------------------------------------------------------
// Tests

const POISON = [NaN, Infinity, -Infinity];

/** Whether a NaN grad reaches the param under these flags (a look-ahead move reads no grad). */
function readsGrad(c: Case): boolean {
  const x = [1, NaN, ...c.kernel.stateNames(c.flags).map(() => 1)];
  return Number.isNaN(referenceElement(c.kernel, x, c.sample.scalars, c.flags)[0]);
}

/** NaN and ±Inf in grads: the native step writes NaN and Inf exactly where the reference does. */
function nonFiniteProperty(kernel: AnyKernel, dtype: DType) {
  return fc.property(
    sampleArb(kernel),
    shapeArb,
    fc.constantFrom(...allFlagSets(kernel)),
    fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    (sample, shape, flags, seed) => {
      const c = makeCase(kernel, flags, dtype, sample, shape);
      const rng = new Rng(seed);
      let injected = 0;
      for (const t of c.tensors) {
        for (let i = 0; i < t[1].length; i++) if (rng.next() < 0.05) t[1][i] = POISON[injected++ % 3];
      }
      const got = stepOn(native.backend!, c);
      const want = stepOn(referenceBackend, c);
      const bad = firstMismatch(c, got, want, false);
      if (bad) throw new Error(`${describeCase(c)}: ${bad}`);
      const nanParams = want.reduce((k, t) => k + t[0].filter((x) => x !== x).length, 0);
      if (injected > 0 && nanParams === 0 && readsGrad(c)) {
        throw new Error(`${describeCase(c)}: ${injected} non-finite grads produced no NaN param`);
      }
    },
  );
}

const ISAS = native.addon ? (['avx512', 'avx2', 'baseline'] as const).filter((isa) => native.addon!.setIsa(isa)) : [];
native.addon?.setIsa('best');

for (const isa of ISAS) {
  describe(`native ${isa} kernels match the reference`, () => {
    let fma = true;
    beforeAll(() => {
      expect(native.addon!.setIsa(isa)).toBe(true);
      fma = native.addon!.info().fma;
    });
    afterAll(() => {
      native.addon!.setIsa('best');
    });
    for (const kernel of KERNELS) {
      for (const flags of allFlagSets(kernel)) {
        for (const dtype of DTYPES) {
          it(`${kernel.exportName} ${flagName(kernel, flags)} ${dtype}`, () => {
            fc.assert(
              fc.property(sampleArb(kernel), shapeArb, (sample, shape) => {
                const c = makeCase(kernel, flags, dtype, sample, shape);
                const got = stepOn(native.backend!, c);
                const want = stepOn(referenceBackend, c);
                const bad = firstMismatch(c, got, want, !fma && dtype === 'float64');
                if (bad) throw new Error(`${describeCase(c)}: ${bad}`);
              }),
              { examples: [[POOL.get(kernel)![0], EXPLICIT_SHAPE]] },
            );
          });
        }
      }
      for (const dtype of DTYPES) {
        it(`${kernel.exportName} ${dtype}: NaN and Inf in grads land where the reference puts them`, () => {
          fc.assert(nonFiniteProperty(kernel, dtype));
        });
      }
    }
  });
}

/** ES2024's resizable ArrayBuffer (Node 20 has it; this lib target does not declare it). */
const ResizableArrayBuffer = ArrayBuffer as unknown as new (
  length: number,
  options: { maxByteLength: number },
) => ArrayBuffer & { resize(length: number): void };

const BACKENDS: Backend[] = native.backend ? [native.backend, referenceBackend] : [referenceBackend];

const SMALL_SHAPE: Shape = { lengths: [5, 9, 3], offsets: [0, 1, 2], seed: 7, warmup: 0 };

for (const backend of BACKENDS) {
  describe(`${backend.name}: prepared lists`, () => {
    for (const kernel of KERNELS) {
      it(`${kernel.exportName}: a prepared handle and the plain list give bit-identical results`, () => {
        fc.assert(
          fc.property(sampleArb(kernel), shapeArb, fc.constantFrom(...allFlagSets(kernel)), fc.constantFrom(...DTYPES), (sample, shape, flags, dtype) => {
            const c = makeCase(kernel, flags, dtype, sample, shape);
            const viaList = stepOn(backend, c);
            const ts = cloneCase(c);
            const handle = backend.prepare(flat(ts), kernel.stride(flags));
            expect(handle.tensors).toBe(c.tensors.length);
            backend.step(kernel, handle, sample.scalars, flags);
            let bad = firstMismatch(c, ts, viaList, true);
            if (!bad) {
              // A second step through the same handle still sees the buffers the first one wrote.
              const twice = stepOn(backend, { ...c, tensors: viaList });
              backend.step(kernel, handle, sample.scalars, flags);
              bad = firstMismatch(c, ts, twice, true);
            }
            if (bad) throw new Error(`${describeCase(c)}: prepared vs list: ${bad}`);
          }),
        );
      });
    }

    it.each(KERNEL_CASES)('$kernel.exportName: the shared kernel case writes every buffer but the grads', ({ kernel, flags, scalars }) => {
      const c = makeCase(kernel, flags, 'float64', { scalars, source: 'scalarsFor' }, SMALL_SHAPE);
      const after = stepOn(backend, c);
      c.tensors.forEach((t, i) =>
        t.forEach((a, j) => {
          if (j === 1) expect(Array.from(after[i][j])).toEqual(Array.from(a));
          else expect(Array.from(after[i][j]), `tensor ${i} array ${j}`).not.toEqual(Array.from(a));
        }),
      );
    });

    it('a step through a prepared list whose buffer was detached throws and writes nothing', () => {
      for (const { kernel, flags } of KERNEL_CASES) {
        for (const dtype of DTYPES) {
          const c = makeCase(kernel, flags, dtype, POOL.get(kernel)![0], SMALL_SHAPE);
          const ts = cloneCase(c);
          const handle = backend.prepare(flat(ts), kernel.stride(flags));
          const before = cloneCase({ ...c, tensors: ts });
          const victim = ts[2][ts[2].length - 1].buffer as ArrayBuffer;
          structuredClone(victim, { transfer: [victim] });
          expect(() => backend.step(kernel, handle, c.sample.scalars, flags)).toThrow(TypeError);
          for (let t = 0; t < ts.length; t++) {
            for (let j = 0; j < ts[t].length; j++) {
              if (ts[t][j].buffer !== victim) expect(Array.from(ts[t][j])).toEqual(Array.from(before[t][j]));
            }
          }
        }
      }
    });

    it('a step through a prepared list whose resizable buffer shrank throws and writes nothing', () => {
      for (const { kernel, flags, stride } of KERNEL_CASES) {
        // One tensor of 4 floats per array, all in one resizable buffer; the last array is cut off.
        const buf = new ResizableArrayBuffer(16 * stride, { maxByteLength: 32 * stride });
        const list = Array.from({ length: stride }, (_, j) => new Float32Array(buf, 16 * j, 4).fill(1 - j / 8));
        const handle = backend.prepare(list, stride);
        buf.resize(16 * (stride - 1));
        const snapshot = Array.from(new Float32Array(buf));
        expect(() => backend.step(kernel, handle, POOL.get(kernel)![0].scalars, flags)).toThrow(TypeError);
        expect(Array.from(new Float32Array(buf))).toEqual(snapshot);
      }
    });
  });
}
