import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from '../src/checkpoint.js';
import type { Checkpoint } from '../src/checkpoint.js';
import type { FloatArray } from '../src/backend/types.js';
import { CheckpointError, OptimRangeError, OptimStateError, OptimTypeError } from '../src/errors.js';
import { Newton } from '../src/optim/newton.js';
import { LBFGS } from '../src/optim/lbfgs.js';
import { Adam, AdamW, RMSprop, SGD, param } from '../src/optim/index.js';
import type { GroupBase, Optimizer, Param, StateDict } from '../src/optim/index.js';
import { ReduceLROnPlateau, StepLR } from '../src/schedule/index.js';
import { VERSION } from '../src/version.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { compiledDist } from './helpers/dist.js';
import { bytesOf, detach, snapshot } from './helpers/snapshot.js';

let dir = '';
let fileNo = 0;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'optim-checkpoint-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fresh path in a fresh directory of the test's temp dir. */
async function freshDir(): Promise<string> {
  return mkdtemp(path.join(dir, `d${fileNo++}-`));
}

async function freshPath(name = 'ckpt.safetensors'): Promise<string> {
  return path.join(await freshDir(), name);
}

const show = (x: unknown): string => (Object.is(x, -0) ? '-0' : String(x));

/** Element-wise Object.is (NaN, -0 and every bit of a finite value) and the same dtype. */
function expectSameArray(got: unknown, want: FloatArray): void {
  expect(got).toBeInstanceOf(want.constructor);
  const g = got as FloatArray;
  expect(g.length).toBe(want.length);
  // Buffer.equals, not toEqual: vitest compares a large typed array element by element, slowly.
  if (!Buffer.from(bytesOf(g)).equals(Buffer.from(bytesOf(want)))) expect.fail('the bytes differ');
  for (let i = 0; i < want.length; i++) if (!Object.is(g[i], want[i])) expect.fail(`element ${i}: ${show(g[i])} is not ${show(want[i])}`);
}

/** Deep equality where numbers compare with Object.is and typed arrays by dtype and bytes. */
function expectSameValue(got: unknown, want: unknown, where = 'value'): void {
  if (ArrayBuffer.isView(want)) {
    expectSameArray(got, want as FloatArray);
  } else if (typeof want === 'number') {
    if (!Object.is(got, want)) expect.fail(`${where}: ${show(got)} is not ${show(want)}`);
  } else if (want !== null && typeof want === 'object') {
    expect(got !== null && typeof got === 'object', where).toBe(true);
    expect(Array.isArray(got), where).toBe(Array.isArray(want));
    expect(Object.keys(got as object).sort(), where).toEqual(Object.keys(want).sort());
    for (const [k, v] of Object.entries(want)) expectSameValue((got as Record<string, unknown>)[k], v, `${where}.${k}`);
  } else {
    expect(got, where).toBe(want);
  }
}

/** The header of a file: length prefix, JSON, and where the data starts. */
function readHeader(bytes: Buffer): { n: number; json: Record<string, any>; text: string; dataStart: number } {
  const n = Number(bytes.readBigUInt64LE(0));
  const text = bytes.subarray(8, 8 + n).toString('utf8');
  return { n, text, json: JSON.parse(text), dataStart: 8 + n };
}

const NEEDLE = Buffer.from('"optim.checksum":"sha256:');

/**
 * A safetensors file made here, independently of the library: `header` as JSON (or a raw
 * string), padded to 8 with spaces; with `checksum`, an `optim.checksum` is added to the
 * metadata and filled in as the format says (sha256 of the file with the hex as zeros).
 */
function craft(header: string | Buffer | Record<string, unknown>, data: Uint8Array = new Uint8Array(0), checksum = false): Buffer {
  let text: string | Buffer;
  if (typeof header === 'string' || Buffer.isBuffer(header)) {
    text = header;
  } else {
    const h = structuredClone(header);
    if (checksum) h.__metadata__ = { ...(h.__metadata__ as object), 'optim.checksum': `sha256:${'0'.repeat(64)}` };
    text = JSON.stringify(h);
  }
  const json = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  const n = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + n + data.length, 0x20);
  out.writeBigUInt64LE(BigInt(n), 0);
  json.copy(out, 8);
  Buffer.from(data).copy(out, 8 + n);
  if (checksum) {
    const at = out.indexOf(NEEDLE) + NEEDLE.length;
    out.write(createHash('sha256').update(out).digest('hex'), at, 'latin1');
  }
  return out;
}

function le64(values: number[]): Uint8Array {
  return new Uint8Array(Float64Array.from(values).buffer);
}

/** Two parameters of both dtypes with a deterministic, non-quadratic gradient. */
function model(): Param[] {
  return [
    param(Float64Array.from({ length: 9 }, (_, i) => Math.sin(i + 1) * 2), 'layer.0.weight'),
    param(Float32Array.from([1, -2, 3, 0.5, -0.25]), 'bias'),
  ];
}

function fillGrads(ps: Param[]): void {
  for (const p of ps) {
    for (let i = 0; i < p.data.length; i++) {
      const w = p.data[i];
      p.grad[i] = 0.3 * (i + 1) * (w - 0.1 * i) + 0.1 * Math.sin(3 * w);
    }
  }
}

type AnyOptimizer = Optimizer<GroupBase>;

interface Trainer {
  opt: AnyOptimizer;
  step(): void;
  /** What goes into the checkpoint's `optimizer`. */
  state(): object;
  /** An object whose loadStateDict takes `state()`. */
  target(): { loadStateDict(sd: never): unknown };
}

