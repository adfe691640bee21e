'use strict';
// Steps through the public optimizer class: many small tensors against one large one, and the
// fixed cost of a step call.
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const optim = require('../dist/index.js');
const { loadNative } = require('../dist/backend/native.js');
const { CHECK_FINITE, CHECK_ONLY } = require('../dist/backend/types.js');
const { lastCall } = require('./cases.js');
const { measure, measureAll, median, gc } = require('./timing.js');
const { fillGrad, LAYOUTS, isOneTensor } = require('./layouts.js');

/** The kernel call `new Adam(params, { lr: 1e-3 })` makes at its 10th step: kernel, flags, scalars. */
const ADAM = lastCall(optim.Adam, { lr: 1e-3 });
const ADAM_STRIDE = ADAM.kernel.stride(ADAM.flags);

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
  const S = ADAM_STRIDE;
  const arrays = (count, n) => Array.from({ length: count }, () => new Float32Array(n).fill(1e-3));
  const layouts = [
    { name: `1000 tensors × 1000, ${1000 * S} separate buffers`, list: () => arrays(1000 * S, 1000) },
    {
      name: `1000 tensors × 1000, views of ${S} buffers`,
      list: () => {
        const bufs = arrays(S, 1e6);
        return Array.from({ length: 1000 * S }, (_, i) => bufs[i % S].subarray(Math.floor(i / S) * 1000, (Math.floor(i / S) + 1) * 1000));
      },
    },
    { name: '1 tensor × 1e6', list: () => arrays(S, 1e6) },
  ];
  gc();
  const handles = layouts.map((layout) => native.backend.prepare(layout.list(), S));
  const ms = measureAll(handles.map((handle) => () => native.backend.step(ADAM.kernel, handle, ADAM.scalars, ADAM.flags)));
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
    return measure(() => opt.step(), { warmupMs: 500 });
  };
  const native = loadNative();
  if (native.backend) {
    const child = spawnSync(process.execPath, [path.join(__dirname, 'fixed-cost.js')], { encoding: 'utf8' });
    if (child.status === 0) {
      const { ns } = JSON.parse(child.stdout);
      out.push({ what: 'Adam.step(), 1 tensor × 1 element, native, in a process that stepped nothing else', ns, inner: 0, repeats: 7 });
      log(`[fixed] fresh process: ${ns.toFixed(0)} ns`);
    }
    record('Adam.step(), 1 tensor × 1 element, native, after every optimizer class has stepped in this process', one('native'));
    const { kernel, scalars, flags } = ADAM;
    const list = Array.from({ length: ADAM_STRIDE }, (_, j) => new Float32Array([j === 0 ? 0.5 : j === 1 ? 0.1 : 0]));
    const handle = native.backend.prepare(list, ADAM_STRIDE);
    const raw = native.addon[kernel.exportName];
    record(`backend.step(${kernel.name}, prepared), 1 element, native (the wrapper the class calls)`, measure(() => native.backend.step(kernel, handle, scalars, flags)));
    record(`addon.${kernel.exportName}(prepared), 1 element, raw addon`, measure(() => raw(handle, scalars, flags)));
    record(`addon.${kernel.exportName}(list of ${ADAM_STRIDE} arrays), 1 element, raw addon`, measure(() => raw(list, scalars, flags)));
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
    const scanList = native.backend.prepare(Array.from({ length: ADAM_STRIDE }, (_, j) => (j === 1 ? g : new Float32Array(n))), ADAM_STRIDE);
    const scan = () => native.backend.step(ADAM.kernel, scanList, ADAM.scalars, ADAM.flags | CHECK_FINITE | CHECK_ONLY);
    const [a, b, c] = measureAll([() => checked.step(), () => unchecked.step(), scan]);
    const row = { n, errorNsPerElem: a.ns / n, ignoreNsPerElem: b.ns / n, scanNsPerElem: c.ns / n, ratio: a.ns / b.ns };
    log(`[nonFinite] Adam f32 n=${n}: 'error' ${row.errorNsPerElem.toFixed(3)} ns/el, 'ignore' ${row.ignoreNsPerElem.toFixed(3)} ns/el (${row.ratio.toFixed(3)}×), scan alone ${row.scanNsPerElem.toFixed(3)} ns/el`);
    out.push(row);
  }
  optim.setBackend('auto');
  return out;
}

