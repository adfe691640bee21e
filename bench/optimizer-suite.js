'use strict';
// Steps through the public optimizer class: many small tensors against one large one, and the
// fixed cost of a step call.
const optim = require('../dist/index.js');
const { loadNative } = require('../dist/backend/native.js');
const { ADAM, CHECK_FINITE, CHECK_ONLY } = require('../dist/backend/types.js');
const { measure, measureAll, gc } = require('./timing.js');

function fillGrad(g) {
  for (let i = 0; i < g.length; i++) g[i] = (i & 1 ? 1e-2 : -1e-2) * (0.5 + (i % 97) / 97);
}

/** Each param owns its data and grad (param() allocates the grad). */
function separate(count, n) {
  return Array.from({ length: count }, () => {
    const p = optim.param(new Float32Array(n).fill(0.01));
    fillGrad(p.grad);
    return p;
  });
}

/** Data and grads as views of two large buffers: the layout a parameter arena would give. */
function views(count, n) {
  const data = new Float32Array(count * n).fill(0.01);
  const grad = new Float32Array(count * n);
  fillGrad(grad);
  return Array.from({ length: count }, (_, i) => {
    const p = optim.param(data.subarray(i * n, (i + 1) * n));
    p.grad = grad.subarray(i * n, (i + 1) * n);
    return p;
  });
}

const LAYOUTS = [
  { name: '1000 tensors × 1000 (separate buffers)', make: () => separate(1000, 1000), elements: 1e6 },
  { name: '1000 tensors × 1000 (data, grad as views of one buffer)', make: () => views(1000, 1000), elements: 1e6 },
  { name: '1 tensor × 1e6', make: () => separate(1, 1e6), elements: 1e6 },
];

function stepTimes(backendName, log) {
  optim.setBackend(backendName);
  gc();
  const opts = LAYOUTS.map((layout) => new optim.Adam(layout.make(), { lr: 1e-3 }));
  const ms = measureAll(opts.map((opt) => () => opt.step()));
  return LAYOUTS.map((layout, i) => {
    const m = ms[i];
    log(`[optimizer] ${backendName} Adam f32 ${layout.name}: ${(m.ns / 1e3).toFixed(1)} µs/step`);
    return { layout: layout.name, nsPerStep: m.ns, nsPerElem: m.ns / layout.elements, inner: m.inner, repeats: m.repeats };
  });
}

/**
 * The native kernel alone through a prepared handle, Adam f32 over 1e6 elements in three layouts:
 * what the class adds is the rest, and the first two rows differ only in how many distinct
 * ArrayBuffers the handle checks per step.
 */
function handleTimes(log) {
  const native = loadNative();
  if (!native.backend) return [];
  const scalars = new Float64Array(ADAM.N_SCALARS).fill(0.5);
  scalars[ADAM.S_NEG_STEP_SIZE] = -1e-3;
  scalars[ADAM.S_BC2_SQRT] = 1;
  scalars[ADAM.S_EPS] = 1e-8;
  scalars[ADAM.S_SIGN] = 1;
  scalars[ADAM.S_WD] = 0;
  const layouts = [
    { name: '1000 tensors × 1000, 4000 separate buffers', list: () => Array.from({ length: 4000 }, () => new Float32Array(1000).fill(1e-3)) },
    {
      name: '1000 tensors × 1000, views of 4 buffers',
      list: () => {
        const bufs = [0, 1, 2, 3].map(() => new Float32Array(1e6).fill(1e-3));
        return Array.from({ length: 4000 }, (_, i) => bufs[i % 4].subarray((i >> 2) * 1000, ((i >> 2) + 1) * 1000));
      },
    },
    { name: '1 tensor × 1e6', list: () => [0, 1, 2, 3].map(() => new Float32Array(1e6).fill(1e-3)) },
  ];
  gc();
  const handles = layouts.map((layout) => native.backend.prepare(layout.list(), 4));
  const ms = measureAll(handles.map((handle) => () => native.backend.adamStep(handle, scalars, 0)));
  return layouts.map((layout, i) => {
    const m = ms[i];
    log(`[handle] ${layout.name}: ${(m.ns / 1e3).toFixed(1)} µs/step, ${handles[i].buffers} buffers checked`);
    return { layout: layout.name, buffers: handles[i].buffers, nsPerStep: m.ns, inner: m.inner, repeats: m.repeats };
  });
}

