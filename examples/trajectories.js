#!/usr/bin/env node
// `npm run trajectories`: where the optimizers go, in the plane. For three functions of two
// variables, one SVG each: the contour lines of f with the path of every method from one start
// point, and beside it the loss f − f* against the iteration (log scale).
//
//   quadratic   f = ½(x² + κy²), κ = 20: gradient descent zig-zags across the narrow valley
//               (and at lr 0.05 = 1/κ takes the steep direction out in one step), momentum and
//               Nesterov overshoot and spiral in, Newton lands on the minimum in one step.
//   rosenbrock  f = (1 − x)² + 100(y − x²)²: the curved valley, from (−1.2, 1).
//   saddle      f = ½x² + ¼y⁴ − ½y²: a saddle at the origin between minima at (0, ±1), started
//               just beside the saddle's stable manifold. Newton's step −H⁻¹g solves for the
//               nearest stationary point of the quadratic model, whatever its curvature: it
//               converges to the saddle (in two steps) and stays there, while every first-order
//               method escapes towards a minimum (slowly at first: y grows by (1 + lr) per step)
//               and so does Levenberg–Marquardt (Newton with 'adaptive' damping, which raises λ
//               until H + λI is positive definite and the loss falls).
//
// Every path is the library's own iterates (float64 params, `step(closure)` and `minimize`),
// built from dist/ (`npm run build:ts` first, as for the demo). Contour lines: d3-contour
// (marching squares on a grid of f). The SVGs go to results/trajectories/ (--out DIR).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { chart, esc, ticks, label, M } = require('./demo/chart.js');

const USAGE = `Usage: npm run trajectories -- [options]

  --out DIR   where the SVGs go (default results/trajectories)
  --help      this text
`;

const KAPPA = 20;

/**
 * The functions: f, its gradient and Hessian at (x, y), the minimum (f* and where), the start,
 * the window drawn (equal scales on both axes), the contour levels, the learning rates of plain
 * gradient descent and the settings of the other methods, and how many iterations each may take.
 */
const PROBLEMS = [
  {
    name: 'quadratic',
    title: `ill-conditioned quadratic f = ½(x² + ${KAPPA}y²)`,
    f: (x, y) => 0.5 * (x * x + KAPPA * y * y),
    grad: (x, y) => [x, KAPPA * y],
    hessian: () => [1, 0, 0, KAPPA],
    fStar: 0,
    minima: [[0, 0]],
    start: [-4, 1],
    window: { x: [-5, 3], y: [-1.6, 1.6] },
    levels: Array.from({ length: 12 }, (_, k) => 0.5 * (0.5 * (k + 1)) ** 2),
    gdRates: [0.02, 0.05, 0.095],
    momentum: { lr: 0.02, momentum: 0.9 },
    adam: { lr: 0.3 },
    maxIter: 150,
  },
  {
    name: 'rosenbrock',
    title: 'Rosenbrock f = (1 − x)² + 100(y − x²)²',
    f: (x, y) => (1 - x) ** 2 + 100 * (y - x * x) ** 2,
    grad: (x, y) => [-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)],
    hessian: (x, y) => [2 - 400 * y + 1200 * x * x, -400 * x, -400 * x, 200],
    fStar: 0,
    minima: [[1, 1]],
    start: [-1.2, 1],
    window: { x: [-2, 2], y: [-1, 2.4] },
    levels: Array.from({ length: 8 }, (_, k) => 0.5 * 4 ** k),
    gdRates: [2e-4, 1e-3, 1.5e-3],
    momentum: { lr: 2e-4, momentum: 0.9 },
    adam: { lr: 0.05 },
    maxIter: 2000,
  },
  {
    name: 'saddle',
    title: 'saddle f = ½x² + ¼y⁴ − ½y²',
    f: (x, y) => 0.5 * x * x + 0.25 * y ** 4 - 0.5 * y * y,
    grad: (x, y) => [x, y ** 3 - y],
    hessian: (x, y) => [1, 0, 0, 3 * y * y - 1],
    fStar: -0.25,
    minima: [[0, 1], [0, -1]],
    saddles: [[0, 0]],
    start: [-1.8, 0.05],
    window: { x: [-2, 2], y: [-1.6, 1.6] },
    levels: [0.01, 0.04, 0.1, 0.18, 0.25, 0.35, 0.5, 0.75, 1.1, 1.6, 2.2, 3].map((d) => d - 0.25),
    gdRates: [0.1, 0.3, 0.9],
    momentum: { lr: 0.1, momentum: 0.9 },
    adam: { lr: 0.1 },
    levenbergMarquardt: true,
    maxIter: 120,
  },
];