/** Optimizers whose resume is checked; the last carries a scheduler in the same checkpoint. */
const TRAINERS: Array<[string, (ps: Param[]) => Trainer]> = [
  ['Adam', (ps) => plain(new Adam(ps, { lr: 0.01 }) as unknown as AnyOptimizer, ps)],
  ['SGD momentum + nesterov', (ps) => plain(new SGD(ps, { lr: 0.01, momentum: 0.9, nesterov: true }) as unknown as AnyOptimizer, ps)],
  ['RMSprop centered + momentum', (ps) => plain(new RMSprop(ps, { lr: 0.01, centered: true, momentum: 0.5 }) as unknown as AnyOptimizer, ps)],
  [
    'AdamW amsgrad + StepLR',
    (ps) => {
      const opt = new AdamW(ps, { lr: 0.02, amsgrad: true, weightDecay: 0.1 });
      const sched = new StepLR(opt, { stepSize: 7, gamma: 0.5 });
      return {
        opt: opt as unknown as AnyOptimizer,
        step() {
          fillGrads(ps);
          opt.step();
          sched.step();
        },
        state: () => ({ optimizer: opt.stateDict(), scheduler: sched.stateDict() }),
        target: () => ({
          loadStateDict(sd: { optimizer: StateDict; scheduler: ReturnType<StepLR['stateDict']> }) {
            opt.loadStateDict(sd.optimizer);
            sched.loadStateDict(sd.scheduler);
          },
        }),
      };
    },
  ],
];

function plain(opt: AnyOptimizer, ps: Param[]): Trainer {
  return {
    opt,
    step() {
      fillGrads(ps);
      opt.step();
    },
    state: () => opt.stateDict(),
    target: () => opt,
  };
}

function tensorsOf(ps: Param[]): Record<string, FloatArray> {
  return Object.fromEntries(ps.map((p) => [p.name, p.data]));
}

describe.each(backendRows)('resume from a checkpoint, %s backend', (_name, backend) => {
  useBackend(backend);

  it.each(TRAINERS)('%s: 30 steps, save, load into a fresh model and optimizer, 20 more = 50 uninterrupted, bit for bit', async (_n, make) => {
    const a = model();
    const runA = make(a);
    for (let t = 0; t < 50; t++) runA.step();

    const b = model();
    const runB = make(b);
    for (let t = 0; t < 30; t++) runB.step();
    const file = await freshPath();
    await saveCheckpoint(file, { tensors: tensorsOf(b), optimizer: runB.state(), metadata: { step: '30' } });

    // In place, through `into`.
    const c = model().map((p) => param(p.data.fill(0), p.name));
    const runC = make(c);
    const loaded = await loadCheckpoint(file, { into: { tensors: tensorsOf(c), optimizer: runC.target() } });
    expect(loaded.metadata).toEqual({ step: '30' });
    for (let t = 0; t < 20; t++) runC.step();

    // By hand, from what loadCheckpoint returns.
    const { tensors, optimizer } = await loadCheckpoint<never>(file);
    const d = model().map((p) => param(tensors[p.name].slice(), p.name));
    const runD = make(d);
    runD.target().loadStateDict(optimizer as never);
    for (let t = 0; t < 20; t++) runD.step();

    for (const resumed of [c, d]) {
      resumed.forEach((p, i) => expectSameArray(p.data, a[i].data));
    }
    expect(snapshot(c, runC.opt)).toEqual(snapshot(a, runA.opt));
    expect(snapshot(d, runD.opt)).toEqual(snapshot(a, runA.opt));
    expectSameValue(runC.state(), runA.state());
    expectSameValue(runD.state(), runA.state());
  });
});

describe.each(backendRows)('L-BFGS resumed from a checkpoint, %s backend', (_name, backend) => {
  useBackend(backend);

  /** f(x) = Σ c_i (x_i − i)⁴ + (x_i − i)²: not quadratic, so the curvature pairs matter. */
  const closureFor = (x: Param) => () => {
    let loss = 0;
    for (let i = 0; i < x.data.length; i++) {
      const r = x.data[i] - i;
      const c = 1 + (i % 5) * 7;
      loss += c * r ** 4 + r * r;
      x.grad[i] = 4 * c * r ** 3 + 2 * r;
    }
    return loss;
  };
  const start = () => param(Float64Array.from({ length: 12 }, (_, i) => Math.cos(i) * 3), 'x');

  it('3 steps, save, load into a fresh optimizer, 3 more = 6 uninterrupted, bit for bit (strong Wolfe, history 4)', async () => {
    const opts = { lineSearchFn: 'strong_wolfe' as const, maxIter: 3, historySize: 4 };
    const a = start();
    const optA = new LBFGS([a], opts);
    for (let t = 0; t < 6; t++) optA.step(closureFor(a));

    const b = start();
    const optB = new LBFGS([b], opts);
    for (let t = 0; t < 3; t++) optB.step(closureFor(b));
    expect(optB.state.oldDirs.length).toBeGreaterThan(0);
    const file = await freshPath();
    await saveCheckpoint(file, { tensors: { x: b.data }, optimizer: optB.stateDict() });

    const c = param(new Float64Array(12), 'x');
    const optC = new LBFGS([c], { lineSearchFn: 'strong_wolfe' });
    await loadCheckpoint(file, { into: { tensors: { x: c.data }, optimizer: optC } });
    expect(optC.paramGroups[0].historySize).toBe(4);
    for (let t = 0; t < 3; t++) optC.step(closureFor(c));
    expectSameArray(c.data, a.data);
    expectSameValue(optC.stateDict(), optA.stateDict());
  });

  it('loadStateDict refuses a state that does not fit these params, changing nothing', () => {
    const x = start();
    const opt = new LBFGS([x], { maxIter: 2 });
    opt.step(closureFor(x));
    const sd = opt.stateDict();
    const before = opt.stateDict();
    const bad = [
      { ...sd, state: { ...sd.state, d: new Float64Array(3) } },
      { ...sd, state: { ...sd.state, oldDirs: [new Float32Array(12)] } },
      { ...sd, state: { ...sd.state, ro: [1, 2, 3] } },
      { ...sd, state: { ...sd.state, nIter: -1 } },
      { ...sd, state: { ...sd.state, bogus: 1 } },
      { ...sd, paramGroups: [{ ...sd.paramGroups[0], lr: -1 }] },
      { ...sd, skippedSteps: 0.5 },
    ];
    for (const b of bad) {
      expect(() => opt.loadStateDict(b as never)).toThrow(OptimStateError);
      expectSameValue(opt.stateDict(), before);
    }
  });
});

