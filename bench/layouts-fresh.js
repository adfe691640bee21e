'use strict';
// `node --expose-gc bench/layouts-fresh.js`: Adam f32 `step()` on the LAYOUTS of bench/layouts.js,
// native, in a process that has stepped nothing else (as a training script with one optimizer).
// Prints [{ layout, nsPerStep }] as JSON. bench/optimizer-suite.js runs it as a child beside its
// in-process figures, which come after every optimizer class of bench/cases.js has stepped and
// after the kernel suites filled the heap: there the step reads each param and state object from
// a larger, older heap (2026-12-03: 1.17x and 1.32x one tensor for views and separate buffers,
// against 1.12x and 1.28x here).
const optim = require('../dist/index.js');
const { LAYOUTS } = require('./layouts.js');
const { measureAll, gc } = require('./timing.js');

optim.setBackend('native');
gc();
const opts = LAYOUTS.map((layout) => new optim.Adam(layout.make(), { lr: 1e-3 }));
const ms = measureAll(opts.map((opt) => () => opt.step()));
process.stdout.write(`${JSON.stringify(LAYOUTS.map((layout, i) => ({ layout: layout.name, nsPerStep: ms[i].ns })))}\n`);
