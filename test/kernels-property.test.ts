/**
 * Native step kernels against the reference backend on randomized inputs (fast-check), for every
 * kernel, every flag combination that changes the arithmetic, both dtypes and every native
 * instruction set this CPU runs. Params and every state buffer are compared after one step.
 *
 * Tolerance. The two backends may differ only by rounding: the native kernels fuse the
 * multiply-adds ATen fuses (on an FMA CPU) and compute float32 in float32 with float32 scalars;
 * the reference rounds every operation and computes float32 in float64. A plain relative bound
 * fails wherever the formula cancels (p + update with opposite signs, m*b1 + (1-b1)*g,
 * sq - ga^2 in centered RMSprop). So each element is first checked against |a-b| <= rel*|b|,
 * and only if that fails against |a-b| <= rel*max(|b|, scale), where `scale` is a first-order
 * running error bound of the same formula in units of the dtype's unit roundoff u: every
 * operation adds |result|, inputs of a product or quotient carry their relative error, a sqrt
 * near 0 is bounded by sqrt(error) (see `E` below). `scale` is what a correct kernel's error
 * can reach divided by u, so rel/u is the slack on top of the worst case:
 *   float64: rel = 1e-12, u = 2^-53 -> ~9000x the first-order bound;
 *   float32: rel = 1e-5,  u = 2^-24 -> ~170x (scalars rounded to float32 count as one u each).
 * A real bug (wrong slot, wrong state buffer, wrong branch, a skipped tail element) moves the
 * result by the size of a whole term, orders of magnitude above either.
 * Where the native set rounds every operation (baseline x86-64, no FMA) and the dtype is
 * float64, both backends evaluate the same operations in the same order: bits must match.
 *
 * Seed: fixed in CI, random elsewhere; FC_SEED=<n> reproduces a run, FC_RUNS=<n> sets runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadNative } from '../src/backend/native.js';
import { referenceBackend } from '../src/backend/reference.js';
import { ADAGRAD, ADAM, NADAM, RADAM, RMSPROP, SGD, stateCount } from '../src/backend/types.js';
import type { Backend, FloatArray, StepKernel, TensorList } from '../src/backend/types.js';

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

// ---------------------------------------------------------------------------------------------
// Random data

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
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
}

interface Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  wd: number;
  momentum: number;
  dampening: number;
  alpha: number;
  lrDecay: number;
  sign: number;
  t: number;
}

const logDouble = (lo: number, hi: number) =>
  fc.double({ min: Math.log10(lo), max: Math.log10(hi), noNaN: true }).map((e) => 10 ** e);
/** Zero, or a value well inside float32's normal range (a subnormal rate is no rate). */
const rate = (max: number) => fc.oneof(fc.constant(0), fc.double({ min: 1e-4, max, noNaN: true }));
const beta = fc.oneof(fc.constantFrom(0, 0.9, 0.99, 0.999), rate(0.999));

const hyperArb: fc.Arbitrary<Hyper> = fc.record({
  lr: logDouble(1e-5, 1),
  beta1: beta,
  beta2: beta,
  eps: logDouble(1e-10, 1e-6),
  wd: rate(0.1),
  momentum: rate(0.99),
  dampening: rate(0.9),
  // RMSprop's alpha stays >= 0.5: as alpha -> 0, centered sq - ga^2 becomes g^2 - g^2, whose
  // sign is decided by rounding alone (fused: the tiny negative residue, sqrt -> NaN;
  // unfused: exactly 0). That is the formula's property, not a kernel's.
  alpha: fc.double({ min: 0.5, max: 0.999, noNaN: true }),
  lrDecay: rate(0.1),
  sign: fc.constantFrom(1, -1),
  t: fc.oneof(fc.constantFrom(1, 2, 10), fc.integer({ min: 1, max: 1000 })),
});

interface Shape {
  lengths: number[];
  /** Element offset of each tensor's views into their ArrayBuffers (misaligns SIMD loads). */
  offsets: number[];
  seed: number;
  /** Freshly created state (all zeros), as on an optimizer's first step. */
  zeroState: boolean;
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
      zeroState: fc.oneof({ arbitrary: fc.constant(false), weight: 4 }, { arbitrary: fc.constant(true), weight: 1 }),
    }),
  );