describe('round trip', () => {
  it('returns the same tensors, dtypes, metadata and state dict, numbers JSON cannot hold included', async () => {
    const shared = new Float64Array(new SharedArrayBuffer(5 * 8));
    shared.set([1, -0, NaN, Infinity, -Infinity]);
    const inner = new Float32Array(16).fill(7).subarray(3, 8);
    const tensors: Record<string, FloatArray> = {
      'a.b.c': Float64Array.from([0.1, -0, 2 ** -1074, Number.MAX_VALUE, -1e-300]),
      odd32: Float32Array.from([1.5, NaN, -0, 3.4e38, 1e-45]),
      shared,
      inner,
      empty64: new Float64Array(0),
      empty32: new Float32Array(0),
      'ünïcödé ✓ "quoted" \\ $dollar': Float32Array.of(42),
      __proto__name: Float64Array.of(1),
    };
    Object.defineProperty(tensors, '__proto__', { value: Float64Array.of(-3), enumerable: true });
    const optimizer = {
      state: { 'layer.0.weight': { step: 3, expAvg: Float64Array.from([1, 2]), expAvgSq: new Float32Array(new SharedArrayBuffer(8)) } },
      paramGroups: [{ lr: 0.001, betas: [0.9, 0.999], eps: 1e-8, amsgrad: false, params: ['layer.0.weight'], maxGradNorm: undefined }],
      skippedSteps: 0,
      specials: [NaN, -0, Infinity, -Infinity, 0, null, 'NaN', { $tensor: 'not a tensor', $$x: 1, $number: 'NaN' }],
      sparse: [1, undefined, 3],
      nested: { deeper: { buffers: [Float32Array.of(1), Float64Array.of(2)] } },
    };
    const metadata = { epoch: '12', note: 'ünïcödé\n"x"', empty: '' };
    const file = await freshPath();
    await saveCheckpoint(file, { tensors, optimizer, metadata });
    const loaded = await loadCheckpoint<typeof optimizer>(file);

    expect(Object.keys(loaded.tensors).sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) expectSameArray(loaded.tensors[name], t);
    expect(Object.getPrototypeOf(loaded.tensors)).toBe(Object.prototype);
    expect(loaded.metadata).toEqual(metadata);
    expectSameValue(loaded.optimizer, optimizer);
    expect('maxGradNorm' in loaded.optimizer!.paramGroups[0]).toBe(true);
    expect(1 in loaded.optimizer!.sparse).toBe(true);
    for (const t of Object.values(loaded.tensors)) expect(t.byteOffset % t.BYTES_PER_ELEMENT).toBe(0);
    expect((await readdir(path.dirname(file))).sort()).toEqual(['ckpt.safetensors']);
  });

  it('Newton and ReduceLROnPlateau state dicts (null, strings, no tensors) round-trip', async () => {
    const w = param(Float64Array.from([1, 2]), 'w');
    const newton = new Newton([w], { damping: 'adaptive', lambda0: 0.125 });
    const sgd = new SGD([param(new Float64Array(2), 'v')], { lr: 0.1 });
    const plateau = new ReduceLROnPlateau(sgd, { patience: 2 });
    const optimizer = { newton: newton.stateDict(), plateau: plateau.stateDict() };
    const file = await freshPath();
    await saveCheckpoint(file, { optimizer });
    const loaded = await loadCheckpoint<typeof optimizer>(file);
    expectSameValue(loaded.optimizer, optimizer);
    expect(loaded.tensors).toEqual({});
    const fresh = new Newton([param(Float64Array.from([1, 2]), 'w')], { damping: 'adaptive' });
    fresh.loadStateDict(loaded.optimizer!.newton);
    expect(fresh.stateDict().state).toEqual(newton.stateDict().state);
  });

  it('tensors larger than a write chunk (4 MiB), of lengths that do not divide it', async () => {
    const big64 = Float64Array.from({ length: (1 << 20) + 3 }, (_, i) => Math.sin(i) * 1e3);
    const big32 = Float32Array.from({ length: (1 << 21) + 1 }, (_, i) => i / 7);
    const file = await freshPath();
    await saveCheckpoint(file, { tensors: { big64 }, optimizer: { state: { p: { buf: big32 } } } });
    const loaded = await loadCheckpoint<{ state: { p: { buf: Float32Array } } }>(file);
    expectSameArray(loaded.tensors.big64, big64);
    expectSameArray(loaded.optimizer!.state.p.buf, big32);
    expect((await stat(file)).size).toBe(8 + readHeader(await readFile(file)).n + big64.byteLength + big32.byteLength);
  });

  it('replaces an existing checkpoint and leaves no temp file', async () => {
    const file = await freshPath();
    await saveCheckpoint(file, { tensors: { x: Float64Array.of(1) } });
    await saveCheckpoint(file, { tensors: { y: Float32Array.of(2, 3) }, metadata: { second: 'yes' } });
    const loaded = await loadCheckpoint(file);
    expect(Object.keys(loaded.tensors)).toEqual(['y']);
    expectSameArray(loaded.tensors.y, Float32Array.of(2, 3));
    expect(loaded.metadata).toEqual({ second: 'yes' });
    expect(await readdir(path.dirname(file))).toEqual(['ckpt.safetensors']);
  });
});

