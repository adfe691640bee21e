'use strict';
// `node bench/fixed-cost.js`: the fixed cost of Adam.step() on one float32 element, native, in a
// process that has stepped nothing else (as a training script with one optimizer). Prints
// { ns } as JSON. bench/optimizer-suite.js runs it as a child beside its in-process figure, which
// comes after every optimizer class of bench/cases.js has stepped: the optimizer base class's
// property loads and calls have then seen some twenty receiver classes (megamorphic in V8).
// Warm-up 500 ms: with 40 the step path was often still running unoptimized code (0.5-2 µs).
const optim = require('../dist/index.js');
const { measure } = require('./timing.js');

optim.setBackend('native');
const p = optim.param(new Float32Array([0.5]));
p.grad[0] = 0.1;
const opt = new optim.Adam([p], { lr: 1e-3 });
process.stdout.write(`${JSON.stringify({ ns: measure(() => opt.step(), { warmupMs: 500 }).ns })}\n`);
