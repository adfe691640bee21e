/**
 * `npm run trajectories` (examples/trajectories.js): the three SVGs it writes, and that what they
 * draw are the optimizers' own iterates. The generator runs in this process on the sources
 * (vitest's build of src/), through the same `main` the command runs.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as optim from '../src/index.js';

const requireHere = createRequire(__filename);

type Point = [number, number];
interface Method { label: string; path: Point[]; markers?: boolean }
interface Problem {
  name: string;
  start: Point;
  minima: Point[];
  f: (x: number, y: number) => number;
  grad: (x: number, y: number) => Point;
  hessian: (x: number, y: number) => number[];
  gdRates: number[];
  momentum: { lr: number; momentum: number };
  adam: { lr: number };
}
interface Result { problem: Problem; file: string; methods: Method[]; toPixel: (q: Point) => Point }

const traj = requireHere('../examples/trajectories.js') as {
  PROBLEMS: Problem[];
  generate: (o: { optim: typeof optim; out: string }) => Promise<Result[]>;
  main: (argv: string[], lib?: typeof optim) => Promise<number>;
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Tags balance (every opening tag closed in order), no stray `<`, `>` or non-numbers. */
function checkWellFormed(svg: string): void {
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  const stack: string[] = [];
  const text = svg.replace(/<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z][a-zA-Z0-9:-]*="[^"<>]*")*)\s*(\/?)>/g, (_m, close, name, _attrs, self) => {
    if (close) expect(stack.pop(), `</${name}>`).toBe(name);
    else if (!self) stack.push(name);
    return '';
  });
  expect(stack).toEqual([]);
  expect(text).not.toMatch(/[<>]/);
}

/** The trajectory polylines of an SVG, by method label: their points in pixels. */
function polylines(svg: string): Map<string, Point[]> {
  const out = new Map<string, Point[]>();
  for (const m of svg.matchAll(/<polyline class="path" data-method="([^"]*)" points="([^"]*)"/g)) {
    out.set(m[1], m[2].split(' ').map((pair) => pair.split(',').map(Number) as Point));
  }
  return out;
}