describe('file format', () => {
  async function sample(): Promise<{ file: string; bytes: Buffer; opt: Adam }> {
    const ps = model();
    const opt = new Adam(ps, { lr: 0.003, betas: [0.8, 0.95] });
    for (let t = 0; t < 4; t++) {
      fillGrads(ps);
      opt.step();
    }
    const file = await freshPath();
    await saveCheckpoint(file, { tensors: { ...tensorsOf(ps), odd: Float32Array.of(1, 2, 3) }, optimizer: opt.stateDict(), metadata: { run: 'r1' } });
    return { file, bytes: await readFile(file), opt };
  }

  it('is safetensors: padded header, contiguous offsets in header order covering the data, string metadata', async () => {
    const { bytes } = await sample();
    const { n, json, text, dataStart } = readHeader(bytes);
    expect(n % 8).toBe(0);
    expect(text.trimEnd().length).toBeGreaterThan(n - 8);
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
    let at = 0;
    const names: string[] = [];
    for (const [name, info] of Object.entries(json)) {
      if (name === '__metadata__') continue;
      names.push(name);
      expect(Object.keys(info).sort()).toEqual(['data_offsets', 'dtype', 'shape']);
      expect(['F32', 'F64']).toContain(info.dtype);
      expect(info.data_offsets[0]).toBe(at);
      expect(info.data_offsets[1] - at).toBe(info.shape[0] * (info.dtype === 'F32' ? 4 : 8));
      expect(info.data_offsets[0] % (info.dtype === 'F32' ? 4 : 8)).toBe(0);
      at = info.data_offsets[1];
    }
    expect(dataStart + at).toBe(bytes.length);
    expect(names).toContain('layer.0.weight');
    expect(names).toContain('optim.0.state.layer.0.weight.expAvg');
    for (const v of Object.values(json.__metadata__)) expect(typeof v).toBe('string');
    expect(json.__metadata__['optim.format']).toBe('optim-checkpoint/1');
    expect(json.__metadata__['optim.version']).toBe(VERSION);
    expect(json.__metadata__.run).toBe('r1');
    expect(json.__metadata__['optim.checksum']).toMatch(/^sha256:[0-9a-f]{64}$/);
    const skeleton = JSON.parse(json.__metadata__['optim.optimizer']);
    expect(skeleton.paramGroups[0]).toMatchObject({ lr: 0.003, betas: [0.8, 0.95], params: ['layer.0.weight', 'bias'] });
    expect(skeleton.state['layer.0.weight'].step).toBe(4);
    expect(skeleton.state.bias.expAvg).toEqual({ $tensor: expect.stringMatching(/^optim\.\d+\.state\.bias\.expAvg$/) });
  });

  it('the checksum is sha256 of the file with its hex as zeros (checked here independently)', async () => {
    const { bytes } = await sample();
    const at = bytes.indexOf(NEEDLE) + NEEDLE.length;
    const hex = bytes.subarray(at, at + 64).toString('latin1');
    const zeroed = Buffer.from(bytes);
    zeroed.write('0'.repeat(64), at, 'latin1');
    expect(createHash('sha256').update(zeroed).digest('hex')).toBe(hex);
  });

  it('python3 (struct + json only) reads the header, the metadata and every tensor', async () => {
    const { file, opt } = await sample();
    const script = [
      'import json, struct, sys',
      'f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; header = json.loads(f.read(n)); data = f.read()',
      'out = {}',
      'for name, info in header.items():',
      '    if name == "__metadata__": continue',
      '    b, e = info["data_offsets"]; code = {"F32": "f", "F64": "d"}[info["dtype"]]',
      '    out[name] = [repr(x) for x in struct.unpack("<%d%s" % (info["shape"][0], code), data[b:e])]',
      'meta = header["__metadata__"]',
      'print(json.dumps({"tensors": out, "meta": meta, "optimizer": json.loads(meta["optim.optimizer"])}))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8', timeout: 30_000 });
    expect(r.error).toBeUndefined();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const py = JSON.parse(r.stdout) as { tensors: Record<string, string[]>; meta: Record<string, string>; optimizer: any };
    const loaded = await loadCheckpoint(file);
    const sd = opt.stateDict();
    expect(py.meta.run).toBe('r1');
    expect(py.optimizer.state.bias.step).toBe(4);
    const pyNumber = (s: string): number => (s === 'nan' ? NaN : s === 'inf' ? Infinity : s === '-inf' ? -Infinity : Number(s));
    const check = (name: string, want: FloatArray): void => {
      expect(py.tensors[name].map(pyNumber)).toEqual(Array.from(want));
    };
    for (const [name, t] of Object.entries(loaded.tensors)) check(name, t);
    check(py.optimizer.state['layer.0.weight'].expAvgSq.$tensor, sd.state['layer.0.weight'].expAvgSq as FloatArray);
    check(py.optimizer.state.bias.expAvg.$tensor, sd.state.bias.expAvg as FloatArray);
  });

  it('loads a plain safetensors file written by python3 only with requireChecksum: false, 2-D shapes flattened', async () => {
    const file = await freshPath('from-python.safetensors');
    const script = [
      'import json, struct, sys',
      'w = struct.pack("<6f", 1.0, 2.0, 3.0, 4.0, 5.0, -0.0); b = struct.pack("<2d", 0.1, -2.5)',
      'h = json.dumps({"__metadata__": {"format": "pt"}, "bias": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]},',
      '                "weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [16, 40]}}).encode()',
      'h += b" " * (-len(h) % 8)',
      'open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b + w)',
    ].join('\n');
    const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    await expect(loadCheckpoint(file)).rejects.toThrow(/has no optim\.checksum .*requireChecksum: false/);
    const loaded = await loadCheckpoint(file, { requireChecksum: false });
    expectSameArray(loaded.tensors.weight, Float32Array.of(1, 2, 3, 4, 5, -0));
    expectSameArray(loaded.tensors.bias, Float64Array.of(0.1, -2.5));
    expect(loaded.metadata).toEqual({ format: 'pt' });
    expect(loaded.optimizer).toBeUndefined();
  });

  it('a file crafted here by the format description loads (so the refusals below are for the fault planted)', async () => {
    const file = await freshPath();
    const header = {
      __metadata__: { 'optim.format': 'optim-checkpoint/1', 'optim.optimizer': '{"state":{"p":{"step":2,"buf":{"$tensor":"optim.9.x"}}}}' },
      w: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
      'optim.9.x': { dtype: 'F64', shape: [1], data_offsets: [16, 24] },
    };
    await writeFile(file, craft(header, le64([1, 2, 3]), true));
    const loaded = await loadCheckpoint(file);
    expectSameArray(loaded.tensors.w, Float64Array.of(1, 2));
    expectSameValue(loaded.optimizer, { state: { p: { step: 2, buf: Float64Array.of(3) } } });
  });
});

