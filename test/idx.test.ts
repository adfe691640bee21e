import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { parseIdx, readIdx } from '../src/data/idx.js';
import { hasFashionMnist, loadFashionMnist, scalePixels, syntheticFashionMnist } from '../src/data/fashion-mnist.js';
import { OptimRangeError, OptimTypeError } from '../src/errors.js';

/** An IDX file: magic 0 0 type ndims, big-endian u32 dims, then `body`. */
function idx(type: number, dims: number[], body: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, body]);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'optim-idx-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('parseIdx', () => {
  it('reads uint8 images, plain and gzipped', () => {
    const body = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);
    const raw = idx(0x08, [2, 3, 4], body);
    for (const bytes of [raw, zlib.gzipSync(raw)]) {
      const a = parseIdx(bytes);
      expect(a.dtype).toBe('uint8');
      expect(a.shape).toEqual([2, 3, 4]);
      expect(a.data).toBeInstanceOf(Uint8Array);
      expect(Array.from(a.data)).toEqual(Array.from(body));
    }
  });

  it('converts wider types from big-endian', () => {
    const i16 = Buffer.alloc(4);
    i16.writeInt16BE(-2, 0);
    i16.writeInt16BE(300, 2);
    expect(Array.from(parseIdx(idx(0x0b, [2], i16)).data)).toEqual([-2, 300]);
    const i32 = Buffer.alloc(8);
    i32.writeInt32BE(-70000, 0);
    i32.writeInt32BE(123456789, 4);
    expect(Array.from(parseIdx(idx(0x0c, [2], i32)).data)).toEqual([-70000, 123456789]);
    const f32 = Buffer.alloc(4);
    f32.writeFloatBE(1.5, 0);
    const a = parseIdx(idx(0x0d, [1, 1], f32));
    expect(a).toMatchObject({ dtype: 'float32', shape: [1, 1] });
    expect(a.data[0]).toBe(1.5);
    const f64 = Buffer.alloc(8);
    f64.writeDoubleBE(-0.1, 0);
    expect(parseIdx(idx(0x0e, [1], f64)).data[0]).toBe(-0.1);
    expect(Array.from(parseIdx(idx(0x09, [2], Uint8Array.from([255, 1]))).data)).toEqual([-1, 1]);
  });

  it('refuses a bad magic, an unknown type, and truncated or overlong files', () => {
    const good = idx(0x08, [2, 2], Uint8Array.from([1, 2, 3, 4]));
    const badMagic = Buffer.from(good);
    badMagic[0] = 0x42;
    expect(() => parseIdx(badMagic, 'x.idx')).toThrow(/x.idx: bad IDX magic 0x42000802/);
    const badType = Buffer.from(good);
    badType[2] = 0x07;
    expect(() => parseIdx(badType)).toThrow(/unknown IDX type code 0x07/);
    expect(() => parseIdx(good.subarray(0, 3))).toThrow(/truncated IDX header \(3 bytes/);
    expect(() => parseIdx(good.subarray(0, 9))).toThrow(/truncated IDX header \(9 bytes, 2 dimensions need 12\)/);
    expect(() => parseIdx(good.subarray(0, 14))).toThrow(/truncated IDX body: shape \[2, 2\] of uint8 needs 4 bytes, got 2/);
    expect(() => parseIdx(Buffer.concat([good, Buffer.from([0])]))).toThrow(/1 bytes after the IDX body/);
    expect(() => parseIdx(zlib.gzipSync(good).subarray(0, 20))).toThrow(OptimRangeError);
    expect(() => parseIdx(idx(0x08, [], new Uint8Array(0)))).toThrow(/0 dimensions/);
    expect(() => parseIdx('abc' as unknown as Uint8Array)).toThrow(OptimTypeError);
  });

  it('readIdx reads a gzipped file and names it in errors', () => {
    const file = path.join(tmp, 'labels.gz');
    fs.writeFileSync(file, zlib.gzipSync(idx(0x08, [3], Uint8Array.from([7, 8, 9]))));
    expect(Array.from(readIdx(file).data)).toEqual([7, 8, 9]);
    const broken = path.join(tmp, 'broken');
    fs.writeFileSync(broken, Buffer.from([1, 2, 3, 4, 5]));
    expect(() => readIdx(broken)).toThrow(new RegExp(`${broken.replace(/[/\\]/g, '.')}: bad IDX magic`));
  });
});

