'use strict';
// The optimizers whose step is not one elementwise kernel call (they register no kernel, so the
// kernel rows cannot hold them): Adafactor (row and column factors of a matrix), Muon
// (Newton–Schulz on matmul) and SparseAdam (the rows a sparse gradient touches). Each is stepped
// through its class on float32 params, native against reference, sampled in alternation; ns per
// element of the param (SparseAdam: per element of the rows touched).
const optim = require('../dist/index.js');
const { measureAll, gc } = require('./timing.js');

/** The square matrix of about n elements: [rows, cols]. */
const square = (n) => {
  const r = Math.round(Math.sqrt(n));
  return [r, Math.round(n / r)];
};

function fill(a, seed) {
  for (let i = 0; i < a.length; i++) a[i] = 0.01 * Math.sin(seed + i * 0.37);
}

/** `make()` gives a fresh `{ step, elements }` on the backend in use. */
const CASES = [
  {
    name: 'Adafactor, a square matrix (factored)',
    sizes: [1e3, 1e5, 1e6, 1e7],
    referenceMax: 1e6,
    make(n) {
      const shape = square(n);
      const p = optim.param(new Float32Array(shape[0] * shape[1]), 'w', { shape });
      fill(p.data, 1);
      fill(p.grad, 2);
      const opt = new optim.Adafactor([p], { lr: 1e-2 });
      return { step: () => opt.step(), elements: p.data.length };
    },
  },
  {
    name: 'Muon, a square matrix (5 Newton–Schulz iterations, float32)',
    sizes: [1e3, 1e5, 1e6],
    referenceMax: 1e5,
    make(n) {
      const shape = square(n);
      const p = optim.param(new Float32Array(shape[0] * shape[1]), 'w', { shape });
      fill(p.data, 1);
      fill(p.grad, 2);
      const opt = new optim.Muon([p], { lr: 1e-3 });
      return { step: () => opt.step(), elements: p.data.length };
    },
  },
  {
    name: 'SparseAdam, rows of 64 touched in a table of 10× as many (per element touched)',
    sizes: [1e3, 1e5, 1e6, 1e7],
    referenceMax: 1e7,
    make(n) {
      const cols = 64;
      const touched = Math.max(1, Math.round(n / cols));
      const rows = touched * 10;
      const p = optim.param(new Float32Array(rows * cols), 'table', { shape: [rows, cols] });
      const indices = Uint32Array.from({ length: touched }, (_, k) => (k * 7919) % rows);
      const values = new Float32Array(touched * cols);
      fill(values, 3);
      p.sparseGrad = { indices, values };
      const opt = new optim.SparseAdam([p], { lr: 1e-3 });
      return { step: () => opt.step(), elements: touched * cols };
    },
  },
];

function runWholeTensor(log) {
  const backends = optim.nativeAvailable() ? ['native', 'reference'] : ['reference'];
  const rows = [];
  for (const c of CASES) {
    for (const n of c.sizes) {
      gc();
      const made = backends
        .filter((b) => b === 'native' || n <= c.referenceMax)
        .map((b) => {
          optim.setBackend(b);
          const m = c.make(n);
          m.step();
          // Each sample steps on the backend it was made for.
          return { backend: b, step: () => (optim.setBackend(b), m.step()), elements: m.elements };
        });
      const ms = measureAll(made.map((m) => m.step));
      const row = { name: c.name, n: made[0].elements };
      made.forEach((m, i) => (row[m.backend] = ms[i].ns / m.elements));
      log(`[whole-tensor] ${c.name} n=${row.n}: ${made.map((m) => `${m.backend} ${row[m.backend].toFixed(3)} ns/el`).join(', ')}`);
      rows.push(row);
    }
  }
  optim.setBackend('auto');
  return rows;
}

module.exports = { runWholeTensor };