const COLOR = {
  gd: ['#1f77b4', '#17becf', '#9467bd'],
  momentum: '#ff7f0e',
  nesterov: '#d62728',
  adam: '#2ca02c',
  newton: '#000000',
  lm: '#8c564b',
  bfgs: '#e377c2',
};

/** Stop once max|g| is this small: the path has arrived (at a minimum or, for Newton, a saddle). */
const GTOL = 1e-10;
/** A path is cut where it leaves this many window-widths around the window: it has diverged. */
const FAR = 1e3;

/** The iterates of a first-order optimizer from `problem.start`, through `step(closure)`. */
function firstOrderPath(optim, problem, Ctor, options) {
  const p = optim.param(Float64Array.from(problem.start), 'xy');
  const opt = new Ctor([p], options);
  const closure = () => {
    p.grad.set(problem.grad(p.data[0], p.data[1]));
    return problem.f(p.data[0], p.data[1]);
  };
  return iterate(problem, p, () => opt.step(closure));
}

/** Newton's iterates (`damping` 'pinv': the step −H⁻¹g wherever H is invertible, or 'adaptive'). */
function newtonPath(optim, problem, damping) {
  const p = optim.param(Float64Array.from(problem.start), 'xy');
  const opt = new optim.Newton([p], { damping });
  const closure = () => {
    p.grad.set(problem.grad(p.data[0], p.data[1]));
    return { loss: problem.f(p.data[0], p.data[1]), hessian: Float64Array.from(problem.hessian(p.data[0], p.data[1])) };
  };
  return iterate(problem, p, () => opt.step(closure).moved);
}

/** Steps until the gradient vanishes, the step does not move, the path diverges or maxIter. */
function iterate(problem, p, step) {
  const path = [[p.data[0], p.data[1]]];
  const span = Math.max(problem.window.x[1] - problem.window.x[0], problem.window.y[1] - problem.window.y[0]);
  for (let k = 0; k < problem.maxIter; k++) {
    const g = problem.grad(p.data[0], p.data[1]);
    if (Math.max(Math.abs(g[0]), Math.abs(g[1])) <= GTOL) break;
    if (step() === false) break;
    const [x, y] = p.data;
    if (!(Math.abs(x) < FAR * span && Math.abs(y) < FAR * span)) break;
    path.push([x, y]);
  }
  return path;
}

/** BFGS's iterates, through `minimize` (scipy's BFGS; onIteration sees each accepted iterate). */
function bfgsPath(optim, problem) {
  const path = [];
  optim.minimize(
    (xy) => ({ loss: problem.f(xy[0], xy[1]), grad: problem.grad(xy[0], xy[1]) }),
    Float64Array.from(problem.start),
    { method: 'bfgs', gtol: GTOL, maxIter: problem.maxIter, onIteration: (_info, xy) => { path.push([xy[0], xy[1]]); } },
  );
  return path;
}

/** Every method's label, colour and path on `problem`. */
function runMethods(optim, problem) {
  const methods = problem.gdRates.map((lr, i) => ({
    label: `GD, lr ${lr}`,
    color: COLOR.gd[i],
    path: firstOrderPath(optim, problem, optim.SGD, { lr }),
  }));
  const { lr, momentum } = problem.momentum;
  methods.push(
    { label: `momentum ${momentum}, lr ${lr}`, color: COLOR.momentum, path: firstOrderPath(optim, problem, optim.SGD, { lr, momentum }) },
    { label: `Nesterov ${momentum}, lr ${lr}`, color: COLOR.nesterov, path: firstOrderPath(optim, problem, optim.SGD, { lr, momentum, nesterov: true }) },
    { label: `Adam, lr ${problem.adam.lr}`, color: COLOR.adam, path: firstOrderPath(optim, problem, optim.Adam, problem.adam) },
    { label: 'Newton', color: COLOR.newton, markers: true, path: newtonPath(optim, problem, 'pinv') },
  );
  if (problem.levenbergMarquardt) {
    methods.push({ label: 'Newton, LM damping', color: COLOR.lm, markers: true, path: newtonPath(optim, problem, 'adaptive') });
  }
  methods.push({ label: 'BFGS', color: COLOR.bfgs, markers: true, path: bfgsPath(optim, problem) });
  return methods;
}

