'use strict';
// Renders one run's results as Markdown.
const { fmt, pct, sizeName, table } = require('./format.js');
const { linalgSections, minimizeSection } = require('./report-linalg.js');

function envSection(env, durationS) {
  const b = env.backendInfo;
  return [
    `# optim benchmark, ${env.date}`,
    '',
    table(
      ['', ''],
      [
        ['CPU', `${env.cpu} (${env.cores} logical cores, ${env.memoryGiB} GiB)`],
        ['Caches (per cpu0)', Object.entries(env.caches ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || '–'],
        ['Node', `${env.node} (V8 ${env.v8}), ${env.platform}`],
        ['backendInfo()', b ? `${b.backend}, simd ${b.simd}, fma ${b.fma}, blas ${b.blas} (threads ${b.threads}), step threads ${b.stepThreads ?? 1} (steps of ≥ 131072 elements are split), v${b.version}${b.fallbackReason ? `, fallback: ${b.fallbackReason}` : ''}` : '–'],
        ['Load average (1, 5, 15 min) at start; at end', `${env.loadAverage.join(', ')}; ${(env.loadAverageEnd ?? []).join(', ')}`],
        ['Run time', `${durationS.toFixed(0)} s`],
      ],
    ),
  ].join('\n');
}

function bandwidthSection(suites) {
  const byN = new Map();
  for (const s of suites) for (const b of s.bandwidth) byN.set(b.n, { ...byN.get(b.n), [s.dtype]: b });
  if (byN.size === 0) return '## Bandwidth limit\n\nNative addon unavailable: no bandwidth probe.';
  const rows = [...byN].map(([n, r]) => [
    sizeName(n),
    fmt(r.float32?.gbps), fmt(r.float32 && r.float32.nsPerCall / n),
    fmt(r.float64?.gbps), fmt(r.float64 && r.float64.nsPerCall / n),
  ]);
  return [
    '## In-place bandwidth limit: in-place axpy via the sgd kernel (p += a·g)',
    '',
    'The probe is the native sgd kernel without flags (scalars negLr = a, sign = 1, the rest 0), which computes p = fma(a, g, p), through a prepared handle like every kernel here. Bytes per element: g read, p read, p written = 3 × 4 (f32) or 3 × 8 (f64); the store hits a line just loaded, so no write-allocate traffic is added. Below ~1e5 elements the arrays sit in cache. The probe is sampled in alternation with every kernel at the same n; this table gives the median over the kernels\' rounds, and each kernel\'s fraction uses the probe figure measured alongside it.',
    '',
    table(['n', 'f32 GB/s', 'f32 ns/el', 'f64 GB/s', 'f64 ns/el'], rows),
  ].join('\n');
}

function kernelSection(suite) {
  const bw = new Map(suite.bandwidth.map((b) => [b.n, b.gbps]));
  const rows = suite.kernels.map((k) => {
    const nat = k.native?.nsPerElem;
    const ref = k.reference?.nsPerElem;
    const limit = k.probeGBs ?? bw.get(k.n);
    return [
      k.name, sizeName(k.n), fmt(nat), fmt(ref), nat ? `${fmt(ref / nat)}×` : '–', String(k.bytesPerElem),
      fmt(nat && k.bytesPerElem / nat), pct(nat && limit && k.bytesPerElem / nat / limit), pct(limit && k.bytesPerElem / ref / limit),
    ];
  });
  return [
    `### ${suite.dtype}`,
    '',
    table(['kernel', 'n', 'native ns/el', 'reference ns/el', 'ref / native', 'bytes/el', 'native GB/s', 'native % of probe', 'reference % of probe'], rows),
  ].join('\n');
}

function referencePlainSection(suites) {
  const rows = suites.flatMap((s) =>
    (s.referencePlain ?? []).map((r) => [s.dtype, sizeName(r.n), fmt(r.referenceNsPerElem), fmt(r.plainNsPerElem), `${r.ratio.toFixed(2)}×`]),
  );
  if (rows.length === 0) return '';
  return [
    '## The reference backend against a plain JavaScript loop: Adam, ns per element',
    '',
    "`referenceBackend.step(ADAM_KERNEL, prepared, scalars, 0)` (torch's defaults at step 10, no weight decay, no amsgrad) against the same arithmetic written as one loop in bench/reference-plain.js (checked to give the same bits), sampled in alternation at each n, in each dtype's kernel-suite process after every other kernel has run. Target: reference ÷ plain ≤ 1.5× from 1e4 elements.",
    '',
    table(['dtype', 'n', 'reference ns/el', 'plain JS ns/el', 'reference ÷ plain'], rows),
  ].join('\n');
}

function optimizerSection(opt) {
  const backends = Object.keys(opt.steps);
  const layouts = opt.steps[backends[0]].map((r) => r.layout);
  const rows = layouts.map((layout) => [
    layout,
    ...backends.flatMap((b) => {
      const r = opt.steps[b].find((x) => x.layout === layout);
      return [fmt(r.nsPerStep / 1e3), fmt(r.nsPerElem)];
    }),
  ]);
  const ratioRows = opt.ratios[backends[0]].map((r, i) => [
    `${r.layout} ÷ 1 tensor × 1e6`,
    ...backends.map((b) => `${opt.ratios[b][i].ratio.toFixed(2)}×`),
  ]);
  return [
    '## Many small tensors against one large: Adam f32 through `new Adam(params, { lr }).step()`',
    '',
    table(['layout', ...backends.flatMap((b) => [`${b} µs/step`, `${b} ns/el`])], rows),
    '',
    'Params come from `param()` (each owns its data and grad) or are views of two large buffers; the optimizer keeps its state (m, v) in one arena per group and dtype in both cases. The footprint, 4 arrays × 4 MB = 16 MB, fits in this CPU\'s L3, so back-to-back steps run largely from cache. Target (issue 13): 1000 × 1000 ≤ 1.15× one 1e6 tensor.',
    '',
    table(['ratio', ...backends], ratioRows),
    '',
    ...freshRows(opt.fresh),
    ...(opt.handles.length
      ? [
          'The native kernel alone, `backend.step(ADAM_KERNEL, prepared, ...)` on the same 1e6 elements: a prepared handle checks each distinct ArrayBuffer at every step.',
          '',
          table(
            ['layout', 'buffers checked', 'µs/step', '÷ 1 tensor × 1e6'],
            opt.handles.map((h) => [h.layout, String(h.buffers), fmt(h.nsPerStep / 1e3), `${(h.nsPerStep / opt.handles[opt.handles.length - 1].nsPerStep).toFixed(2)}×`]),
          ),
        ]
      : []),
  ].join('\n');
}

/** The native layouts again in a child process that stepped nothing else (bench/layouts-fresh.js). */
function freshRows(fresh) {
  if (!fresh) return [];
  if (fresh.skipped) return [`In a process that stepped nothing else: not measured (${fresh.skipped}).`, ''];
  return [
    `Native, in a process that stepped nothing else (bench/layouts-fresh.js, as a training script with one optimizer; ${fresh.rounds} processes, medians). The rows above ran after every optimizer class and the kernel suites, where the per-param work of a step (reading each param and its state object) costs more.`,
    '',
    table(
      ['layout', 'µs/step', '÷ 1 tensor × 1e6', 'per process'],
      fresh.rows.map((r) => [r.layout, fmt(r.nsPerStep / 1e3), `${r.ratio.toFixed(2)}×`, r.perRound.map((x) => `${x.toFixed(2)}×`).join(', ')]),
    ),
    '',
  ];
}

function fixedSection(fixed) {
  return [
    '## Fixed cost of one step call (1 element; target (issue 13) for Adam.step() native ≤ 300 ns)',
    '',
    table(['call', 'ns/call'], fixed.map((f) => [f.what, fmt(f.ns)])),
  ].join('\n');
}

function nonFiniteSection(rows) {
  if (!rows || rows.length === 0) return '';
  return [
    "## The non-finite gradient policy: Adam f32 `Adam.step()`, native, nonFinite 'error' (default) vs 'ignore'",
    '',
    "'error' and 'skip' scan every gradient inside the step's native call before the update writes anything (the update must not start unless it can finish); 'ignore' does not scan. The scan reads g only, with a vectorized exponent test; for gradients that fit in cache the update then reads g from cache.",
    '',
    table(
      ['n', "'error' ns/el", "'ignore' ns/el", "'error' ÷ 'ignore'", 'scan alone ns/el'],
      rows.map((r) => [String(r.n), fmt(r.errorNsPerElem), fmt(r.ignoreNsPerElem), `${r.ratio.toFixed(3)}×`, fmt(r.scanNsPerElem)]),
    ),
  ].join('\n');
}

function bfloat16Section(rows) {
  if (!rows || rows.length === 0) return '';
  return [
    "## bfloat16 state: Adam f32 `Adam.step()`, native, stateDtype 'bfloat16' vs float32 state",
    '',
    'bfloat16 state halves the state memory (m and v: 8 instead of 16 bytes per element; 20 instead of 28 bytes of traffic per element in all). The kernel\'s float32 loop reads the state widened and stores it rounded, in the same pass (docs/bfloat16.md): the conversions cost vector instructions where the step runs from cache, and the saved traffic pays where it streams from memory.',
    '',
    table(
      ['step threads', 'n', 'float32 state ns/el', 'bfloat16 state ns/el', 'bfloat16 ÷ float32'],
      rows.map((r) => [String(r.threads), String(r.n), fmt(r.float32NsPerElem), fmt(r.bfloat16NsPerElem), `${r.ratio.toFixed(2)}×`]),
    ),
  ].join('\n');
}

function torchSection(peer) {
  if (!peer) return '';
  const head = "## Against PyTorch's Adam: float32 `Adam.step()` (ours: native, nonFinite 'error') vs torch's for-loop (foreach=False) and fused (fused=True) CPU Adam, and the bandwidth limit";
  const lines = [head, ''];
  if (peer.error) lines.push(`PyTorch not measured: ${peer.error}.`, '');
  else lines.push(`torch ${peer.torch} in a python3 subprocess of the same run (bench/torch_adam.py), timed as ours are: medians of 7 samples of ≥ 20 ms. Ours and torch's run in alternation, ${peer.rounds ?? 1} round(s) (the bandwidth this shared host leaves moves between minutes); each cell is the median of its rounds, and the last column gives ours ÷ torch fused per round. The limit: an in-place axpy through our sgd kernel (3 float32 streams) at the same n and thread count, scaled to Adam's 7 streams.`, '');
  const f = (x) => (x === null || x === undefined ? '–' : fmt(x));
  const ratio = (a, b) => (a === null || b === null || b === undefined ? '–' : `${(a / b).toFixed(2)}×`);
  lines.push(
    table(
      ['threads', 'n', 'ours ns/el', 'torch for-loop ns/el', 'torch fused ns/el', 'ours ÷ torch fused', 'limit ns/el', 'ours ÷ limit', 'ours ÷ torch fused, per round'],
      peer.rows.map((r) => [String(r.threads), String(r.n), fmt(r.oursNsPerElem), f(r.torchForloopNsPerElem), f(r.torchFusedNsPerElem), ratio(r.oursNsPerElem, r.torchFusedNsPerElem), fmt(r.boundNsPerElem), ratio(r.oursNsPerElem, r.boundNsPerElem),
        (r.oursRounds ?? []).map((o, k) => ratio(o, r.torchFusedRounds?.[k] ?? null)).join(', ') || '–']),
    ),
  );
  return lines.join('\n');
}

function wholeTensorSection(rows) {
  if (!rows || rows.length === 0) return '';
  return [
    '## Optimizers whose step is not one kernel call: float32, ns per element, native vs reference',
    '',
    "Adafactor, Muon and SparseAdam register no step kernel (their steps reduce over rows and columns, multiply matrices, or touch only some rows), so the kernel tables above cannot hold them. Stepped through the class on one float32 param; SparseAdam's ns are per element of the rows its sparse gradient touches. The reference runs stop at the sizes where one step takes seconds.",
    '',
    table(
      ['optimizer', 'elements', 'native ns/el', 'reference ns/el', 'reference ÷ native'],
      rows.map((r) => [r.name, String(r.n), r.native === undefined ? '–' : fmt(r.native), r.reference === undefined ? '–' : fmt(r.reference), r.native !== undefined && r.reference !== undefined ? `${(r.reference / r.native).toFixed(1)}×` : '–']),
    ),
  ].join('\n');
}

function render(results) {
  return [
    envSection(results.env, results.durationS),
    '',
    'Medians of repeated samples (7 rounds; 3–5 where one sample exceeds 60 ms), each sample ≥ 20 ms after a warm-up. What a ratio compares is sampled in alternation within one run. Native kernels run through a prepared handle, as the optimizers call them; so does the reference.',
    '',
    bandwidthSection(results.kernels),
    '',
    '## Step kernels: ns per element, and the fraction of the probe\'s bandwidth (in-place axpy via the sgd kernel) at the same n and dtype',
    '',
    'bytes/el: arrays read + arrays written per element (Adam: p, g, m, v read; p, m, v written = 7 × 4 bytes in f32). At small n the kernels work from cache, as does the probe, but from a larger footprint (all the kernel\'s arrays against the probe\'s two), so those fractions compare cache levels loosely; at 1e7 both stream from memory.',
    '',
    ...results.kernels.flatMap((s) => [kernelSection(s), '']),
    referencePlainSection(results.kernels),
    '',
    optimizerSection(results.optimizer),
    '',
    fixedSection(results.optimizer.fixed),
    '',
    nonFiniteSection(results.optimizer.nonFinite),
    '',
    bfloat16Section(results.optimizer.bfloat16),
    '',
    torchSection(results.torchPeer),
    '',
    wholeTensorSection(results.wholeTensor),
    '',
    linalgSections(results.linalg),
    '',
    minimizeSection(results.minimize),
    '',
  ].join('\n');
}

module.exports = { render };
