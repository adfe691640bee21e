/**
 * The IDX format of MNIST and Fashion-MNIST, plain or gzipped:
 *
 * ```
 * offset 0  u8 0, u8 0             magic: two zero bytes
 *        2  u8 type                0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
 *        3  u8 ndims
 *        4  u32 dims[ndims]        big-endian
 *   4+4·ndims  the values          big-endian, row-major (last dimension fastest)
 * ```
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { OptimRangeError, OptimTypeError } from '../errors.js';

export type IdxDType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A parsed IDX file: its element type, its shape and the values in native byte order. */
export interface IdxArray {
  dtype: IdxDType;
  shape: number[];
  data: IdxData;
}

const TYPES: Record<number, { dtype: IdxDType; bytes: number }> = {
  0x08: { dtype: 'uint8', bytes: 1 },
  0x09: { dtype: 'int8', bytes: 1 },
  0x0b: { dtype: 'int16', bytes: 2 },
  0x0c: { dtype: 'int32', bytes: 4 },
  0x0d: { dtype: 'float32', bytes: 4 },
  0x0e: { dtype: 'float64', bytes: 8 },
};

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses IDX bytes, gunzipping them first when they start with the gzip magic. `source` names
 * the input in error messages. Values of one byte are returned as a view on the (unzipped)
 * bytes, wider ones as a new array converted from big-endian. Throws OptimRangeError for a
 * corrupt gzip stream, a bad magic or type code, a truncated header or body, or extra bytes.
 */
export function parseIdx(bytes: Uint8Array, source = 'IDX data'): IdxArray {
  if (!(bytes instanceof Uint8Array)) {
    throw new OptimTypeError(`parseIdx(bytes): bytes must be a Uint8Array or Buffer, got ${typeof bytes}`);
  }
  let raw = bytes;
  if (isGzip(bytes)) {
    try {
      raw = zlib.gunzipSync(bytes);
    } catch (e) {
      throw new OptimRangeError(`${source}: not a valid gzip stream (${(e as Error).message})`);
    }
  }
  if (raw.length < 4) throw new OptimRangeError(`${source}: truncated IDX header (${raw.length} bytes, need at least 4)`);
  if (raw[0] !== 0 || raw[1] !== 0) {
    throw new OptimRangeError(
      `${source}: bad IDX magic 0x${hex(raw, 0, 4)} (the first two bytes must be 0; is this an IDX file?)`,
    );
  }
  const type = TYPES[raw[2]];
  if (type === undefined) {
    throw new OptimRangeError(`${source}: unknown IDX type code 0x${raw[2].toString(16).padStart(2, '0')} (expected 08, 09, 0b, 0c, 0d or 0e)`);
  }
  const ndims = raw[3];
  if (ndims === 0) throw new OptimRangeError(`${source}: IDX header declares 0 dimensions`);
  const headerBytes = 4 + 4 * ndims;
  if (raw.length < headerBytes) {
    throw new OptimRangeError(`${source}: truncated IDX header (${raw.length} bytes, ${ndims} dimensions need ${headerBytes})`);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let d = 0; d < ndims; d++) {
    const n = view.getUint32(4 + 4 * d, false);
    shape.push(n);
    count *= n;
  }
  const bodyBytes = count * type.bytes;
  const got = raw.length - headerBytes;
  if (got < bodyBytes) {
    throw new OptimRangeError(
      `${source}: truncated IDX body: shape [${shape.join(', ')}] of ${type.dtype} needs ${bodyBytes} bytes, got ${got}`,
    );
  }
  if (got > bodyBytes) {
    throw new OptimRangeError(
      `${source}: ${got - bodyBytes} bytes after the IDX body (shape [${shape.join(', ')}] of ${type.dtype} takes ${bodyBytes})`,
    );
  }
  return { dtype: type.dtype, shape, data: decode(view, headerBytes, count, type.dtype, raw) };
}

/** The multi-byte dtypes: the array each decodes to, its element size, and its big-endian read. */
const WIDE = {
  int16: { Out: Int16Array, bytes: 2, read: (v: DataView, at: number) => v.getInt16(at, false) },
  int32: { Out: Int32Array, bytes: 4, read: (v: DataView, at: number) => v.getInt32(at, false) },
  float32: { Out: Float32Array, bytes: 4, read: (v: DataView, at: number) => v.getFloat32(at, false) },
  float64: { Out: Float64Array, bytes: 8, read: (v: DataView, at: number) => v.getFloat64(at, false) },
} as const;

function decode(view: DataView, offset: number, count: number, dtype: IdxDType, raw: Uint8Array): IdxData {
  if (dtype === 'uint8') return new Uint8Array(raw.buffer, raw.byteOffset + offset, count);
  if (dtype === 'int8') return new Int8Array(raw.buffer, raw.byteOffset + offset, count);
  const { Out, bytes, read } = WIDE[dtype];
  const out = new Out(count);
  for (let i = 0; i < count; i++) out[i] = read(view, offset + bytes * i);
  return out;
}

function hex(b: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < Math.min(to, b.length); i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

/** Reads and parses an IDX file (`.gz` or plain: the content decides). */
export function readIdx(file: string): IdxArray {
  if (typeof file !== 'string' || file === '') {
    throw new OptimTypeError(`readIdx(file): file must be a non-empty path string, got ${JSON.stringify(file)}`);
  }
  return parseIdx(fs.readFileSync(file), file);
}
