'use strict';
// The step kernels the benchmark runs: flags, scalars (torch defaults at step 10, folded as the
// optimizers fold them) and the bytes each element must move.
const { ADAM, NADAM, RADAM, SGD } = require('../dist/backend/types.js');

const T = 10;

function adamScalars(decoupled) {
  const lr = 1e-3, b1 = 0.9, b2 = 0.999, wd = 1e-2;
  const s = new Float64Array(ADAM.N_SCALARS);
  s[ADAM.S_WD] = decoupled ? 0 : wd;
  s[ADAM.S_BETA1] = b1;
  s[ADAM.S_ONE_MINUS_BETA1] = 1 - b1;
  s[ADAM.S_BETA2] = b2;
  s[ADAM.S_ONE_MINUS_BETA2] = 1 - b2;
  s[ADAM.S_NEG_STEP_SIZE] = -lr / (1 - b1 ** T);
  s[ADAM.S_BC2_SQRT] = Math.sqrt(1 - b2 ** T);
  s[ADAM.S_EPS] = 1e-8;
  s[ADAM.S_SIGN] = 1;
  s[ADAM.S_DECAY_MUL] = decoupled ? 1 - lr * wd : 1;
  return s;
}

function nadamScalars() {
  const lr = 2e-3, b1 = 0.9, b2 = 0.999;
  const mu = (t) => b1 * (1 - 0.5 * 0.96 ** (t * 0.004));
  let prod = 1;
  for (let t = 1; t <= T; t++) prod *= mu(t);
  const s = new Float64Array(NADAM.N_SCALARS);
  s[NADAM.S_ONE_MINUS_BETA1] = 1 - b1;
  s[NADAM.S_BETA2] = b2;
  s[NADAM.S_ONE_MINUS_BETA2] = 1 - b2;
  s[NADAM.S_BC2] = 1 - b2 ** T;
  s[NADAM.S_EPS] = 1e-8;
  s[NADAM.S_COEF_GRAD] = (-lr * (1 - mu(T))) / (1 - prod);
  s[NADAM.S_COEF_AVG] = (-lr * mu(T + 1)) / (1 - prod * mu(T + 1));
  s[NADAM.S_SIGN] = 1;
  s[NADAM.S_DECAY_MUL] = 1;
  return s;
}

function radamScalars() {
  const lr = 1e-3, b1 = 0.9, b2 = 0.999;
  const rhoInf = 2 / (1 - b2) - 1;
  const rhoT = rhoInf - (2 * T * b2 ** T) / (1 - b2 ** T);
  const s = new Float64Array(RADAM.N_SCALARS);
  s[RADAM.S_ONE_MINUS_BETA1] = 1 - b1;
  s[RADAM.S_BETA2] = b2;
  s[RADAM.S_ONE_MINUS_BETA2] = 1 - b2;
  s[RADAM.S_BC1] = 1 - b1 ** T;
  s[RADAM.S_LR] = lr;
  s[RADAM.S_BC2_SQRT] = Math.sqrt(1 - b2 ** T);
  s[RADAM.S_EPS] = 1e-8;
  s[RADAM.S_RECT] = Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
  s[RADAM.S_SIGN] = 1;
  s[RADAM.S_DECAY_MUL] = 1;
  return s;
}

/**
 * `streams`: arrays read plus arrays written per element. A buffer that is written is also read
 * first, so its cache lines are already loaded when the store comes: no extra write-allocate
 * traffic (the same accounting as axpy's 3 streams).
 */
const CASES = [
  { name: 'sgd', kernel: 'sgdStep', flags: 0, stride: 2, streams: 3,
    scalars: Float64Array.of(0, 0, 1, -1e-3, 1) },
  { name: 'sgd momentum', kernel: 'sgdStep', flags: SGD.F_MOMENTUM, stride: 3, streams: 5,
    scalars: Float64Array.of(0, 0.9, 1, -1e-3, 1) },
  { name: 'adagrad', kernel: 'adagradStep', flags: 0, stride: 3, streams: 5,
    scalars: Float64Array.of(0, -1e-2, 1e-10, 1) },
  { name: 'rmsprop', kernel: 'rmspropStep', flags: 0, stride: 3, streams: 5,
    scalars: Float64Array.of(0, 0.99, 0.01, 1e-8, 0, -1e-2, 1) },
  { name: 'adam', kernel: 'adamStep', flags: 0, stride: 4, streams: 7, scalars: adamScalars(false) },
  { name: 'adamw', kernel: 'adamStep', flags: ADAM.F_DECOUPLED, stride: 4, streams: 7, scalars: adamScalars(true) },
  { name: 'nadam', kernel: 'nadamStep', flags: 0, stride: 4, streams: 7, scalars: nadamScalars() },
  { name: 'radam', kernel: 'radamStep', flags: RADAM.F_RECTIFIED, stride: 4, streams: 7, scalars: radamScalars() },
];

module.exports = { CASES };