/**
 * bfloat16 state (`stateDtype: 'bfloat16'`) against float32 state: Adam f32 through Adam.step(),
 * native, with one step thread and with all of them, sampled in alternation. The state moves 8
 * bytes per element instead of 16 (20 bytes per element in all instead of 28); the kernel's loop
 * widens it as it reads and rounds it as it stores.
 */
function bfloat16Times(log) {
  const out = [];
  const native = loadNative();
  if (!native.backend) return out;
  optim.setBackend('native');
  const all = native.addon.info().stepThreads;
  for (const threads of [...new Set([1, all])]) {
    optim.setNumThreads(threads);
    for (const n of [1e3, 1e5, 1e6, 1e7]) {
      gc();
      const make = (stateDtype) => {
        const p = optim.param(new Float32Array(n).fill(0.01));
        fillGrad(p.grad);
        const opt = new optim.Adam([p], { lr: 1e-3, stateDtype });
        opt.step();
        return opt;
      };
      const full = make('param');
      const half = make('bfloat16');
      const [a, b] = measureAll([() => full.step(), () => half.step()]);
      const row = { threads, n, float32NsPerElem: a.ns / n, bfloat16NsPerElem: b.ns / n, ratio: b.ns / a.ns };
      log(`[bfloat16] Adam f32 n=${n}, ${threads} thread(s): float32 state ${row.float32NsPerElem.toFixed(3)} ns/el, bfloat16 state ${row.bfloat16NsPerElem.toFixed(3)} ns/el (${row.ratio.toFixed(2)}×)`);
      out.push(row);
    }
  }
  optim.setNumThreads(all);
  optim.setBackend('auto');
  return out;
}

/**
 * The same layouts in a child process that steps nothing else (bench/layouts-fresh.js), ROUNDS
 * times: per layout the median µs/step, and its ratio to one 1e6 tensor per round.
 */
function freshStepTimes(log) {
  if (!optim.nativeAvailable()) return undefined;
  const ROUNDS = 3;
  const runs = [];
  for (let r = 0; r < ROUNDS; r++) {
    const child = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'layouts-fresh.js')], { encoding: 'utf8' });
    if (child.status !== 0) return { skipped: `the child process failed (status ${child.status}, signal ${child.signal})` };
    runs.push(JSON.parse(child.stdout));
  }
  const single = (run) => run.find((x) => isOneTensor(x.layout)).nsPerStep;
  return {
    rounds: ROUNDS,
    rows: runs[0].map(({ layout }, i) => {
      const row = {
        layout,
        nsPerStep: median(runs.map((run) => run[i].nsPerStep)),
        ratio: median(runs.map((run) => run[i].nsPerStep / single(run))),
        perRound: runs.map((run) => run[i].nsPerStep / single(run)),
      };
      log(`[optimizer] native, fresh process: ${layout}: ${(row.nsPerStep / 1e3).toFixed(1)} µs/step (${row.ratio.toFixed(2)}× one 1e6 tensor)`);
      return row;
    }),
  };
}

function runOptimizerSuite(log) {
  const backends = optim.nativeAvailable() ? ['native', 'reference'] : ['reference'];
  const steps = {};
  for (const b of backends) steps[b] = stepTimes(b, log);
  const ratios = {};
  for (const b of backends) {
    const single = steps[b].find((r) => isOneTensor(r.layout)).nsPerStep;
    ratios[b] = steps[b].filter((r) => !isOneTensor(r.layout)).map((r) => ({ layout: r.layout, ratio: r.nsPerStep / single }));
  }
  const fresh = freshStepTimes(log);
  const handles = handleTimes(log);
  const fixed = fixedCosts(log);
  const nonFinite = nonFiniteTimes(log);
  const bfloat16 = bfloat16Times(log);
  optim.setBackend('auto');
  return { steps, ratios, fresh, handles, fixed, nonFinite, bfloat16 };
}

module.exports = { runOptimizerSuite };