function startMarker(svg: string): Point {
  const m = /<circle class="start" cx="([^"]+)" cy="([^"]+)"/.exec(svg);
  expect(m).not.toBeNull();
  return [Number(m![1]), Number(m![2])];
}

describe('npm run trajectories', () => {
  let dir: string;
  let results: Result[];
  const byName = (name: string) => results.find((r) => r.problem.name === name)!;
  const method = (r: Result, label: string) => {
    const m = r.methods.find((x) => x.label === label);
    expect(m, label).toBeDefined();
    return m!;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optim-trajectories-'));
    results = await traj.generate({ optim, out: dir });
  }, 30_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the command writes one SVG per function into --out', async () => {
    const out = path.join(dir, 'cli');
    const log = console.log;
    const lines: string[] = [];
    console.log = (...a: unknown[]) => { lines.push(a.join(' ')); };
    try {
      expect(await traj.main(['--out', out], optim)).toBe(0);
    } finally {
      console.log = log;
    }
    expect(fs.readdirSync(out).sort()).toEqual(['quadratic.svg', 'rosenbrock.svg', 'saddle.svg']);
    expect(lines).toHaveLength(3);
    // The same runs give the same pictures.
    for (const name of ['quadratic', 'rosenbrock', 'saddle']) {
      expect(fs.readFileSync(path.join(out, `${name}.svg`), 'utf8')).toBe(fs.readFileSync(path.join(dir, `${name}.svg`), 'utf8'));
    }
    const err = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(await traj.main(['--outt', out], optim)).toBe(2);
    } finally {
      process.stderr.write = err;
    }
  }, 30_000);

  it('each SVG is well formed, with a legend entry and a path from the start point for every method', () => {
    expect(results.map((r) => r.problem.name)).toEqual(['quadratic', 'rosenbrock', 'saddle']);
    for (const r of results) {
      const svg = fs.readFileSync(r.file, 'utf8');
      checkWellFormed(svg);
      const lines = polylines(svg);
      expect([...lines.keys()]).toEqual(r.methods.map((m) => esc(m.label)));
      for (const name of ['GD', 'momentum', 'Nesterov', 'Adam', 'Newton', 'BFGS']) {
        expect(r.methods.some((m) => m.label.startsWith(name)), `${r.problem.name}: ${name}`).toBe(true);
      }
      expect(r.methods.filter((m) => m.label.startsWith('GD')).length).toBe(3);
      const start = startMarker(svg);
      for (const m of r.methods) {
        expect(svg, `${r.problem.name}: legend of ${m.label}`).toContain(`>${esc(m.label)}</text>`);
        const pts = lines.get(esc(m.label))!;
        expect(pts[0], m.label).toEqual(start);
        // The polyline is the path, point for point.
        expect(pts.length, m.label).toBe(m.path.length);
        pts.forEach((q, k) => {
          const want = r.toPixel(m.path[k]);
          expect(Math.abs(q[0] - want[0]) <= 0.0051 && Math.abs(q[1] - want[1]) <= 0.0051, `${m.label} point ${k}`).toBe(true);
        });
        expect(m.path[0]).toEqual(r.problem.start);
      }
      expect(svg).toMatch(/<path class="contour" d="M/);
    }
  });

  it('Newton lands on the quadratic\'s minimum in one step: two points', () => {
    const r = byName('quadratic');
    const newton = method(r, 'Newton');
    expect(newton.path).toHaveLength(2);
    expect(Math.hypot(...newton.path[1])).toBeLessThan(1e-12);
    const pts = polylines(fs.readFileSync(r.file, 'utf8')).get('Newton')!;
    expect(pts).toHaveLength(2);
    const min = r.toPixel([0, 0]);
    expect(Math.abs(pts[1][0] - min[0]) + Math.abs(pts[1][1] - min[1])).toBeLessThan(0.011);
  });

  it('the paths are the optimizers\' iterates, recomputed by hand', () => {
    for (const r of results) {
      const { grad, start } = r.problem;
      const near = (a: Point, b: Point, tol: number, what: string) => {
        expect(Math.abs(a[0] - b[0]) <= tol * (1 + Math.abs(b[0])) && Math.abs(a[1] - b[1]) <= tol * (1 + Math.abs(b[1])), `${r.problem.name} ${what}: ${a} vs ${b}`).toBe(true);
      };
      // Gradient descent: p ← p − γ∇f(p), at every learning rate.
      for (const lr of r.problem.gdRates) {
        const gd = method(r, `GD, lr ${lr}`).path;
        let p: Point = [...start];
        for (let k = 1; k <= 3; k++) {
          const g = grad(...p);
          p = [p[0] - lr * g[0], p[1] - lr * g[1]];
          near(gd[k], p, 1e-14, `GD lr ${lr} iterate ${k}`);
        }
      }
      // Heavy ball (torch's form): b ← g on step 1, then μb + g; p ← p − γb. Nesterov: p ← p − γ(g + μb).
      const { lr, momentum: mu } = r.problem.momentum;
      for (const nesterov of [false, true]) {
        const got = method(r, `${nesterov ? 'Nesterov' : 'momentum'} ${mu}, lr ${lr}`).path;
        let p: Point = [...start];
        let b: Point = [0, 0];
        for (let k = 1; k <= 3; k++) {
          const g = grad(...p);
          b = k === 1 ? g : [mu * b[0] + g[0], mu * b[1] + g[1]];
          const d: Point = nesterov ? [g[0] + mu * b[0], g[1] + mu * b[1]] : b;
          p = [p[0] - lr * d[0], p[1] - lr * d[1]];
          near(got[k], p, 1e-14, `${nesterov ? 'Nesterov' : 'momentum'} iterate ${k}`);
        }
      }
      // Adam's first step: m̂ = g, v̂ = g², so p₁ = p₀ − γ g/(|g| + ε).
      const adam = method(r, `Adam, lr ${r.problem.adam.lr}`).path;
      const g0 = grad(...start);
      const a = r.problem.adam.lr;
      near(adam[1], [start[0] - a * g0[0] / (Math.abs(g0[0]) + 1e-8), start[1] - a * g0[1] / (Math.abs(g0[1]) + 1e-8)], 1e-12, 'Adam iterate 1');
      // Newton: p₁ = p₀ − H⁻¹g (2×2 by Cramer's rule).
      const [h11, h12, h21, h22] = r.problem.hessian(...start);
      const det = h11 * h22 - h12 * h21;
      const step: Point = [(h22 * g0[0] - h12 * g0[1]) / det, (h11 * g0[1] - h21 * g0[0]) / det];
      near(method(r, 'Newton').path[1], [start[0] - step[0], start[1] - step[1]], 1e-12, 'Newton iterate 1');
    }
    // The classic first Newton step on Rosenbrock from (−1.2, 1).
    const rb = method(byName('rosenbrock'), 'Newton').path;
    expect(rb[1][0]).toBeCloseTo(-1.1752808988764, 12);
    expect(rb[1][1]).toBeCloseTo(1.3806741573034, 12);
  });

  it('BFGS is minimize(method: \'bfgs\') iterate for iterate, to a minimum', () => {
    for (const r of results) {
      const bfgs = method(r, 'BFGS').path;
      const xs: Point[] = [];
      const res = optim.minimize(
        (xy) => ({ loss: r.problem.f(xy[0], xy[1]), grad: r.problem.grad(xy[0], xy[1]) }),
        Float64Array.from(r.problem.start),
        { method: 'bfgs', gtol: 1e-10, onIteration: (_i, xy) => { xs.push([xy[0], xy[1]]); } },
      );
      expect(res.success, r.problem.name).toBe(true);
      expect(bfgs).toEqual(xs);
      expect(bfgs.length).toBe(res.nit + 1);
      const last = bfgs[bfgs.length - 1];
      expect(r.problem.minima.some((m) => Math.hypot(last[0] - m[0], last[1] - m[1]) < 1e-6), `${r.problem.name}: ${last}`).toBe(true);
    }
  });

  it('at the saddle, Newton converges to the saddle and stays; the others reach a minimum', () => {
    const r = byName('saddle');
    for (const m of r.methods) {
      const [x, y] = m.path[m.path.length - 1];
      if (m.label === 'Newton') {
        expect(Math.hypot(x, y), m.label).toBeLessThan(1e-9);
        expect(m.path.length).toBeLessThanOrEqual(4);
      } else {
        expect(Math.abs(x) < 0.05 && Math.abs(Math.abs(y) - 1) < 0.05, `${m.label}: ${x}, ${y}`).toBe(true);
      }
    }
    expect(r.methods.some((m) => m.label.includes('LM'))).toBe(true);
    // The dashed line for where Newton stays is drawn on the saddle only.
    expect(fs.readFileSync(r.file, 'utf8')).toContain('stroke-dasharray');
    expect(fs.readFileSync(byName('quadratic').file, 'utf8')).not.toContain('stroke-dasharray');
  });
});
