/**
 * Param shapes (src/param.ts): `param(data, name, { shape })`, `p.shape`, `paramArena` with
 * shapes, and what carries them: checkpoints record them (src/checkpoint.ts); optimizers that
 * update elementwise ignore them, their state dicts unchanged.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from '../src/checkpoint.js';
import { CheckpointError, OptimRangeError, OptimTypeError } from '../src/errors.js';
import { Adam, SGD } from '../src/optim/index.js';
import { param, paramArena } from '../src/param.js';
import type { ParamOptions } from '../src/param.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { bytesOf, errorOf } from './helpers/snapshot.js';

describe('param(data, name, { shape })', () => {
  it('defaults to [data.length], frozen', () => {
    const p = param(new Float64Array(7), 'v');
    expect(p.shape).toEqual([7]);
    expect(Object.isFrozen(p.shape)).toBe(true);
    expect(() => (p.shape as number[]).push(1)).toThrow(TypeError);
    expect(param(new Float32Array(0)).shape).toEqual([0]);
  });

  it('takes the dims given, row-major, as a frozen copy', () => {
    const dims = [6, 4];
    const w = param(new Float32Array(24), 'w', { shape: dims });
    dims[0] = 1;
    expect(w.shape).toEqual([6, 4]);
    expect(Object.isFrozen(w.shape)).toBe(true);
    expect(w.grad.length).toBe(24);
    expect(param(new Float64Array(24), 'c', { shape: [2, 3, 4] }).shape).toEqual([2, 3, 4]);
    expect(param(new Float64Array(1), 's', { shape: [] }).shape).toEqual([]);
    expect(param(new Float64Array(5), undefined, { shape: [5] }).shape).toEqual([5]);
    expect(param(new Float64Array(5), 'x', {}).shape).toEqual([5]);
  });

  const bad: Array<[string, unknown, number, typeof OptimTypeError | typeof OptimRangeError, RegExp]> = [
    ['a number', 6, 6, OptimTypeError, /param\(data, name, options\): options\.shape must be an array of positive integers \(the dims, row-major\), got number/],
    ['a typed array', Int32Array.of(2, 3), 6, OptimTypeError, /options\.shape must be an array of positive integers .*got Int32Array/],
    ['a string dim', [2, '3'], 6, OptimTypeError, /options\.shape\[1\] must be a number, got string/],
    ['a zero dim', [0, 3], 0, OptimRangeError, /options\.shape\[0\] must be a positive integer, got 0/],
    ['a negative dim', [2, -3], 6, OptimRangeError, /options\.shape\[1\] must be a positive integer, got -3/],
    ['a fractional dim', [2.5, 2], 5, OptimRangeError, /options\.shape\[0\] must be a positive integer, got 2\.5/],
    ['a NaN dim', [NaN], 1, OptimRangeError, /options\.shape\[0\] must be a positive integer, got NaN/],
    ['an infinite dim', [Infinity], 1, OptimRangeError, /options\.shape\[0\] must be a positive integer, got Infinity/],
    ['a product other than the length', [2, 3], 5, OptimRangeError, /options\.shape \[2, 3\] holds 6 elements but data has length 5/],
    ['[] for more than one element', [], 2, OptimRangeError, /options\.shape \[\] holds 1 element but data has length 2/],
    ['a product past 2^53', [2 ** 30, 2 ** 30, 2 ** 30], 8, OptimRangeError, /holds more than 2\^53 elements/],
  ];

  it.each(bad)('refuses %s, naming the argument', (_n, shape, length, cls, message) => {
    const err = errorOf(() => param(new Float64Array(length), 'w', { shape } as ParamOptions));
    expect(err).toBeInstanceOf(cls);
    expect((err as Error).message).toMatch(message);
  });

  it('refuses options that are not an object, or unknown keys', () => {
    expect(() => param(new Float64Array(2), 'w', 3 as unknown as ParamOptions)).toThrow(OptimTypeError);
    expect(() => param(new Float64Array(2), 'w', 3 as unknown as ParamOptions)).toThrow(/param\(data, name, options\): options must be an object, got number/);
    expect(() => param(new Float64Array(2), 'w', { dims: [2] } as unknown as ParamOptions)).toThrow(/unknown option "dims" \(known options: shape\)/);
  });
});

describe('paramArena with shapes', () => {
  it('gives params those shapes (numbers: vectors), every data and grad a view into one buffer, in order', () => {
    const { w, b, e } = paramArena({ w: [784, 128], b: 128, e: [3, 2, 5] }, { dtype: 'float64' });
    expect([w.shape, b.shape, e.shape]).toEqual([[784, 128], [128], [3, 2, 5]]);
    expect([w.data.length, b.data.length, e.data.length]).toEqual([784 * 128, 128, 30]);
    for (const p of [w, b, e]) {
      expect(p.data).toBeInstanceOf(Float64Array);
      expect(Object.isFrozen(p.shape)).toBe(true);
      expect(p.grad.length).toBe(p.data.length);
    }
    expect(w.data.buffer).toBe(b.data.buffer);
    expect(b.data.byteOffset).toBe(784 * 128 * 8);
    expect(e.data.byteOffset).toBe((784 * 128 + 128) * 8);
    expect(e.grad.buffer).toBe(w.grad.buffer);
    expect(w.data.every((x) => x === 0)).toBe(true);
  });

  it('keeps taking lengths, 0 included (shape [0]), and float32 by default', () => {
    const { a, z } = paramArena({ a: 3, z: 0 });
    expect([a.shape, z.shape]).toEqual([[3], [0]]);
    expect(a.data).toBeInstanceOf(Float32Array);
  });

  it.each([
    ['a zero dim', { w: [0, 3] }, OptimRangeError, /paramArena: sizes\.w\[0\] must be a positive integer, got 0/],
    ['a string dim', { w: [2, 'x'] }, OptimTypeError, /paramArena: sizes\.w\[1\] must be a number, got string/],
    ['a negative length', { w: -1 }, OptimRangeError, /paramArena: sizes\.w must be an integer >= 0 \(a length\) or an array of positive integers \(a shape\), got -1/],
    ['a string', { w: '3' }, OptimRangeError, /sizes\.w must be an integer >= 0/],
  ])('refuses %s, naming it', (_n, sizes, cls, message) => {
    const err = errorOf(() => paramArena(sizes as never));
    expect(err).toBeInstanceOf(cls);
    expect((err as Error).message).toMatch(message);
  });
});

describe.each(backendRows)('elementwise optimizers ignore shapes (%s backend)', (_name, backend) => {
  useBackend(backend);

  it('Adam and SGD step a shaped param as the same param unshaped, bit for bit, with the same state dict', () => {
    const makers = [
      (p: ReturnType<typeof param>) => new Adam([p], { lr: 0.01 }),
      (p: ReturnType<typeof param>) => new SGD([p], { lr: 0.01, momentum: 0.9 }),
    ];
    for (const make of makers) {
      const shaped = param(Float64Array.from({ length: 12 }, (_, i) => Math.sin(i)), 'w', { shape: [3, 4] });
      const flat = param(Float64Array.from({ length: 12 }, (_, i) => Math.sin(i)), 'w');
      const a = make(shaped);
      const b = make(flat);
      for (let t = 0; t < 5; t++) {
        for (const p of [shaped, flat]) for (let i = 0; i < 12; i++) p.grad[i] = Math.cos(i + t);
        a.step();
        b.step();
      }
      expect(bytesOf(shaped.data)).toEqual(bytesOf(flat.data));
      expect(a.stateDict()).toEqual(b.stateDict());
    }
  });
});

describe('checkpoints carry shapes', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'optim-shapes-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  let n = 0;
  const fresh = () => path.join(dir, `c${n++}.safetensors`);

  async function header(file: string): Promise<Record<string, { shape: number[] }>> {
    const bytes = await readFile(file);
    const len = Number(bytes.readBigUInt64LE(0));
    return JSON.parse(bytes.subarray(8, 8 + len).toString('utf8'));
  }

  it('a param is written with its shape, an array as [length]; loading returns the tensors flat and their shapes', async () => {
    const w = param(Float32Array.from({ length: 24 }, (_, i) => i / 7), 'w', { shape: [6, 4] });
    const b = param(Float64Array.of(1, 2, 3, 4), 'b');
    const raw = Float64Array.of(5, 6);
    const opt = new Adam([w, b], { lr: 0.1 });
    w.grad.fill(0.5);
    b.grad.fill(-1);
    opt.step();
    const file = fresh();
    await saveCheckpoint(file, { tensors: { w, b, raw }, optimizer: opt.stateDict() });
    const h = await header(file);
    expect(h.w.shape).toEqual([6, 4]);
    expect(h.b.shape).toEqual([4]);
    expect(h.raw.shape).toEqual([2]);
    const loaded = await loadCheckpoint(file);
    expect(loaded.shapes).toEqual({ w: [6, 4], b: [4], raw: [2] });
    expect(bytesOf(loaded.tensors.w)).toEqual(bytesOf(w.data));
    expect(loaded.tensors.w.length).toBe(24);
    expect(bytesOf(loaded.optimizer!.state.w.expAvg as Float32Array)).toEqual(bytesOf(opt.stateDict().state.w.expAvg as Float32Array));
  });

  it('into: a param of the same shape, or a plain array, or a param from a one-dim file; another shape is refused with nothing written', async () => {
    const w = param(Float64Array.from({ length: 6 }, (_, i) => i + 1), 'w', { shape: [2, 3] });
    const file = fresh();
    await saveCheckpoint(file, { tensors: { w } });

    const same = param(new Float64Array(6), 'w', { shape: [2, 3] });
    await loadCheckpoint(file, { into: { tensors: { w: same } } });
    expect(Array.from(same.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const plain = new Float64Array(6);
    await loadCheckpoint(file, { into: { tensors: { w: plain } } });
    expect(Array.from(plain)).toEqual([1, 2, 3, 4, 5, 6]);

    for (const other of [param(new Float64Array(6), 'w', { shape: [3, 2] }), param(new Float64Array(6), 'w')]) {
      const err = await loadCheckpoint(file, { into: { tensors: { w: other } } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CheckpointError);
      expect((err as Error).message).toMatch(new RegExp(`"w" has shape \\[2, 3\\] in the file but \\[${other.shape.join(', ')}\\] here`));
      expect(other.data.every((x) => x === 0)).toBe(true);
    }

    const flatFile = fresh();
    await saveCheckpoint(flatFile, { tensors: { w: w.data } });
    const target = param(new Float64Array(6), 'w', { shape: [3, 2] });
    await loadCheckpoint(flatFile, { into: { tensors: { w: target } } });
    expect(Array.from(target.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a tensor whose shape does not describe its data, before writing', async () => {
    const file = fresh();
    const cases: Array<[unknown, typeof OptimTypeError | typeof OptimRangeError, RegExp]> = [
      [{ data: new Float64Array(6), shape: [4, 2] }, OptimRangeError, /tensors\["w"\]\.shape \[4,2\] holds 8 elements but saveCheckpoint: tensors\["w"\]\.data has length 6/],
      [{ data: new Float64Array(6), shape: [2, -3] }, OptimRangeError, /tensors\["w"\]\.shape \[2,-3\] must hold whole numbers >= 0/],
      [{ data: new Float64Array(6), shape: '2x3' }, OptimTypeError, /tensors\["w"\]\.shape must be an array of whole numbers/],
      [{ data: [1, 2], shape: [2] }, OptimTypeError, /tensors\["w"\]\.data must be a Float32Array or Float64Array, got Array/],
    ];
    for (const [w, cls, message] of cases) {
      const err = await saveCheckpoint(file, { tensors: { w } as never }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(cls);
      expect((err as Error).message).toMatch(message);
    }
    await expect(readFile(file)).rejects.toThrow(/ENOENT/);
  });
});
