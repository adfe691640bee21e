'use strict';
// The step kernels the benchmark runs. Each case is an optimizer configuration (torch defaults
// unless given) stepped STEPS times through its class; the case is that class's last kernel call:
// kernel, flags and scalars exactly as the optimizer folds them. Every registered kernel must
// have a case (a new algorithm fails here until it gets one).
const optim = require('../dist/index.js');
const { registeredKernels } = require('../dist/backend/kernel.js');
const { traceSteps } = require('../dist/backend/trace.js');
const { CHECK_FINITE, CHECK_ONLY } = require('../dist/backend/types.js');

const STEPS = 10;

/** [case name, optimizer class, options, which of the calls to keep (default: any)]. */
const CONFIGS = [
  ['sgd', optim.SGD, { lr: 1e-3 }],
  ['sgd momentum', optim.SGD, { lr: 1e-3, momentum: 0.9 }],
  ['sgd lookahead', optim.SGD, { lr: 1e-3, momentum: 0.9, lookahead: true }],
  ['adagrad', optim.Adagrad, {}],
  ['rmsprop', optim.RMSprop, {}],
  ['adam', optim.Adam, {}],
  ['adamw', optim.AdamW, {}],
  ['nadam', optim.NAdam, {}],
  ['radam', optim.RAdam, {}],
  ['adamax', optim.Adamax, {}],
  ['adadelta', optim.Adadelta, {}],
  ['rprop', optim.Rprop, {}],
  ['asgd averaging', optim.ASGD, { t0: 0 }],
  ['lion', optim.Lion, {}],
  ['adabelief', optim.AdaBelief, {}],
  ['yogi', optim.Yogi, {}],
  // LAMB runs two passes per param: the case is the first (moments and direction), not the apply pass.
  ['lamb', optim.LAMB, {}, (c) => (c.flags & c.kernel.flag.direction) !== 0],
  ['lars', optim.LARS, { lr: 0.1 }],
  ['schedule-free adamw', optim.ScheduleFreeAdamW, {}],
  ['schedule-free sgd', optim.ScheduleFreeSGD, {}],
];

/** The kernel calls `fn` makes through the backend in use (src/backend/trace.ts). */
const captureSteps = (fn) => traceSteps(optim.getBackend(), fn);

/**
 * The last kernel call (the last one `pick` accepts) of `steps` steps of `Class` with `options`
 * on one element (reference backend): `{ kernel, flags, scalars }`, flags without the
 * gradient-check bits.
 */
function lastCall(Class, options, steps = STEPS, pick = () => true) {
  const previous = optim.getBackend().name;
  optim.setBackend('reference');
  try {
    const p = optim.param(Float64Array.of(0.5));
    const opt = new Class([p], options);
    const closure = () => {
      p.grad[0] = 0.1;
      return 0;
    };
    const calls = captureSteps(() => {
      for (let t = 0; t < steps; t++) opt.step(closure);
    });
    const { kernel, flags, scalars } = calls.filter(pick).at(-1);
    return { kernel, flags: flags & ~(CHECK_FINITE | CHECK_ONLY), scalars };
  } finally {
    optim.setBackend(previous);
  }
}

/**
 * `streams`: arrays read plus arrays written per element: g read; p and each state buffer read
 * and written. A buffer that is written is also read first, so its cache lines are already
 * loaded when the store comes: no extra write-allocate traffic (the same accounting as the
 * bandwidth probe's 3 streams).
 */
const CASES = CONFIGS.map(([name, Class, options, pick]) => {
  const { kernel, flags, scalars } = lastCall(Class, options, STEPS, pick);
  const stride = kernel.stride(flags);
  return { name, kernel, flags, stride, streams: 1 + 2 * (stride - 1), scalars };
});

const missing = registeredKernels().filter((k) => !CASES.some((c) => c.kernel === k));
if (missing.length) throw new Error(`bench/cases.js: no case runs ${missing.map((k) => k.name).join(', ')}; add a configuration`);

/**
 * The bandwidth probe: the sgd kernel without flags, negLr = a, sign = 1, the other slots 0,
 * computes p = fma(a, g, p), an in-place axpy (p, g read; p written).
 */
function axpyProbe(a) {
  const kernel = registeredKernels().find((k) => k.name === 'sgd');
  const scalars = new Float64Array(kernel.nScalars);
  scalars[kernel.slot.negLr] = a;
  scalars[kernel.slot.sign] = 1;
  return { kernel, flags: 0, stride: kernel.stride(0), streams: 3, scalars };
}

module.exports = { CASES, STEPS, lastCall, axpyProbe };
