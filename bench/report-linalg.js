'use strict';
// The second-order sections of the report: matmul, Cholesky factor + solve, minimize().
const { fmt, pct, ratio, table } = require('./format.js');

const ADDON = { openblas: 'native openblas', builtin: 'native builtin' };

/**
 * Threads the addon gives OpenBLAS for an n×n·n×n matmul: all it may use once m·n·k ≥ 300³,
 * else one. This mirrors native/kernels/threads.cc, so each addon figure is set against the C
 * figure with the same thread count.
 */
const addonThreads = (n, max) => (n ** 3 >= 300 ** 3 ? max : 1);

const find = (rows, kind, dtype, n, impl) => rows?.find((r) => r.kind === kind && r.dtype === dtype && r.n === n && r.impl === impl);
const direct = (linalg, dtype, n, threads) => linalg.separate.direct[threads].rows?.find((r) => r.dtype === dtype && r.n === n);

function notes(linalg, peers) {
  return [
    ...peers.map((p) => `- ${p.error ? `${p.name}: not measured, ${p.error}.` : p.note}`),
    ...[1, 2].flatMap((t) => (linalg.separate.direct[t].skipped ? [`- C OpenBLAS, ${t} thread(s): not measured, ${linalg.separate.direct[t].skipped}.`] : [])),
    ...(linalg.separate.oneThread.skipped ? [`- Addon OpenBLAS with 1 thread: not measured, ${linalg.separate.oneThread.skipped}.`] : []),
  ];
}

function matmulSection(linalg, dtype) {
  const peers = linalg.peers.filter((p) => p.dtypes.includes(dtype));
  const base = linalg.rows.some((r) => r.impl === ADDON.openblas) ? ADDON.openblas : ADDON.builtin;
  const gflops = (r) => (r ? fmt(r.gflops) : '–');
  const peerCell = (p, n) => (p.error ? 'n/a' : gflops(find(linalg.rows, 'matmul', dtype, n, p.name)));
  const speed = linalg.matmulSizes.map((n) => [
    String(n),
    gflops(find(linalg.rows, 'matmul', dtype, n, ADDON.openblas)),
    gflops(find(linalg.rows, 'matmul', dtype, n, ADDON.builtin)),
    gflops(find(linalg.rows, 'matmul', dtype, n, 'reference')),
    ...peers.map((p) => peerCell(p, n)),
    gflops(find(linalg.separate.oneThread.rows, 'matmul', dtype, n, ADDON.openblas)),
    gflops(direct(linalg, dtype, n, 1)),
    gflops(direct(linalg, dtype, n, 2)),
  ]);
  const ratios = linalg.matmulSizes.map((n) => {
    const g = (impl) => find(linalg.rows, 'matmul', dtype, n, impl)?.gflops;
    const threads = addonThreads(n, linalg.maxThreads);
    const one = find(linalg.separate.oneThread.rows, 'matmul', dtype, n, ADDON.openblas)?.gflops;
    return [
      String(n),
      String(threads),
      pct(g(base) / direct(linalg, dtype, n, threads)?.gflops),
      pct(one / direct(linalg, dtype, n, 1)?.gflops),
      pct(g(ADDON.builtin) / g(ADDON.openblas)),
      ratio(g(base) / g('reference')),
      ...peers.map((p) => ratio(g(base) / g(p.name))),
    ];
  });
  return [
    `### ${dtype}: GFLOP/s (2n³ flops per product)`,
    '',
    table(['n', 'addon OpenBLAS', 'addon built-in', 'reference', ...peers.map((p) => p.name), 'addon OpenBLAS, 1 thread', 'C OpenBLAS, 1 thread', 'C OpenBLAS, 2 threads'], speed),
    '',
    `Ratios (addon = ${base === ADDON.openblas ? 'the OpenBLAS path' : 'the built-in kernels; this build has no OpenBLAS'}). Target: ≥ 90% of OpenBLAS direct at n ≥ 512${dtype === 'float32' ? ', ≥ 4× tfjs-wasm' : ', ≥ 100× ml-matrix'}.`,
    '',
    table(['n', 'addon threads', 'addon ÷ C, same threads', 'addon 1 thread ÷ C 1 thread', 'built-in ÷ OpenBLAS', 'addon ÷ reference', ...peers.map((p) => `addon ÷ ${p.name}`)], ratios),
  ].join('\n');
}