/** The plane panel's geometry: the plot box (equal scales) and the map from (x, y) to pixels. */
function planeGeometry(problem, x0) {
  const plotW = 440;
  const [xa, xb] = problem.window.x;
  const [ya, yb] = problem.window.y;
  const scale = plotW / (xb - xa);
  const plotH = (yb - ya) * scale;
  const left = x0 + M.left;
  const top = M.top;
  return {
    width: plotW + M.left + M.right,
    height: plotH + M.top + M.bottom,
    box: { left, top, w: plotW, h: plotH },
    toPixel: ([x, y]) => [left + (x - xa) * scale, top + (yb - y) * scale],
  };
}

const px = ([x, y]) => `${x.toFixed(2)},${y.toFixed(2)}`;

/** The contour lines of f on a grid over the window (d3-contour's marching squares). */
function contourPaths(d3, problem, toPixel) {
  const n = 241;
  const [xa, xb] = problem.window.x;
  const [ya, yb] = problem.window.y;
  // One grid step past the window on every side, so the lines run to the frame (clipped there).
  const hx = (xb - xa) / (n - 3);
  const hy = (yb - ya) / (n - 3);
  const values = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) values[j * n + i] = problem.f(xa + (i - 1) * hx, ya + (j - 1) * hy);
  }
  // d3-contour puts sample i at coordinate i + 0.5.
  const world = ([ci, cj]) => toPixel([xa + (ci - 1.5) * hx, ya + (cj - 1.5) * hy]);
  return d3.contours().size([n, n]).thresholds(problem.levels)(values).map((geometry) => geometry.coordinates
    .flatMap((polygon) => polygon.map((ring) => `M${ring.map((c) => world(c).map((v) => v.toFixed(1)).join(',')).join('L')}Z`))
    .join(''));
}

/** The left panel: contour lines, the paths, the start and the stationary points. */
function planePanel(d3, problem, methods) {
  const { width, height } = planeGeometry(problem, 0);
  return { width, height, render: (x0) => drawPlane(d3, problem, methods, x0) };
}

function drawPlane(d3, problem, methods, x0) {
  const geo = planeGeometry(problem, x0);
  const { box, toPixel } = geo;
  const clip = `clip-${problem.name}`;
  const out = [];
  out.push(`<text x="${box.left + box.w / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(problem.title)}</text>`);
  out.push(`<clipPath id="${clip}"><rect x="${box.left}" y="${box.top}" width="${box.w}" height="${box.h}"/></clipPath>`);
  out.push(`<g clip-path="url(#${clip})">`);
  for (const d of contourPaths(d3, problem, toPixel)) {
    if (d) out.push(`<path class="contour" d="${d}" fill="none" stroke="#bbb" stroke-width="0.8"/>`);
  }
  for (const m of methods) {
    const pts = m.path.map((q) => px(toPixel(q))).join(' ');
    out.push(`<polyline class="path" data-method="${esc(m.label)}" points="${pts}" fill="none" stroke="${m.color}" stroke-width="1.5" stroke-linejoin="round"/>`);
    if (m.markers) {
      for (const q of m.path) {
        const [cx, cy] = toPixel(q);
        out.push(`<circle cx="${cx.toFixed(2)}" cy="${cy.toFixed(2)}" r="2.5" fill="${m.color}"/>`);
      }
    }
  }
  out.push('</g>');
  out.push(`<rect x="${box.left}" y="${box.top}" width="${box.w}" height="${box.h}" fill="none" stroke="#999"/>`);
  for (const [x, y] of problem.minima) {
    const [cx, cy] = toPixel([x, y]);
    out.push(`<path class="minimum" d="M${cx - 5},${cy - 5}L${cx + 5},${cy + 5}M${cx - 5},${cy + 5}L${cx + 5},${cy - 5}" stroke="#333" stroke-width="1.5"/>`);
  }
  for (const s of problem.saddles ?? []) {
    const [cx, cy] = toPixel(s);
    out.push(`<rect class="saddle" x="${cx - 4}" y="${cy - 4}" width="8" height="8" fill="none" stroke="#333" stroke-width="1.5"/>`);
  }
  const [sx, sy] = toPixel(problem.start);
  out.push(`<circle class="start" cx="${sx.toFixed(2)}" cy="${sy.toFixed(2)}" r="5" fill="white" stroke="#000" stroke-width="1.5"/>`);
  out.push(`<text x="${sx + 8}" y="${sy - 8}" font-size="11">start (${problem.start.join(', ')})</text>`);
  const [xa, xb] = problem.window.x;
  const [ya, yb] = problem.window.y;
  for (const t of ticks(xa, xb)) {
    out.push(`<text x="${toPixel([t, ya])[0].toFixed(1)}" y="${box.top + box.h + 16}" text-anchor="middle" font-size="11">${label(t, false)}</text>`);
  }
  for (const t of ticks(ya, yb)) {
    out.push(`<text x="${box.left - 6}" y="${(toPixel([xa, t])[1] + 4).toFixed(1)}" text-anchor="end" font-size="11">${label(t, false)}</text>`);
  }
  out.push(`<text x="${box.left + box.w / 2}" y="${geo.height - 8}" text-anchor="middle" font-size="12">x</text>`);
  out.push(`<text x="${x0 + 18}" y="${box.top + box.h / 2}" text-anchor="middle" font-size="12">y</text>`);
  return out.join('\n');
}