describe('refusals', () => {
  async function small(): Promise<{ file: string; bytes: Buffer }> {
    const ps = model();
    const opt = new Adam(ps, { lr: 0.01 });
    fillGrads(ps);
    opt.step();
    const file = await freshPath();
    await saveCheckpoint(file, { tensors: tensorsOf(ps), optimizer: opt.stateDict(), metadata: { m: 'x' } });
    return { file, bytes: await readFile(file) };
  }

  /** Loads `bytes` from `file`; returns the error, failing if it is not a CheckpointError naming the file. */
  async function refusal(file: string, bytes: Uint8Array, options?: { requireChecksum: boolean }): Promise<CheckpointError> {
    await writeFile(file, bytes);
    const err = await loadCheckpoint(file, options).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof CheckpointError)) {
      expect.fail(`expected a CheckpointError, got ${err === undefined ? 'a successful load' : String(err)}`);
    }
    expect(err.path).toBe(file);
    expect(err.message).toContain(file);
    return err;
  }

  it('every single-byte corruption of a checkpoint (each byte ^0x01 and ^0xff, both requireChecksum settings) is refused', async () => {
    const { file, bytes } = await small();
    const bad = path.join(path.dirname(file), 'bad.safetensors');
    let refused = 0;
    const messages = new Set<string>();
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0xff]) {
        const copy = Buffer.from(bytes);
        copy[i] ^= mask;
        for (const requireChecksum of [true, false]) {
          const err = await refusal(bad, copy, { requireChecksum });
          messages.add(err.message.replace(bad, '<file>').replace(/\d+/g, '#'));
          refused++;
        }
      }
    }
    expect(refused).toBe(bytes.length * 4);
    expect(bytes.length).toBeGreaterThan(500);
    expect([...messages].some((m) => m.includes('checksum mismatch'))).toBe(true);
  }, 120_000);

  it('every truncation (0 to length-1 bytes) is refused as truncated', async () => {
    const { file, bytes } = await small();
    const bad = path.join(path.dirname(file), 'short.safetensors');
    for (let len = 0; len < bytes.length; len++) {
      const err = await refusal(bad, bytes.subarray(0, len));
      expect(err.message).toMatch(/truncated/);
    }
  }, 60_000);

  it('extra trailing bytes', async () => {
    const { file, bytes } = await small();
    const err = await refusal(file, Buffer.concat([bytes, Buffer.alloc(8)]));
    expect(err.message).toMatch(/8 trailing bytes follow the last tensor/);
  });

  it('a header length past the end of the file, or huge, is refused before anything that size is read', async () => {
    const { file, bytes } = await small();
    for (const n of [BigInt(bytes.length - 7), 2n ** 63n, 2n ** 64n - 1n]) {
      const copy = Buffer.from(bytes);
      copy.writeBigUInt64LE(n, 0);
      const err = await refusal(file, copy);
      expect(err.message).toMatch(new RegExp(`header length is ${n} bytes but only ${bytes.length - 8} bytes follow`));
    }
    // A sparse file larger than the safetensors header limit, claiming a header of all of it.
    const sparse = path.join(path.dirname(file), 'sparse.safetensors');
    const fh = await open(sparse, 'w');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(200_000_000n, 0);
    await fh.write(prefix, 0, 8, 0);
    await fh.truncate(200_000_008);
    await fh.close();
    const before = process.memoryUsage().arrayBuffers;
    await expect(loadCheckpoint(sparse)).rejects.toThrow(/header length 200000000 exceeds the 100000000 bytes/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(50_000_000);
  });

  // Each file has a valid checksum (made by `craft`), so the fault planted is what is refused.
  const F64_3 = le64([1, 2, 3]);
  const ours = { 'optim.format': 'optim-checkpoint/1' };
  const malformed: Array<[string, string | Buffer | Record<string, unknown>, Uint8Array, boolean, RegExp]> = [
    ['invalid JSON', '{"w": {"dtype": "F64", ', F64_3, false, /header is not valid JSON/],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), new Uint8Array(0), false, /header is not valid UTF-8/],
    ['a header that is not an object', '[1, 2]', new Uint8Array(0), false, /does not start with "\{"/],
    ['a wrong dtype', { __metadata__: ours, w: { dtype: 'I64', shape: [3], data_offsets: [0, 24] } }, F64_3, true, /tensor "w" has dtype "I64"; only "F32" and "F64"/],
    ['F16', { __metadata__: ours, w: { dtype: 'F16', shape: [12], data_offsets: [0, 24] } }, F64_3, true, /dtype "F16"/],
    ['overlapping offsets', { __metadata__: ours, a: { dtype: 'F64', shape: [2], data_offsets: [0, 16] }, b: { dtype: 'F64', shape: [2], data_offsets: [8, 24] } }, F64_3, true, /tensors "a" and "b" overlap/],
    ['a gap between tensors', { __metadata__: ours, a: { dtype: 'F64', shape: [1], data_offsets: [0, 8] }, b: { dtype: 'F64', shape: [1], data_offsets: [16, 24] } }, F64_3, true, /gap of 8 bytes lies before tensor "b"/],
    ['data_offsets not starting at 0', { __metadata__: ours, a: { dtype: 'F64', shape: [2], data_offsets: [8, 24] } }, F64_3, true, /gap of 8 bytes/],
    ['end before begin', { __metadata__: ours, a: { dtype: 'F64', shape: [0], data_offsets: [24, 0] } }, F64_3, true, /data_offsets \[24,0\], not \[begin, end\]/],
    ['a shape product that does not match the offsets', { __metadata__: ours, w: { dtype: 'F64', shape: [2, 2], data_offsets: [0, 24] } }, F64_3, true, /shape \[2,2\] of F64 needs 32 bytes but data_offsets \[0, 24\] span 24/],
    ['a negative shape', { __metadata__: ours, w: { dtype: 'F64', shape: [-3], data_offsets: [0, 24] } }, F64_3, true, /shape \[-3\], not an array of whole numbers/],
    ['tensors covering less than the data', { __metadata__: ours, w: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, F64_3, true, /8 trailing bytes/],
    ['tensors needing more than the data', { __metadata__: ours, w: { dtype: 'F64', shape: [4], data_offsets: [0, 32] } }, F64_3, true, /truncated: the tensors need 32 bytes of data but the file holds 24/],
    ['an unknown key in a tensor entry', { __metadata__: ours, w: { dtype: 'F64', shape: [3], data_offsets: [0, 24], scale: 2 } }, F64_3, true, /unknown keys scale/],
    ['a metadata value that is not a string', { __metadata__: { ...ours, epoch: 3 }, w: { dtype: 'F64', shape: [3], data_offsets: [0, 24] } }, F64_3, true, /__metadata__\["epoch"\] is not a string/],
    ['another format version', { __metadata__: { 'optim.format': 'optim-checkpoint/2' }, w: { dtype: 'F64', shape: [3], data_offsets: [0, 24] } }, F64_3, true, /format "optim-checkpoint\/2"; this version of optim reads "optim-checkpoint\/1"/],
    ['a state dict referring to a missing tensor', { __metadata__: { ...ours, 'optim.optimizer': '{"b":{"$tensor":"optim.7"}}' }, w: { dtype: 'F64', shape: [3], data_offsets: [0, 24] } }, F64_3, true, /refers to tensor "optim.7", which the file does not hold/],
    ['a tensor of the optimizer that no state refers to', { __metadata__: { ...ours, 'optim.optimizer': '{}' }, 'optim.0.x': { dtype: 'F64', shape: [3], data_offsets: [0, 24] } }, F64_3, true, /tensors "optim.0.x" belong to no saved optimizer state/],
    ['a malformed special number', { __metadata__: { ...ours, 'optim.optimizer': '{"a":{"$number":"1e999"}}' } }, new Uint8Array(0), true, /malformed \$number/],
    ['a state dict that is not JSON', { __metadata__: { ...ours, 'optim.optimizer': '{"a":' } }, new Uint8Array(0), true, /optim.optimizer is not valid JSON/],
    ['a format marker without a checksum', { __metadata__: ours, w: { dtype: 'F64', shape: [3], data_offsets: [0, 24] } }, F64_3, false, /optim.checksum is missing though optim.format is present/],
  ];

  it.each(malformed)('%s', async (_n, header, data, checksum, message) => {
    const file = await freshPath();
    const err = await refusal(file, craft(header, data, checksum), { requireChecksum: false });
    expect(err.message).toMatch(message);
  });

  it('a checksum that is malformed, a placeholder, or wrong', async () => {
    const header = { __metadata__: { m: 'x' }, w: { dtype: 'F64', shape: [3], data_offsets: [0, 24] } };
    const good = craft(header, F64_3, true);
    const at = good.indexOf(NEEDLE) + NEEDLE.length;
    const file = await freshPath();
    const zeros = Buffer.from(good);
    zeros.write('0'.repeat(64), at, 'latin1');
    expect((await refusal(file, zeros)).message).toMatch(/checksum is still the placeholder: the write did not finish/);
    const upper = Buffer.from(good);
    upper.write(good.subarray(at, at + 64).toString('latin1').toUpperCase().replace(/^[0-9]/, 'A'), at, 'latin1');
    expect((await refusal(file, upper)).message).toMatch(/not "sha256:" and 64 hex digits/);
    const wrong = Buffer.from(good);
    wrong.write(good[at] === 0x61 ? 'b' : 'a', at, 'latin1');
    expect((await refusal(file, wrong)).message).toMatch(/checksum mismatch: the file is corrupted/);
    const data = Buffer.from(good);
    data[data.length - 1] ^= 0x40;
    expect((await refusal(file, data)).message).toMatch(/checksum mismatch/);
  });

  it('a temp file left by a killed save is refused; other files in the directory do not matter', async () => {
    const { file, bytes } = await small();
    const json = readHeader(bytes);
    const partial = bytes.subarray(0, json.dataStart + 20);
    const tmp = path.join(path.dirname(file), `.ckpt.safetensors.123-abc.tmp`);
    expect((await refusal(tmp, partial)).message).toMatch(/truncated/);
    const done = Buffer.from(bytes);
    done.write('0'.repeat(64), bytes.indexOf(NEEDLE) + NEEDLE.length, 'latin1');
    expect((await refusal(tmp, done)).message).toMatch(/placeholder/);
    await writeFile(file, bytes);
    expect(Object.keys((await loadCheckpoint(file)).tensors).sort()).toEqual(['bias', 'layer.0.weight']);
  });

  it('file system errors are the fs errors', async () => {
    const missing = path.join(await freshDir(), 'nope.safetensors');
    await expect(loadCheckpoint(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    const inMissingDir = path.join(await freshDir(), 'no', 'dir', 'x.safetensors');
    await expect(saveCheckpoint(inMissingDir, { tensors: { x: Float64Array.of(1) } })).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('argument validation, before the disk is touched', () => {
  const detached = new Float64Array(4);
  detach(detached);
  const cyclic: Record<string, unknown> = { state: {} };
  cyclic.self = cyclic;
  const cases: Array<[string, unknown, unknown, new (...a: never[]) => Error, RegExp]> = [
    ['a non-string path', 42, {}, OptimTypeError, /path must be a non-empty string, got number/],
    ['an empty path', '', {}, OptimTypeError, /got an empty string/],
    ['a checkpoint that is not an object', 'P', [1], OptimTypeError, /checkpoint must be an object/],
    ['an unknown checkpoint key', 'P', { tensor: {} }, OptimTypeError, /unknown key "tensor"/],
    ['tensors that are not an object', 'P', { tensors: [Float64Array.of(1)] }, OptimTypeError, /tensors must be an object/],
    ['an empty tensor name', 'P', { tensors: { '': Float64Array.of(1) } }, OptimRangeError, /a tensor name is empty/],
    ['a reserved tensor name', 'P', { tensors: { 'optim.x': Float64Array.of(1) } }, OptimRangeError, /reserved/],
    ['the name __metadata__', 'P', { tensors: { __metadata__: Float64Array.of(1) } }, OptimRangeError, /reserved/],
    ['an Int32Array tensor', 'P', { tensors: { w: Int32Array.of(1) } }, OptimTypeError, /tensors\["w"\] must be a Float32Array or Float64Array, got Int32Array/],
    ['a plain array tensor', 'P', { tensors: { w: [1, 2] } }, OptimTypeError, /got Array/],
    ['a detached tensor', 'P', { tensors: { w: detached } }, OptimRangeError, /tensors\["w"\] is detached/],
    ['a metadata value that is not a string', 'P', { metadata: { epoch: 3 } }, OptimTypeError, /metadata\["epoch"\] must be a string/],
    ['a reserved metadata key', 'P', { metadata: { 'optim.format': 'x' } }, OptimRangeError, /keys starting with "optim\." are reserved/],
    ['an optimizer that is not a plain object', 'P', { optimizer: new Map() }, OptimTypeError, /optimizer must be a state dict \(a plain object, as from stateDict\(\)\), got Map/],
    ['a function in the state dict', 'P', { optimizer: { paramGroups: [{ lr: () => 1 }] } }, OptimTypeError, /optimizer\.paramGroups\[0\]\.lr is of type function/],
    ['an Int32Array in the state dict', 'P', { optimizer: { state: { 'a.b': { buf: Int32Array.of(1) } } } }, OptimTypeError, /optimizer\.state\["a\.b"\]\.buf is of type Int32Array/],
    ['a detached buffer in the state dict', 'P', { optimizer: { state: { w: { buf: detached } } } }, OptimRangeError, /optimizer\.state\.w\.buf is detached/],
    ['a bigint in the state dict', 'P', { optimizer: { step: 1n } }, OptimTypeError, /optimizer\.step is of type bigint/],
    ['a class instance in the state dict', 'P', { optimizer: { when: new Date(0) } }, OptimTypeError, /optimizer\.when is of type Date/],
    ['a cycle in the state dict', 'P', { optimizer: cyclic }, OptimTypeError, /optimizer\.self refers back to itself/],
  ];

  it.each(cases)('saveCheckpoint refuses %s', async (_n, p, checkpoint, Err, message) => {
    const d = await freshDir();
    // A path in a directory that does not exist: touching the disk would reject with ENOENT.
    const target = p === 'P' ? path.join(d, 'missing', 'x.safetensors') : p;
    await expect(saveCheckpoint(target as string, checkpoint as Checkpoint)).rejects.toThrow(Err);
    await expect(saveCheckpoint(target as string, checkpoint as Checkpoint)).rejects.toThrow(message);
    expect(await readdir(d)).toEqual([]);
  });

  const loadCases: Array<[string, unknown, RegExp]> = [
    ['options that are not an object', 'x', /options must be an object/],
    ['an unknown option', { requireChecksums: false }, /unknown key "requireChecksums"/],
    ['a non-boolean requireChecksum', { requireChecksum: 0 }, /requireChecksum must be a boolean/],
    ['into that is not an object', { into: [] }, /options.into must be an object/],
    ['an unknown into key', { into: { model: {} } }, /unknown key "model"/],
    ['an Int32Array target', { into: { tensors: { w: Int32Array.of(1) } } }, /into.tensors\["w"\] must be a Float32Array or Float64Array/],
    ['a detached target', { into: { tensors: { w: detached } } }, /is detached/],
    ['an optimizer without loadStateDict', { into: { optimizer: { state: {} } } }, /must have a loadStateDict method/],
  ];

  it.each(loadCases)('loadCheckpoint refuses %s', async (_n, options, message) => {
    const missing = path.join(await freshDir(), 'missing.safetensors');
    const err = await loadCheckpoint(missing, options as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(message);
    expect(err instanceof OptimTypeError || err instanceof OptimRangeError).toBe(true);
  });

  it('loadCheckpoint refuses a non-string path', async () => {
    await expect(loadCheckpoint(7 as never)).rejects.toThrow(OptimTypeError);
  });
});

describe('loadCheckpoint into a model and optimizer', () => {
  async function saved(): Promise<{ file: string; ps: Param[]; opt: Adam }> {
    const ps = model();
    const opt = new Adam(ps, { lr: 0.01 });
    for (let t = 0; t < 3; t++) {
      fillGrads(ps);
      opt.step();
    }
    const file = await freshPath();
    await saveCheckpoint(file, { tensors: tensorsOf(ps), optimizer: opt.stateDict() });
    return { file, ps, opt };
  }

  it('copies into SharedArrayBuffer-backed tensors in place', async () => {
    const { file, ps } = await saved();
    const w = new Float64Array(new SharedArrayBuffer(9 * 8));
    const bias = new Float32Array(5);
    await loadCheckpoint(file, { into: { tensors: { 'layer.0.weight': w, bias } } });
    expectSameArray(w, ps[0].data);
    expectSameArray(bias, ps[1].data);
  });

  it('lists every mismatch (missing, dtype, length, unexpected) and changes nothing', async () => {
    const { file } = await saved();
    const targets = { 'layer.0.weight': new Float32Array(9), bias: new Float32Array(4), extra: new Float64Array(1) };
    const fresh = model();
    const opt = new Adam(fresh, { lr: 0.5 });
    const before = snapshot(fresh, opt);
    const err = await loadCheckpoint(file, { into: { tensors: targets, optimizer: opt } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    const msg = (err as Error).message;
    expect(msg).toContain(`${file} does not match what it is loaded into`);
    expect(msg).toContain('"layer.0.weight" is a Float64Array in the file but a Float32Array here');
    expect(msg).toContain('"bias" has length 5 in the file but 4 here');
    expect(msg).toContain('"extra" is not in the file');
    expect(targets['layer.0.weight'].every((x) => x === 0) && targets.bias.every((x) => x === 0)).toBe(true);
    expect(snapshot(fresh, opt)).toEqual(before);
    expect(opt.paramGroups[0].lr).toBe(0.5);

    const err2 = await loadCheckpoint(file, { into: { tensors: { bias: new Float32Array(5) } } }).catch((e: unknown) => e);
    expect((err2 as Error).message).toContain('"layer.0.weight" is in the file but not in into.tensors');
  });

  it('an optimizer that refuses the state is a CheckpointError (with the cause), and no tensor is written', async () => {
    const { file } = await saved();
    const other = [param(new Float64Array(9), 'layer.0.weight'), param(new Float32Array(5), 'bias')];
    const sgd = new SGD(other, { lr: 0.1, momentum: 0.9 });
    const targets = tensorsOf(other);
    const err = await loadCheckpoint(file, { into: { tensors: targets, optimizer: sgd } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/the optimizer refused the saved state: .*unknown/);
    expect((err as Error & { cause?: unknown }).cause).toBeInstanceOf(OptimStateError);
    expect(Object.values(targets).every((t) => t.every((x) => x === 0))).toBe(true);

    const noOpt = await freshPath();
    await saveCheckpoint(noOpt, { tensors: { x: Float64Array.of(1) } });
    await expect(loadCheckpoint(noOpt, { into: { optimizer: sgd } })).rejects.toThrow(/the file holds no optimizer state/);
  });
});

describe('a crash in the middle of a save', () => {
  let bundle = '';
  beforeAll(() => {
    // Child processes cannot run the TypeScript sources: they load the compiled library.
    bundle = path.join(path.dirname(compiledDist()), 'checkpoint.js');
  }, 120_000);

  const writer = path.resolve(__dirname, 'fixtures/checkpoint-writer.mjs');

  function runWriter(target: string, length: number, fill: number) {
    const child = spawn(process.execPath, [writer, bundle, target, String(length), String(fill)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      child.on('exit', (code, signal) => res({ code, signal }));
    });
    return { child, exit, output: () => out };
  }

  it('SIGKILL while the temp file is half written: the old checkpoint loads unchanged; the temp file is refused', async () => {
    const target = await freshPath();
    const d = path.dirname(target);
    const oldOpt = { state: { w: { step: 7, buf: Float64Array.of(0.5, -0) } }, paramGroups: [{ lr: 0.1, params: ['w'] }] };
    const old: Checkpoint = { tensors: { big: new Float32Array(1000).fill(1), small: Float64Array.of(1) }, optimizer: oldOpt, metadata: { which: 'old' } };
    await saveCheckpoint(target, old);
    const oldBytes = await readFile(target);

    const LENGTH = 48 << 20; // 192 MiB of Float32
    const t0 = Date.now();
    const run = runWriter(target, LENGTH, 2);
    let tmp = '';
    let killedAt = -1;
    while (Date.now() - t0 < 60_000) {
      const names = (await readdir(d)).filter((n) => n.endsWith('.tmp'));
      if (names.length > 0) {
        tmp = path.join(d, names[0]);
        const size = await stat(tmp).then((s) => s.size, () => 0);
        if (size > LENGTH) {
          run.child.kill('SIGKILL');
          killedAt = size;
          break;
        }
      }
      if (run.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 1));
    }
    const { signal } = await run.exit;
    expect(run.output()).toBe('saving\n');
    expect(signal).toBe('SIGKILL');
    expect(killedAt).toBeGreaterThan(LENGTH);
    expect(killedAt).toBeLessThan(LENGTH * 4);
    // The temp file is still there (the rename never happened), under a name of its own.
    expect((await readdir(d)).sort()).toEqual(['ckpt.safetensors', path.basename(tmp)].sort());
    expect(path.basename(tmp)).toMatch(/^\.ckpt\.safetensors\.\d+-[0-9a-f]+\.tmp$/);

    expect(await readFile(target)).toEqual(oldBytes);
    const loaded = await loadCheckpoint(target);
    expectSameArray(loaded.tensors.big, old.tensors!.big);
    expectSameArray(loaded.tensors.small, old.tensors!.small);
    expect(loaded.metadata).toEqual({ which: 'old' });
    expectSameValue(loaded.optimizer, oldOpt);
    await expect(loadCheckpoint(tmp)).rejects.toThrow(CheckpointError);
    await rm(tmp);

    // The same writer, left to finish, replaces the checkpoint: the kill above was mid-write.
    const done = runWriter(target, 1 << 16, 3);
    expect(await done.exit).toEqual({ code: 0, signal: null });
    expect(done.output()).toBe('saving\nsaved\n');
    const replaced = await loadCheckpoint(target);
    expectSameArray(replaced.tensors.big, new Float32Array(1 << 16).fill(3));
    expect(replaced.metadata).toEqual({ which: '3' });
    expect(await readdir(d)).toEqual(['ckpt.safetensors']);
  }, 120_000);
});