describe('loadFashionMnist', () => {
  /** Four small files in Fashion-MNIST's layout: n images of 28×28. */
  function writeSet(dir: string, nTrain: number, nTest: number, gzip = true): void {
    fs.mkdirSync(dir, { recursive: true });
    const put = (name: string, data: Buffer) => fs.writeFileSync(path.join(dir, gzip ? `${name}.gz` : name), gzip ? zlib.gzipSync(data) : data);
    const images = (n: number) => idx(0x08, [n, 28, 28], Uint8Array.from({ length: n * 784 }, (_, i) => i % 256));
    const labels = (n: number) => idx(0x08, [n], Uint8Array.from({ length: n }, (_, i) => i % 10));
    put('train-images-idx3-ubyte', images(nTrain));
    put('train-labels-idx1-ubyte', labels(nTrain));
    put('t10k-images-idx3-ubyte', images(nTest));
    put('t10k-labels-idx1-ubyte', labels(nTest));
  }

  it('reads the four files from a folder, gzipped or not', () => {
    for (const gzip of [true, false]) {
      const dir = path.join(tmp, `set-${gzip}`);
      writeSet(dir, 12, 5, gzip);
      expect(hasFashionMnist(dir)).toBe(true);
      const d = loadFashionMnist({ dir });
      expect(d).toMatchObject({ source: 'files', dir, notice: null, features: 784 });
      expect(d.train.count).toBe(12);
      expect(d.test.count).toBe(5);
      expect(d.train.images.length).toBe(12 * 784);
      expect(Array.from(d.test.labels)).toEqual([0, 1, 2, 3, 4]);
    }
  });

  it('refuses a named folder without the files, and mismatched files', () => {
    expect(() => loadFashionMnist({ dir: path.join(tmp, 'nothing') })).toThrow(/does not hold the Fashion-MNIST IDX files/);
    const dir = path.join(tmp, 'mismatch');
    writeSet(dir, 4, 2);
    fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), zlib.gzipSync(idx(0x08, [3], Uint8Array.from([0, 1, 2]))));
    expect(() => loadFashionMnist({ dir })).toThrow(/has 4 images but .* has 3 labels/);
    fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), zlib.gzipSync(idx(0x08, [4], Uint8Array.from([0, 1, 2, 10]))));
    expect(() => loadFashionMnist({ dir })).toThrow(/label 10 at index 3 is not a class 0..9/);
  });

  it('the synthetic stand-in is seeded, shaped like the real set, and says what it is', () => {
    const a = syntheticFashionMnist({ seed: 3, train: 50, test: 20 });
    const b = syntheticFashionMnist({ seed: 3, train: 50, test: 20 });
    const c = syntheticFashionMnist({ seed: 4, train: 50, test: 20 });
    expect(a.source).toBe('synthetic');
    expect(a.notice).toMatch(/synthetic/);
    expect(a.train.images.length).toBe(50 * 784);
    expect(Buffer.from(a.train.images).equals(Buffer.from(b.train.images))).toBe(true);
    expect(Buffer.from(a.train.images).equals(Buffer.from(c.train.images))).toBe(false);
    expect(Math.max(...a.train.labels)).toBeLessThan(10);
    expect(loadFashionMnist({ synthetic: 'always' }).source).toBe('synthetic');
  });

  it('scalePixels divides by 255 (as numpy does) and selects rows', () => {
    const images = Uint8Array.from([0, 51, 255, 1, 2, 3]);
    expect(Array.from(scalePixels(images, { dtype: 'float64', features: 3 }))).toEqual([0, 51 / 255, 1, 1 / 255, 2 / 255, 3 / 255]);
    expect(Array.from(scalePixels(images, { dtype: 'float64', features: 3, rows: [1] }))).toEqual([1 / 255, 2 / 255, 3 / 255]);
    expect(scalePixels(images, { features: 3 })).toBeInstanceOf(Float32Array);
    expect(() => scalePixels(images, { features: 4 })).toThrow(/must divide images.length/);
    expect(() => scalePixels(images, { features: 3, rows: [2] })).toThrow(/options.rows\[0\] = 2 is not an image index in 0..1/);
  });
});