function choleskySection(linalg) {
  const peers = linalg.peers.filter((p) => p.hasCholesky);
  const ms = (impl, n) => find(linalg.rows, 'cholesky+solve', 'float64', n, impl)?.ms;
  const rows = linalg.choleskySizes.map((n) => {
    const ob = ms(ADDON.openblas, n);
    return [
      String(n),
      fmt(ob), fmt(ms(ADDON.builtin, n)), fmt(ms('reference', n)),
      ...peers.map((p) => (p.error ? 'n/a' : fmt(ms(p.name, n)))),
      ratio(ms(ADDON.builtin, n) / ob), ratio(ms('reference', n) / ob),
      ...peers.map((p) => ratio(ms(p.name, n) / ob)),
    ];
  });
  return [
    '## Cholesky factor + solve, float64: ms (`potrf`, then `choSolve` with one right-hand side)',
    '',
    `Target: addon ≤ 12 ms at n = 1000. The addon's OpenBLAS path gives LAPACK potrf all its threads from n = 500 (native/kernels/threads.cc); the triangular solves run on one. Reference up to n = ${linalg.limits.reference.cholesky}; ml-matrix (\`new CholeskyDecomposition(A).solve(b)\`) up to ${linalg.limits.mlMatrix.cholesky}. tfjs has no Cholesky.`,
    '',
    table(['n', 'addon OpenBLAS', 'addon built-in', 'reference', ...peers.map((p) => p.name),
      'built-in ÷ OpenBLAS', 'reference ÷ OpenBLAS', ...peers.map((p) => `${p.name} ÷ OpenBLAS`)], rows),
  ].join('\n');
}

function linalgSections(linalg) {
  return [
    '## Matrix multiply: square n×n · n×n, row-major',
    '',
    `addon: the native backend's gemm, as \`matmul()\` calls it minus its argument checks; the OpenBLAS path and the built-in kernels are switched per call (setBlas). OpenBLAS gets the thread count native/kernels/threads.cc chooses: 1 below m·n·k = 300³, else all it may use (here ${linalg.maxThreads}). "addon OpenBLAS, 1 thread" is the same call in a separate process under OPENBLAS_NUM_THREADS=1. Reference up to n = ${linalg.limits.reference.matmul}, ml-matrix up to ${linalg.limits.mlMatrix.matmul}. The addon, reference and peer columns are sampled in alternation. The last three columns need processes of their own (OpenBLAS reads OPENBLAS_NUM_THREADS at load): the C columns are bench/blas-direct.c, compiled at bench time, with the same timing protocol; these three run one after another in ${linalg.separate.rounds} rounds after the rest, and each figure is the median over the rounds. They are not sampled in alternation with the first columns, so load from other processes on this shared 2-core machine can move the addon ÷ C ratios, the 2-thread ones most (load averages above).`,
    '',
    ...notes(linalg, linalg.peers),
    '',
    matmulSection(linalg, 'float32'),
    '',
    matmulSection(linalg, 'float64'),
    '',
    choleskySection(linalg),
  ].join('\n');
}

function minimizeSection(m) {
  const native = (method) => m.rows.find((r) => r.method === method && r.backend === 'native');
  const rows = m.rows.map((r) => [
    r.method, r.backend, fmt(r.ms), String(r.nit), String(r.nfev), r.gradNorm.toExponential(2), r.fun.toFixed(6), r.success ? 'yes' : `no: ${r.message}`,
    r.backend === 'native' || !native(r.method) ? '–' : ratio(r.ms / native(r.method).ms),
  ]);
  return [
    `## minimize() on a ${m.n}-dimensional problem: Newton and L-BFGS`,
    '',
    `f(x) = ½xᵀAx − bᵀx + Σ softplus(xᵢ) from x = 0, A dense SPD with condition number ${m.cond ? m.cond.toPrecision(2) : '–'}: the Hessian A + diag(σ'(x)) is dense and changes with x. Newton (damping 'adaptive', the default) gets the Hessian from every call of fun; L-BFGS (strong Wolfe, history 10) gets loss and gradient. gtol ${m.gtol.toExponential(0)} on max|g|. Wall time of the whole minimize() call, median of ${m.rounds} runs in alternation after a short warm-up run; nit/nfev from the last run. The products go through optim.matmul on the selected backend, the Newton step's Cholesky too. The backends round differently, so L-BFGS's path (and counts) can differ slightly between them.`,
    '',
    table(['method', 'backend', 'ms', 'nit', 'nfev', 'max|g|', 'f(x)', 'success', 'reference ÷ native'], rows),
  ].join('\n');
}

module.exports = { linalgSections, minimizeSection };
