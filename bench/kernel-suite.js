'use strict';
// One dtype's kernel measurements: every step kernel at every size, native and reference, each
// sampled in alternation with the bandwidth probe (an in-place axpy via the sgd kernel) on arrays
// of the same length. run.js starts it in a child process per dtype, so the reference kernels are
// JIT-compiled for one array type, as in a program that trains in one dtype.
const { loadNative } = require('../dist/backend/native.js');
const { referenceBackend } = require('../dist/backend/reference.js');
const { CASES, axpyProbe } = require('./cases.js');
const { measureAll, median, gc } = require('./timing.js');
const { runReferencePlain } = require('./reference-plain.js');

/**
 * Deterministic values valid for every kernel's state (states positive, grads never 0), so no
 * buffer decays into subnormals however many steps the timing loop takes.
 */
function fill(arrays) {
  const [p, g, ...states] = arrays;
  for (let i = 0; i < p.length; i++) {
    const h = (i * 7919) % 1000;
    p[i] = 0.1 * (h / 1000 - 0.5);
    g[i] = (i & 1 ? 1e-2 : -1e-2) * (0.5 + ((i * 104729) % 997) / 997);
    states.forEach((s, j) => (s[i] = 1e-4 * (1 + (i % (13 + 4 * j)) / (13 + 4 * j))));
  }
}

function runSuite(dtype, sizes, log) {
  const C = dtype === 'float32' ? Float32Array : Float64Array;
  const native = loadNative();
  const backends = [native.backend, referenceBackend].filter(Boolean);
  // p = a·g + p: g and p read, p written, 3 streams (p's lines are loaded before they are stored).
  const probe = axpyProbe(1e-7);
  const probeBytes = probe.streams * C.BYTES_PER_ELEMENT;
  const width = Math.max(...CASES.map((c) => c.stride));
  const out = { dtype, bandwidth: [], kernels: [] };
  for (const n of sizes) {
    gc();
    const pool = Array.from({ length: width }, () => new C(n));
    const probeList = native.backend?.prepare([new C(n).fill(1), new C(n).fill(1)], probe.stride);
    const probeStep = probeList ? () => native.backend.step(probe.kernel, probeList, probe.scalars, probe.flags) : undefined;
    const probeNs = [];
    for (const c of CASES) {
      fill(pool);
      const row = { name: c.name, kernel: c.kernel.exportName, flags: c.flags, n, bytesPerElem: c.streams * C.BYTES_PER_ELEMENT };
      const fns = backends.map((backend) => {
        const handle = backend.prepare(pool.slice(0, c.stride), c.stride);
        return () => backend.step(c.kernel, handle, c.scalars, c.flags);
      });
      const ms = measureAll(probeStep ? [...fns, probeStep] : fns);
      backends.forEach((b, i) => {
        const m = ms[i];
        row[b.name] = { nsPerCall: m.ns, nsPerElem: m.ns / n, min: m.min, max: m.max, inner: m.inner, repeats: m.repeats };
      });
      if (probeStep) {
        const m = ms[ms.length - 1];
        row.probeGBs = (probeBytes * n) / m.ns;
        probeNs.push(m.ns);
      }
      out.kernels.push(row);
      log(`[${dtype}] n=${n} ${c.name}: ${backends.map((b) => `${b.name} ${row[b.name].nsPerElem.toPrecision(3)} ns/el`).join(', ')}`);
    }
    if (probeStep) {
      const ns = median(probeNs);
      out.bandwidth.push({ n, bytesPerElem: probeBytes, nsPerCall: ns, gbps: (probeBytes * n) / ns, samples: probeNs.length });
      log(`[${dtype}] n=${n} in-place axpy (sgd kernel) ${((probeBytes * n) / ns).toFixed(1)} GB/s`);
    }
  }
  gc();
  out.referencePlain = runReferencePlain(dtype, sizes.filter((n) => n >= 1e4), log);
  return out;
}

if (require.main === module) {
  const dtype = process.argv[2];
  const sizes = process.argv[3].split(',').map(Number);
  const result = runSuite(dtype, sizes, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(JSON.stringify(result));
}

module.exports = { runSuite };
