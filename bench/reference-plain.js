'use strict';
// The reference backend against a plain JavaScript loop: Adam (torch defaults, step 10, no
// weight decay, no amsgrad) through `referenceBackend.step` on a prepared list, and the same
// arithmetic written out as one loop here, sampled in alternation at each size. kernel-suite.js
// runs it after every other kernel, in its child process of one dtype, so the reference's shared
// helpers have seen every algorithm by then, as in a program that uses several.
const { referenceBackend } = require('../dist/backend/reference.js');
const { ADAM_KERNEL } = require('../dist/optim/adam.js');
const { measureAll } = require('./timing.js');

/** Adam's scalars at step 10 with torch's defaults (what Adam.fillScalars folds). */
function adamScalars() {
  const K = ADAM_KERNEL;
  const lr = 1e-3;
  const [beta1, beta2] = [0.9, 0.999];
  const step = 10;
  const s = new Float64Array(K.nScalars);
  s[K.slot.wd] = 0;
  s[K.slot.oneMinusBeta1] = 1 - beta1;
  s[K.slot.beta2] = beta2;
  s[K.slot.oneMinusBeta2] = 1 - beta2;
  s[K.slot.negStepSize] = -(lr / (1 - beta1 ** step));
  s[K.slot.bc2Sqrt] = Math.sqrt(1 - beta2 ** step);
  s[K.slot.eps] = 1e-8;
  s[K.slot.sign] = 1;
  s[K.slot.decayMul] = 1;
  return s;
}

/**
 * Adam without weight decay or amsgrad, as one might write it by hand: the reference loop's
 * arithmetic (lerp as ATen's, v = (1−β₂)·g·g + β₂·v, p += negStepSize·m / (√v / bc2Sqrt + ε)),
 * scalars as locals. `S` holds them already rounded to the arrays' type.
 */
function plainAdam(p, g, m, v, S) {
  const w = S.oneMinusBeta1;
  const beta2 = S.beta2;
  const oneMinusBeta2 = S.oneMinusBeta2;
  const negStepSize = S.negStepSize;
  const bc2Sqrt = S.bc2Sqrt;
  const eps = S.eps;
  const sign = S.sign;
  for (let i = 0; i < p.length; i++) {
    const gi = sign * g[i];
    const mi = m[i];
    m[i] = w < 0.5 && w > -0.5 ? mi + w * (gi - mi) : gi - (gi - mi) * (1 - w);
    v[i] = oneMinusBeta2 * gi * gi + v[i] * beta2;
    p[i] = p[i] + (negStepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
  }
}

/** Four arrays of `n` (p, g, m, v) with values no step count drives into subnormals. */
function arrays(C, n) {
  const [p, g, m, v] = [new C(n), new C(n), new C(n), new C(n)];
  for (let i = 0; i < n; i++) {
    p[i] = 0.1 * (((i * 7919) % 1000) / 1000 - 0.5);
    g[i] = (i & 1 ? 1e-2 : -1e-2) * (0.5 + ((i * 104729) % 997) / 997);
    m[i] = 1e-3 * g[i];
    v[i] = 1e-4 * (1 + (i % 13) / 13);
  }
  return [p, g, m, v];
}

/**
 * Rows { n, referenceNsPerElem, plainNsPerElem, ratio }: medians of alternated samples. The two
 * run on separate arrays; both are checked to give the same bits after the timing (each ran a
 * different number of steps, so a fresh pair is stepped 3 times each first).
 */
function runReferencePlain(dtype, sizes, log) {
  const C = dtype === 'float32' ? Float32Array : Float64Array;
  const K = ADAM_KERNEL;
  const scalars = adamScalars();
  const S = {};
  K.scalars.forEach((name, i) => (S[name] = dtype === 'float32' ? Math.fround(scalars[i]) : scalars[i]));
  // Many short calls first, so both functions reach V8's regular optimized code: a first call
  // long enough to be optimized while it runs gets the on-stack-replaced code, which after a
  // deoptimization can stay in use at up to twice the time per element (the plain loop too).
  const [wa, wb] = [arrays(C, 1000), arrays(C, 1000)];
  const hw = referenceBackend.prepare(wa, 4);
  for (let t = 0; t < 500; t++) {
    referenceBackend.step(K, hw, scalars, 0);
    plainAdam(wb[0], wb[1], wb[2], wb[3], S);
  }
  const rows = [];
  for (const n of sizes) {
    const [a, b] = [arrays(C, Math.min(n, 1e4)), arrays(C, Math.min(n, 1e4))];
    const ha = referenceBackend.prepare(a, 4);
    for (let t = 0; t < 3; t++) {
      referenceBackend.step(K, ha, scalars, 0);
      plainAdam(b[0], b[1], b[2], b[3], S);
    }
    if (a.some((x, j) => x.some((y, i) => !Object.is(y, b[j][i])))) {
      throw new Error(`bench: the plain ${dtype} Adam loop does not compute the reference's bits`);
    }
    const ref = arrays(C, n);
    const plain = arrays(C, n);
    const h = referenceBackend.prepare(ref, 4);
    const [r, q] = measureAll([
      () => referenceBackend.step(K, h, scalars, 0),
      () => plainAdam(plain[0], plain[1], plain[2], plain[3], S),
    ]);
    const row = { n, referenceNsPerElem: r.ns / n, plainNsPerElem: q.ns / n, ratio: r.ns / q.ns, repeats: r.repeats };
    rows.push(row);
    log(`[${dtype}] n=${n} reference Adam ${row.referenceNsPerElem.toPrecision(3)} ns/el, plain JS loop ${row.plainNsPerElem.toPrecision(3)} ns/el: ${row.ratio.toFixed(2)}×`);
  }
  return rows;
}

module.exports = { runReferencePlain, plainAdam, adamScalars };