/** The loss f − f* per iteration, floored at 1e-16 so an exact arrival stays on the log scale. */
const LOSS_FLOOR = 1e-16;

/** One problem's SVG: the plane and the loss curves. */
function figure(d3, problem, methods) {
  const plane = planePanel(d3, problem, methods);
  const gap = ([x, y]) => Math.max(problem.f(x, y) - problem.fStar, LOSS_FLOOR);
  const series = [];
  for (const m of methods) {
    series.push({ name: m.label, color: m.color, markers: m.markers, points: m.path.map((q, k) => [k, gap(q)]) });
    // A path that stopped at a stationary point above f* (Newton at the saddle): where it stays.
    const last = m.path.length - 1;
    if (last < problem.maxIter && gap(m.path[last]) > 1e-8) {
      series.push({ name: '', legend: false, color: m.color, dashed: true, points: [[last, gap(m.path[last])], [problem.maxIter, gap(m.path[last])]] });
    }
  }
  const loss = {
    title: 'loss against iteration',
    xLabel: 'iteration',
    yLabel: 'f − f*  (log scale)',
    logY: true,
    width: 600,
    height: plane.height,
    legend: 'right',
    series,
  };
  const [xa, xb] = problem.window.x;
  const [ya, yb] = problem.window.y;
  const outside = methods
    .map((m) => [m.label, m.path.filter(([x, y]) => x < xa || x > xb || y < ya || y > yb).length])
    .filter(([, count]) => count > 0)
    .map(([name, count]) => `${name} (${count})`);
  const caption = `f* = ${problem.fStar}. A path stops where max|∇f| ≤ ${GTOL} or after ${problem.maxIter} iterations; `
    + `f − f* floored at ${LOSS_FLOOR}; dashed: a stationary point the method stays at.`
    + (outside.length ? ` Iterates outside the window: ${outside.join(', ')}.` : '');
  return chart([plane, loss], caption);
}

/**
 * Runs every method on every problem with the library `optim` and writes `<name>.svg` into
 * `out`. Returns the files and, per problem, each method's path and the map to pixels.
 */
async function generate({ optim, out }) {
  const d3 = await import('d3-contour');
  fs.mkdirSync(out, { recursive: true });
  const results = [];
  for (const problem of PROBLEMS) {
    const methods = runMethods(optim, problem);
    const file = path.join(out, `${problem.name}.svg`);
    fs.writeFileSync(file, figure(d3, problem, methods));
    results.push({ problem, file, methods, toPixel: planeGeometry(problem, 0).toPixel });
  }
  return results;
}

/** The command: parses `argv`, writes the SVGs, returns the exit code. */
async function main(argv, optim) {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { out: { type: 'string' }, help: { type: 'boolean', default: false } }, strict: true }));
  } catch (e) {
    process.stderr.write(`${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const out = path.resolve(values.out ?? path.join(__dirname, '..', 'results', 'trajectories'));
  const lib = optim ?? require('../dist/index.js');
  for (const r of await generate({ optim: lib, out })) {
    const steps = r.methods.map((m) => `${m.label} ${m.path.length - 1}`).join(' · ');
    console.log(`${path.relative(process.cwd(), r.file)}  (iterations: ${steps})`);
  }
  return 0;
}

module.exports = { PROBLEMS, generate, main };

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => {
    process.stderr.write(`${e.stack ?? e}\n`);
    process.exitCode = 1;
  });
}