function fixedCosts(log) {
  const out = [];
  const record = (what, m) => {
    out.push({ what, ns: m.ns, inner: m.inner, repeats: m.repeats });
    log(`[fixed] ${what}: ${m.ns.toFixed(0)} ns`);
  };
  const one = (backendName) => {
    optim.setBackend(backendName);
    const p = optim.param(new Float32Array([0.5]));
    p.grad[0] = 0.1;
    const opt = new optim.Adam([p], { lr: 1e-3 });
    return measure(() => opt.step());
  };
  const native = loadNative();
  if (native.backend) {
    record('Adam.step(), 1 tensor × 1 element, native', one('native'));
    const list = [new Float32Array([0.5]), new Float32Array([0.1]), new Float32Array(1), new Float32Array(1)];
    const scalars = new Float64Array(ADAM.N_SCALARS).fill(0.5);
    const handle = native.backend.prepare(list, 4);
    record('backend.adamStep(prepared), 1 element, native (the wrapper the class calls)', measure(() => native.backend.adamStep(handle, scalars, 0)));
    record('addon.adamStep(prepared), 1 element, raw addon', measure(() => native.addon.adamStep(handle, scalars, 0)));
    record('addon.adamStep(list of 4 arrays), 1 element, raw addon', measure(() => native.addon.adamStep(list, scalars, 0)));
  }
  record('Adam.step(), 1 tensor × 1 element, reference', one('reference'));
  return out;
}

/**
 * What the non-finite gradient policy costs: Adam f32 through Adam.step() with the default
 * nonFinite 'error' (every grad scanned inside the step call before the update writes) against
 * 'ignore' (no scan), and the scan alone (CHECK_ONLY), sampled in alternation.
 */
function nonFiniteTimes(log) {
  const out = [];
  const native = loadNative();
  if (!native.backend) return out;
  optim.setBackend('native');
  for (const n of [1e3, 1e5, 1e6, 1e7]) {
    gc();
    const make = (nonFinite) => {
      const p = optim.param(new Float32Array(n).fill(0.01));
      fillGrad(p.grad);
      return new optim.Adam([p], { lr: 1e-3, nonFinite });
    };
    const checked = make('error');
    const unchecked = make('ignore');
    const g = new Float32Array(n);
    fillGrad(g);
    const scanList = native.backend.prepare([new Float32Array(n), g, new Float32Array(n), new Float32Array(n)], 4);
    const scalars = new Float64Array(ADAM.N_SCALARS).fill(0.5);
    const [a, b, c] = measureAll([() => checked.step(), () => unchecked.step(), () => native.backend.adamStep(scanList, scalars, CHECK_FINITE | CHECK_ONLY)]);
    const row = { n, errorNsPerElem: a.ns / n, ignoreNsPerElem: b.ns / n, scanNsPerElem: c.ns / n, ratio: a.ns / b.ns };
    log(`[nonFinite] Adam f32 n=${n}: 'error' ${row.errorNsPerElem.toFixed(3)} ns/el, 'ignore' ${row.ignoreNsPerElem.toFixed(3)} ns/el (${row.ratio.toFixed(3)}×), scan alone ${row.scanNsPerElem.toFixed(3)} ns/el`);
    out.push(row);
  }
  optim.setBackend('auto');
  return out;
}

function runOptimizerSuite(log) {
  const backends = optim.nativeAvailable() ? ['native', 'reference'] : ['reference'];
  const steps = {};
  for (const b of backends) steps[b] = stepTimes(b, log);
  const ratios = {};
  for (const b of backends) {
    const single = steps[b].find((r) => r.layout.startsWith('1 tensor')).nsPerStep;
    ratios[b] = steps[b].filter((r) => !r.layout.startsWith('1 tensor')).map((r) => ({ layout: r.layout, ratio: r.nsPerStep / single }));
  }
  const handles = handleTimes(log);
  const fixed = fixedCosts(log);
  const nonFinite = nonFiniteTimes(log);
  optim.setBackend('auto');
  return { steps, ratios, handles, fixed, nonFinite };
}

module.exports = { runOptimizerSuite };
