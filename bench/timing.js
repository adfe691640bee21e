'use strict';
// Medians of repeated samples, each long enough (>= minSampleMs) that timer resolution does not
// matter. Functions compared with each other are sampled in alternation (A B C A B C ...), so a
// burst of load from another process on this shared machine slows all of them alike instead of
// skewing their ratio.

const now = () => process.hrtime.bigint();

function timeCalls(fn, count) {
  const t0 = now();
  for (let i = 0; i < count; i++) fn();
  return Number(now() - t0);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * ns per call, roughly. The first call runs untimed: it may do one-time work (an optimizer
 * creates its state and prepares its lists on its first step) that would otherwise make the
 * estimate, and so the inner count, far off. Then the batch doubles until `warmupMs` is spent
 * (JIT tiers, caches, page faults) and the last batch, at least a quarter of that, gives the
 * estimate.
 */
function warmUp(fn, warmupMs) {
  fn();
  const budget = warmupMs * 1e6;
  let batch = 1;
  let spent = 0;
  for (;;) {
    const t = timeCalls(fn, batch);
    spent += t;
    if (spent >= budget && t >= budget / 4) return t / batch;
    batch *= 2;
  }
}

/**
 * ns per call of each function: median over `repeats` rounds, one sample of each function per
 * round. Rounds are fewer when the slowest sample is long (one call of a reference kernel at 1e7
 * elements takes ~60 ms), keeping a case within a few seconds.
 */
function measureAll(fns, { minSampleMs = 20, repeats = 7, warmupMs = 40 } = {}) {
  const inner = fns.map((fn) => Math.max(1, Math.ceil((minSampleMs * 1e6) / warmUp(fn, warmupMs))));
  const slowest = Math.max(...fns.map((fn, i) => timeCalls(fn, inner[i]) / 1e6));
  const rounds = slowest > 150 ? Math.min(repeats, 3) : slowest > 60 ? Math.min(repeats, 5) : repeats;
  const samples = fns.map(() => []);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, i) => samples[i].push(timeCalls(fn, inner[i]) / inner[i]));
  }
  return samples.map((s, i) => ({ ns: median(s), min: Math.min(...s), max: Math.max(...s), inner: inner[i], repeats: rounds }));
}

const measure = (fn, opts) => measureAll([fn], opts)[0];

function gc() {
  if (typeof global.gc === 'function') global.gc();
}

module.exports = { measure, measureAll, median, gc };