const EXPLICIT_SHAPE: Shape = {
  lengths: EXPLICIT_LENGTHS,
  offsets: EXPLICIT_LENGTHS.map((_, i) => i % 3),
  seed: 12345,
  zeroState: false,
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

// ---------------------------------------------------------------------------------------------
// First-order running error bound: v is the value, e the error bound in units of u.

class E {
  constructor(
    readonly v: number,
    readonly e: number,
  ) {}
}
let U = 2 ** -53;
let SCALAR_ERR = 0;
const X = (v: number) => new E(v, 0);
/** A hyperparameter: float32 kernels round it to float32 once, the reference does not. */
const C = (v: number) => new E(v, SCALAR_ERR * Math.abs(v));
const add = (a: E, b: E) => {
  const v = a.v + b.v;
  return new E(v, a.e + b.e + Math.abs(v));
};
const neg = (a: E) => new E(-a.v, a.e);
const sub = (a: E, b: E) => add(a, neg(b));
const mul = (a: E, b: E) => {
  const v = a.v * b.v;
  return new E(v, Math.abs(a.v) * b.e + Math.abs(b.v) * a.e + Math.abs(v));
};
const div = (a: E, b: E) => {
  const v = a.v / b.v;
  return new E(v, (a.e + Math.abs(v) * b.e) / Math.abs(b.v) + Math.abs(v));
};
/** Covers both the fused (one rounding) and the unfused (two) evaluation. */
const madd = (a: E, b: E, c: E) => add(mul(a, b), c);
const sqrt = (a: E) => {
  const v = Math.sqrt(a.v);
  if (a.e === 0) return new E(v, v);
  const near0 = Math.sqrt(a.e / U);
  return new E(v, (v > 0 ? Math.min(a.e / (2 * v), near0) : near0) + v);
};
const store = (a: E) => new E(a.v, a.e + Math.abs(a.v));
const max = (a: E, b: E) => new E(Math.max(a.v, b.v), Math.max(a.e, b.e));
/** ATen's two-branch lerp; the backends may take different branches when w rounds to 0.5. */
const lerp = (m: E, g: E, w: E) => {
  const a = add(m, mul(w, sub(g, m)));
  const b = sub(g, mul(sub(g, m), sub(X(1), w)));
  return new E(w.v < 0.5 ? a.v : b.v, Math.max(a.e, b.e));
};

/** One element's inputs: param, grad, state buffers in list order. */
interface Elem {
  p: number;
  g: number;
  s: number[];
}

// ---------------------------------------------------------------------------------------------
// Kernels: flag sets, scalars as the optimizers fold them, realistic state, error model

interface Spec {
  kernel: StepKernel;
  bits: Record<string, number>;
  flagSets: number[];
  scalars(h: Hyper): number[];
  /** State values for one element, given its grad scale. */
  state(flags: number, rng: Rng, gs: number): number[];
  /** Outputs in list order: [param, ...state]. */
  model(x: Elem, s: Float64Array, flags: number): E[];
}

const all = (n: number) => Array.from({ length: n }, (_, i) => i);

const adamLikeState = (rng: Rng, gs: number): [number, number] => {
  const m = rng.normal() * gs;
  return [m, m * m * rng.uniform(0.5, 4) + (0.1 * gs) ** 2 * rng.next()];
};

const sgdSpec: Spec = {
  kernel: 'sgdStep',
  bits: { WD: SGD.F_WD, MOMENTUM: SGD.F_MOMENTUM, NESTEROV: SGD.F_NESTEROV, FIRST: SGD.F_FIRST },
  // Without MOMENTUM, NESTEROV and FIRST must be ignored: one combination checks that.
  flagSets: [0, SGD.F_WD, SGD.F_WD | SGD.F_NESTEROV | SGD.F_FIRST, ...all(8).map((i) => SGD.F_MOMENTUM | (i & 1) | ((i & 6) << 1))],
  scalars: (h) => [h.wd, h.momentum, 1 - h.dampening, -h.lr, h.sign],
  state: (f, rng, gs) => (f & SGD.F_MOMENTUM ? [rng.normal() * gs] : []),
  model(x, s, f) {
    let d = mul(C(s[SGD.S_SIGN]), X(x.g));
    if (f & SGD.F_WD) d = madd(C(s[SGD.S_WD]), X(x.p), d);
    if (!(f & SGD.F_MOMENTUM)) return [store(madd(C(s[SGD.S_NEG_LR]), d, X(x.p)))];
    const mom = C(s[SGD.S_MOMENTUM]);
    const buf = store(f & SGD.F_FIRST ? d : madd(C(s[SGD.S_ONE_MINUS_DAMPENING]), d, mul(X(x.s[0]), mom)));
    d = f & SGD.F_NESTEROV ? madd(mom, buf, d) : buf;
    return [store(madd(C(s[SGD.S_NEG_LR]), d, X(x.p))), buf];
  },
};

const adagradSpec: Spec = {
  kernel: 'adagradStep',
  bits: { WD: ADAGRAD.F_WD },
  flagSets: [0, ADAGRAD.F_WD],
  scalars: (h) => [h.wd, -h.lr / (1 + (h.t - 1) * h.lrDecay), h.eps, h.sign],
  state: (_f, rng, gs) => [(rng.normal() * gs) ** 2 * rng.uniform(0, 20)],
  model(x, s, f) {
    let g = mul(C(s[ADAGRAD.S_SIGN]), X(x.g));
    if (f & ADAGRAD.F_WD) g = madd(C(s[ADAGRAD.S_WD]), X(x.p), g);
    const sum = store(madd(g, g, X(x.s[0])));
    const upd = div(mul(C(s[ADAGRAD.S_NEG_CLR]), g), add(sqrt(sum), C(s[ADAGRAD.S_EPS])));
    return [store(add(X(x.p), upd)), sum];
  },
};

const rmspropSpec: Spec = {
  kernel: 'rmspropStep',
  bits: { WD: RMSPROP.F_WD, CENTERED: RMSPROP.F_CENTERED, MOMENTUM: RMSPROP.F_MOMENTUM, EPS_INSIDE: RMSPROP.F_EPS_INSIDE },
  flagSets: all(16),
  scalars: (h) => [h.wd, h.alpha, 1 - h.alpha, h.eps, h.momentum, -h.lr, h.sign],
  state(f, rng, gs) {
    const out: number[] = [];
    if (f & RMSPROP.F_CENTERED) {
      const ga = rng.normal() * gs;
      // A variance sq - ga^2 of at least 1% of ga^2 keeps sqrt(sq - ga^2) well conditioned.
      out.push(ga * ga * (1 + rng.uniform(0.01, 10)) + (0.01 * gs) ** 2, ga);
    } else {
      out.push((rng.normal() * gs) ** 2 * rng.uniform(0.1, 2));
    }
    if (f & RMSPROP.F_MOMENTUM) out.push(rng.normal());
    return out;
  },
  model(x, s, f) {
    const alpha = C(s[RMSPROP.S_ALPHA]);
    const oma = C(s[RMSPROP.S_ONE_MINUS_ALPHA]);
    const eps = C(s[RMSPROP.S_EPS]);
    const negLr = C(s[RMSPROP.S_NEG_LR]);
    let g = mul(C(s[RMSPROP.S_SIGN]), X(x.g));
    if (f & RMSPROP.F_WD) g = madd(C(s[RMSPROP.S_WD]), X(x.p), g);
    const sq = store(madd(mul(oma, g), g, mul(X(x.s[0]), alpha)));
    const out = [sq];
    let v = sq;
    if (f & RMSPROP.F_CENTERED) {
      const ga = store(madd(oma, g, mul(X(x.s[1]), alpha)));
      out.push(ga);
      v = madd(neg(ga), ga, sq);
    }
    const avg = f & RMSPROP.F_EPS_INSIDE ? sqrt(add(v, eps)) : add(sqrt(v), eps);
    if (f & RMSPROP.F_MOMENTUM) {
      const buf = store(add(mul(X(x.s[out.length]), C(s[RMSPROP.S_MOMENTUM])), div(g, avg)));
      return [store(madd(negLr, buf, X(x.p))), ...out, buf];
    }
    return [store(add(X(x.p), div(mul(negLr, g), avg))), ...out];
  },
};

/** DECOUPLED weight decay first (AdamW, NAdamW, RAdamW), then coupled L2, as every Adam does. */
function decayAndGrad(x: Elem, s: Float64Array, f: number, k: { S_WD: number; S_SIGN: number; S_DECAY_MUL: number }, fWd: number, fDec: number) {
  const p = f & fDec ? store(mul(X(x.p), C(s[k.S_DECAY_MUL]))) : X(x.p);
  let g = mul(C(s[k.S_SIGN]), X(x.g));
  if (f & fWd) g = madd(C(s[k.S_WD]), p, g);
  return { p, g };
}

const adamSpec: Spec = {
  kernel: 'adamStep',
  bits: { WD: ADAM.F_WD, AMSGRAD: ADAM.F_AMSGRAD, DECOUPLED: ADAM.F_DECOUPLED },
  flagSets: all(8),
  scalars: (h) => [
    h.wd, h.beta1, 1 - h.beta1, h.beta2, 1 - h.beta2, -h.lr / (1 - h.beta1 ** h.t),
    Math.sqrt(1 - h.beta2 ** h.t), h.eps, h.sign, 1 - h.lr * h.wd,
  ],
  state(f, rng, gs) {
    const [m, v] = adamLikeState(rng, gs);
    if (!(f & ADAM.F_AMSGRAD)) return [m, v];
    return [m, v, rng.next() < 0.3 ? v : v * (1 + rng.next())];
  },
  model(x, s, f) {
    const { p, g } = decayAndGrad(x, s, f, ADAM, ADAM.F_WD, ADAM.F_DECOUPLED);
    const m = store(madd(C(s[ADAM.S_ONE_MINUS_BETA1]), g, mul(X(x.s[0]), C(s[ADAM.S_BETA1]))));
    const v = store(madd(mul(C(s[ADAM.S_ONE_MINUS_BETA2]), g), g, mul(X(x.s[1]), C(s[ADAM.S_BETA2]))));
    const vUsed = f & ADAM.F_AMSGRAD ? max(X(x.s[2]), v) : v;
    const denom = add(div(sqrt(vUsed), C(s[ADAM.S_BC2_SQRT])), C(s[ADAM.S_EPS]));
    const pOut = store(add(p, div(mul(C(s[ADAM.S_NEG_STEP_SIZE]), m), denom)));
    return f & ADAM.F_AMSGRAD ? [pOut, m, v, vUsed] : [pOut, m, v];
  },
};

/** NAdam's momentum-decay products, as torch >= 2.0 folds them (psi = 0.004). */
function nadamCoefs(h: Hyper): [number, number] {
  const mu = (t: number) => h.beta1 * (1 - 0.5 * 0.96 ** (t * 0.004));
  let prod = 1;
  for (let k = 1; k <= h.t; k++) prod *= mu(k);
  const next = mu(h.t + 1);
  return [(-h.lr * (1 - mu(h.t))) / (1 - prod), (-h.lr * next) / (1 - prod * next)];
}

const nadamSpec: Spec = {
  kernel: 'nadamStep',
  bits: { WD: NADAM.F_WD, DECOUPLED: NADAM.F_DECOUPLED },
  flagSets: all(4),
  scalars(h) {
    const [coefGrad, coefAvg] = nadamCoefs(h);
    return [h.wd, 1 - h.beta1, h.beta2, 1 - h.beta2, 1 - h.beta2 ** h.t, h.eps, coefGrad, coefAvg, h.sign, 1 - h.lr * h.wd];
  },
  state: (_f, rng, gs) => adamLikeState(rng, gs),
  model(x, s, f) {
    const { p, g } = decayAndGrad(x, s, f, NADAM, NADAM.F_WD, NADAM.F_DECOUPLED);
    const m = store(lerp(X(x.s[0]), g, C(s[NADAM.S_ONE_MINUS_BETA1])));
    const v = store(madd(mul(C(s[NADAM.S_ONE_MINUS_BETA2]), g), g, mul(X(x.s[1]), C(s[NADAM.S_BETA2]))));
    const denom = add(sqrt(div(v, C(s[NADAM.S_BC2]))), C(s[NADAM.S_EPS]));
    const p1 = store(add(p, div(mul(C(s[NADAM.S_COEF_GRAD]), g), denom)));
    return [store(add(p1, div(mul(C(s[NADAM.S_COEF_AVG]), m), denom))), m, v];
  },
};

/** RAdam's rectification term, or 1 while the variance is intractable (rho_t <= 5). */
function radamRect(h: Hyper): number {
  const rhoInf = 2 / (1 - h.beta2) - 1;
  const b2t = h.beta2 ** h.t;
  const rhoT = rhoInf - (2 * h.t * b2t) / (1 - b2t);
  if (!(rhoT > 5)) return 1;
  return Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
}

const radamSpec: Spec = {
  kernel: 'radamStep',
  bits: { WD: RADAM.F_WD, RECTIFIED: RADAM.F_RECTIFIED, DECOUPLED: RADAM.F_DECOUPLED },
  flagSets: all(8),
  scalars: (h) => [
    h.wd, 1 - h.beta1, h.beta2, 1 - h.beta2, 1 - h.beta1 ** h.t, h.lr, Math.sqrt(1 - h.beta2 ** h.t), h.eps,
    radamRect(h), h.sign, 1 - h.lr * h.wd,
  ],
  state: (_f, rng, gs) => adamLikeState(rng, gs),
  model(x, s, f) {
    const { p, g } = decayAndGrad(x, s, f, RADAM, RADAM.F_WD, RADAM.F_DECOUPLED);
    const m = store(lerp(X(x.s[0]), g, C(s[RADAM.S_ONE_MINUS_BETA1])));
    const v = store(madd(mul(C(s[RADAM.S_ONE_MINUS_BETA2]), g), g, mul(X(x.s[1]), C(s[RADAM.S_BETA2]))));
    const stepTerm = mul(div(m, C(s[RADAM.S_BC1])), C(s[RADAM.S_LR]));
    if (!(f & RADAM.F_RECTIFIED)) return [store(sub(p, stepTerm)), m, v];
    const adaptive = div(C(s[RADAM.S_BC2_SQRT]), add(sqrt(v), C(s[RADAM.S_EPS])));
    return [store(sub(p, mul(mul(stepTerm, adaptive), C(s[RADAM.S_RECT])))), m, v];
  },
};

const SPECS: Spec[] = [sgdSpec, adagradSpec, rmspropSpec, adamSpec, nadamSpec, radamSpec];

function flagName(spec: Spec, flags: number): string {
  const names = Object.entries(spec.bits).filter(([, b]) => flags & b).map(([n]) => n);
  return names.length ? names.join('|') : 'plain';
}

// ---------------------------------------------------------------------------------------------
// Cases and comparison

interface Case {
  spec: Spec;
  flags: number;
  dtype: DType;
  scalars: Float64Array;
  /** Per tensor: [param, grad, ...state], the untouched inputs. */
  tensors: FloatArray[][];
}

function makeCase(spec: Spec, flags: number, dtype: DType, h: Hyper, shape: Shape): Case {
  const rng = new Rng(shape.seed);
  const stride = 2 + stateCount(spec.kernel, flags);
  const tensors = shape.lengths.map((n, t) => {
    const arrays = all(stride).map(() => makeView(dtype, n, shape.offsets[t]));
    const gs = rng.logUniform(1e-4, 1e2);
    const ps = rng.logUniform(1e-2, 10);
    for (let i = 0; i < n; i++) {
      arrays[0][i] = rng.normal() * ps;
      arrays[1][i] = rng.next() < 0.03 ? 0 : rng.normal() * gs;
      if (shape.zeroState) continue;
      const st = spec.state(flags, rng, gs);
      for (let j = 0; j < st.length; j++) arrays[2 + j][i] = st[j];
    }
    return arrays;
  });
  return { spec, flags, dtype, scalars: Float64Array.from(spec.scalars(h)), tensors };
}

const cloneCase = (c: Case): FloatArray[][] => c.tensors.map((t) => t.map(cloneView));
const flat = (ts: FloatArray[][]): TensorList => ts.flat();

/** Runs one step on a copy of the case's inputs; returns the copy. */
function stepOn(backend: Backend, c: Case): FloatArray[][] {
  const ts = cloneCase(c);
  backend[c.spec.kernel](flat(ts), c.scalars, c.flags);
  return ts;
}

const sameBits = (a: number, b: number) => Object.is(a, b) || (a !== a && b !== b);

/**
 * The first element where `got` (native) and `want` (reference) differ by more than rounding,
 * described for the failure message; undefined when every output element agrees.
 */
function firstMismatch(c: Case, got: FloatArray[][], want: FloatArray[][], exact: boolean): string | undefined {
  const rel = REL[c.dtype];
  U = UNIT[c.dtype];
  SCALAR_ERR = c.dtype === 'float32' ? 1 : 0;
  for (let t = 0; t < c.tensors.length; t++) {
    const inp = c.tensors[t];
    for (let i = 0; i < inp[0].length; i++) {
      let model: E[] | undefined;
      for (let j = 0; j < inp.length; j++) {
        if (j === 1) {
          if (!sameBits(got[t][1][i], inp[1][i])) return `tensor ${t} grad[${i}] was written`;
          continue;
        }
        const a = got[t][j][i];
        const b = want[t][j][i];
        const where = `tensor ${t} (n=${inp[0].length}) ${j === 0 ? 'param' : `state ${j - 2}`}[${i}]`;
        if (exact || !Number.isFinite(a) || !Number.isFinite(b)) {
          if (sameBits(a, b) || (!exact && a === b)) continue;
          return `${where}: native ${a} vs reference ${b}${exact ? ' (must be bit-identical)' : ''}`;
        }
        const diff = Math.abs(a - b);
        if (diff <= rel * Math.abs(b)) continue;
        model ??= c.spec.model({ p: inp[0][i], g: inp[1][i], s: inp.slice(2).map((s) => s[i]) }, c.scalars, c.flags);
        const scale = model[j === 0 ? 0 : j - 1].e;
        if (diff <= rel * Math.max(Math.abs(b), scale)) continue;
        const x = inp.map((s) => s[i]);
        return (
          `${where}: native ${a} vs reference ${b}, |diff| ${diff.toExponential(3)} > ` +
          `${rel} * max(|ref|, scale ${scale.toExponential(3)}); inputs [p, g, ...state] = [${x.join(', ')}]`
        );
      }
    }
  }
  return undefined;
}

function describeCase(c: Case): string {
  return `${c.spec.kernel} flags=${c.flags} (${flagName(c.spec, c.flags)}) ${c.dtype} scalars=[${Array.from(c.scalars).join(', ')}]`;
}

// ---------------------------------------------------------------------------------------------
// Tests

const POISON = [NaN, Infinity, -Infinity];

/** NaN and +-Inf in grads: the native step writes NaN and Inf exactly where the reference does. */
function nonFiniteProperty(spec: Spec, dtype: DType) {
  return fc.property(
    hyperArb,
    shapeArb,
    fc.constantFrom(...spec.flagSets),
    fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    (h, shape, flags, seed) => {
      const c = makeCase(spec, flags, dtype, h, shape);
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
      if (injected > 0 && nanParams === 0) throw new Error(`${describeCase(c)}: ${injected} non-finite grads produced no NaN param`);
    },
  );
}

const ISAS = native.addon ? (['avx512', 'avx2', 'baseline'] as const).filter((isa) => native.addon!.setIsa(isa)) : [];
native.addon?.setIsa('best');

const sampleHyper = fc.sample(hyperArb, { seed: SEED, numRuns: 1 })[0];

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
    for (const spec of SPECS) {
      for (const flags of spec.flagSets) {
        for (const dtype of DTYPES) {
          it(`${spec.kernel} ${flagName(spec, flags)} ${dtype}`, () => {
            fc.assert(
              fc.property(hyperArb, shapeArb, (h, shape) => {
                const c = makeCase(spec, flags, dtype, h, shape);
                const got = stepOn(native.backend!, c);
                const want = stepOn(referenceBackend, c);
                const bad = firstMismatch(c, got, want, !fma && dtype === 'float64');
                if (bad) throw new Error(`${describeCase(c)}: ${bad}`);
              }),
              { examples: [[sampleHyper, EXPLICIT_SHAPE]] },
            );
          });
        }
      }
      for (const dtype of DTYPES) {
        it(`${spec.kernel} ${dtype}: NaN and Inf in grads land where the reference puts them`, () => {
          fc.assert(nonFiniteProperty(spec, dtype));
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

for (const backend of BACKENDS) {
  describe(`${backend.name}: prepared lists`, () => {
    for (const spec of SPECS) {
      it(`${spec.kernel}: a prepared handle and the plain list give bit-identical results`, () => {
        fc.assert(
          fc.property(hyperArb, shapeArb, fc.constantFrom(...spec.flagSets), fc.constantFrom(...DTYPES), (h, shape, flags, dtype) => {
            const c = makeCase(spec, flags, dtype, h, shape);
            const viaList = stepOn(backend, c);
            const ts = cloneCase(c);
            const handle = backend.prepare(flat(ts), 2 + stateCount(spec.kernel, flags));
            expect(handle.tensors).toBe(c.tensors.length);
            backend[spec.kernel](handle, c.scalars, c.flags);
            let bad = firstMismatch(c, ts, viaList, true);
            if (!bad) {
              // A second step through the same handle still sees the buffers the first one wrote.
              const twice = stepOn(backend, { ...c, tensors: viaList });
              backend[spec.kernel](handle, c.scalars, c.flags);
              bad = firstMismatch(c, ts, twice, true);
            }
            if (bad) throw new Error(`${describeCase(c)}: prepared vs list: ${bad}`);
          }),
        );
      });
    }

    it('a step through a prepared list whose buffer was detached throws and writes nothing', () => {
      for (const spec of SPECS) {
        for (const dtype of DTYPES) {
          const flags = spec.flagSets[spec.flagSets.length - 1];
          const c = makeCase(spec, flags, dtype, sampleHyper, { lengths: [5, 9, 3], offsets: [0, 1, 2], seed: 7, zeroState: false });
          const ts = cloneCase(c);
          const handle = backend.prepare(flat(ts), 2 + stateCount(spec.kernel, flags));
          const before = cloneCase({ ...c, tensors: ts });
          const victim = ts[2][ts[2].length - 1].buffer as ArrayBuffer;
          structuredClone(victim, { transfer: [victim] });
          expect(() => backend[spec.kernel](handle, c.scalars, c.flags)).toThrow(TypeError);
          for (let t = 0; t < ts.length; t++) {
            for (let j = 0; j < ts[t].length; j++) {
              if (ts[t][j].buffer !== victim) expect(Array.from(ts[t][j])).toEqual(Array.from(before[t][j]));
            }
          }
        }
      }
    });

    it('a step through a prepared list whose resizable buffer shrank throws and writes nothing', () => {
      const buf = new ResizableArrayBuffer(64, { maxByteLength: 128 });
      const p = new Float32Array(buf, 0, 4);
      const g = new Float32Array(buf, 16, 4);
      const m = new Float32Array(buf, 32, 4);
      const v = new Float32Array(buf, 48, 4);
      p.fill(1);
      g.fill(0.5);
      const handle = backend.prepare([p, g, m, v], 4);
      const scalars = Float64Array.from(adamSpec.scalars(sampleHyper));
      buf.resize(48);
      const snapshot = Array.from(new Float32Array(buf));
      expect(() => backend.adamStep(handle, scalars, 0)).toThrow(TypeError);
      expect(Array.from(new Float32Array(buf))).toEqual(snapshot);
    });
  });
}
