/**
 * Checkpoints: named tensors, an optimizer's state dict and string metadata in one file, in the
 * safetensors layout, so Python tools (`safetensors.safe_open`, or `struct` + `json`) read it:
 *
 * ```
 * offset 0    u64 N             little-endian: the header length, a multiple of 8
 *        8    N bytes           UTF-8 JSON, padded with trailing spaces:
 *                               { "__metadata__": { string: string },
 *                                 "<name>": { "dtype": "F32"|"F64"|"BF16", "shape": [...], "data_offsets": [begin, end] }, ... }
 *        8+N  the tensors       raw little-endian values; offsets are relative to 8+N, contiguous,
 *                               in header order, covering the rest of the file exactly
 * ```
 *
 * Decisions:
 * - A model tensor given as an array is written one-dimensional (`shape: [length]`); one given
 *   with its dims (a param, `{ data, shape }`) is written with that shape (`[784, 128]`), so
 *   Python sees the matrix. The Float64 ones come first, so every tensor starts 8-byte aligned
 *   and loads as a view into the buffer holding the file (no copy), flat (row-major), its shape
 *   in `shapes`. A foreign file loads too: misaligned tensors copied, header entries in any
 *   order (checked by offset, as safetensors does); a dtype other than F32/F64 is refused with
 *   the tensor named.
 * - The optimizer state is walked generically (any state dict: an optimizer's, Newton's, a
 *   scheduler's, or an object holding several). Each Float32Array/Float64Array in it becomes a
 *   tensor (and each Uint16Array, bfloat16 state, a "BF16" one, written after the others) named
 *   `optim.<i>.<path>`: the index `i` (walk order) makes the name unique whatever
 *   the path holds (parameter names may contain dots); the path is only there for a human.
 *   The rest is `__metadata__["optim.optimizer"]`: the state dict as JSON where a tensor is
 *   `{"$tensor": "<name>"}`, a number JSON cannot hold is `{"$number": "NaN"|"Infinity"|
 *   "-Infinity"|"-0"}`, `undefined` is `{"$undefined": true}`, and an object key starting with
 *   `$` gets one more `$`. Hyperparameters and step counts are thus readable in the metadata.
 * - Our metadata keys start with `optim.`: `optim.format` (`optim-checkpoint/1`),
 *   `optim.version` (the library version), `optim.optimizer` (when given) and
 *   `optim.checksum`. User metadata keys and tensor names may not start with `optim.`.
 * - `optim.checksum` is `sha256:<hex>` over the whole file as written with the hex replaced by
 *   64 zeros; so a change to any byte (length prefix, header, padding, data) is caught. A file
 *   without it (written by another tool) is refused unless `requireChecksum: false`; a file
 *   with `optim.format` always needs it.
 * - Writing goes to `.<name>.<pid>-<random>.tmp` in the target's directory; the temp file is
 *   fsynced, renamed over the target, and the directory fsynced. A crash leaves the old file
 *   whole, and perhaps a temp file: never mistaken for the checkpoint, and refused if loaded
 *   (truncated, or its checksum still the zeros placeholder). Nothing removes stale temp files,
 *   since another process may be writing one.
 *   The data is copied through a small buffer, hashed and written chunk by chunk, so a large
 *   tensor is never copied whole and the file matches its checksum even if a tensor were
 *   changed during the write (do not: the checkpoint would mix old and new values).
 * - Errors opening, reading or writing files are the `fs` errors (`ENOENT`, ...) unchanged;
 *   a file whose content cannot be used is a CheckpointError naming it and what is wrong.
 * - The host must be little-endian (every platform Node supports in practice).
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { FloatArray } from './backend/types.js';
import { CheckpointError, OptimRangeError, OptimTypeError } from './errors.js';
import type { StateDict } from './optim/optimizer.js';
import { checkBoolean, checkFloatArray, checkKnownKeys, describe, isDetached, isFloatArray, isPlainObject } from './validate.js';
import { VERSION } from './version.js';

/**
 * A tensor with its dims, row-major (a `Param` is one): written with that shape, and checked
 * against the file's shape when loaded into.
 */
export interface ShapedTensor {
  data: FloatArray;
  shape: readonly number[];
}

/** A model tensor of a checkpoint: a flat array (shape `[length]`), or one with its dims. */
export type CheckpointTensor = FloatArray | ShapedTensor;

/** What `saveCheckpoint` writes. Every field may be omitted. */
export interface Checkpoint {
  /**
   * Model tensors by name (not empty, not starting with `optim.`): arrays, or params (anything
   * `{ data, shape }`) whose shape the file records.
   */
  tensors?: Record<string, CheckpointTensor>;
  /** A state dict: `opt.stateDict()`, or an object holding several (`{ opt, sched }`). */
  optimizer?: object;
  /** Strings by key (not starting with `optim.`). */
  metadata?: Record<string, string>;
}

/**
 * What `loadCheckpoint` returns. The tensors (also those inside `optimizer`) are views into the
 * one ArrayBuffer holding the file: keeping any of them keeps the whole file in memory.
 */
export interface LoadedCheckpoint<S = StateDict> {
  /** The model tensors, flat (row-major). */
  tensors: Record<string, FloatArray>;
  /** The shape the file records for each of `tensors` (`[length]` for one saved as an array). */
  shapes: Record<string, number[]>;
  /** The saved state dict, rebuilt (same dtypes, same numbers); undefined when none was saved. */
  optimizer: S | undefined;
  /** The user metadata; for a file of another tool, all of its `__metadata__`. */
  metadata: Record<string, string>;
}

export interface LoadCheckpointOptions {
  /**
   * Refuse a file without `optim.checksum` (default true). Set false to load plain safetensors
   * from another tool; a file with `optim.format` is always checked.
   */
  requireChecksum?: boolean;
  /**
   * Restore in place: every tensor of the file is copied into the tensor of the same name and
   * `optimizer.loadStateDict(saved)` is called. Names, dtypes and lengths must all match (the
   * file may hold no tensor missing from `tensors`, and no more), and so must the shapes where
   * both sides have one: a target given with its dims (a param) against a file shape of more
   * than one dim (a one-dim file shape, as an array is saved, fits any shape of its length);
   * everything is checked before anything is written, and a mismatch is a CheckpointError
   * listing each difference.
   */
  into?: {
    tensors?: Record<string, CheckpointTensor>;
    optimizer?: { loadStateDict(stateDict: never): unknown };
  };
}

const FORMAT = 'optim-checkpoint/1';
const RESERVED = 'optim.';
const KEY_FORMAT = 'optim.format';
const KEY_VERSION = 'optim.version';
const KEY_OPTIMIZER = 'optim.optimizer';
const KEY_CHECKSUM = 'optim.checksum';
const HEX_ZEROS = '0'.repeat(64);
/** The checksum as JSON.stringify writes it; the 64 hex digits follow. */
const CHECKSUM_NEEDLE = Buffer.from(`${JSON.stringify(KEY_CHECKSUM)}:"sha256:`, 'latin1');
/** The limit of the safetensors reader: a larger header is refused before it is parsed. */
const MAX_HEADER = 100_000_000;
const CHUNK = 1 << 22;
const TAGS = ['$tensor', '$number', '$undefined'];

/** F32 and F64 tensors; BF16 (Uint16Array bit patterns) only inside a saved optimizer state. */
type Dtype = 'F32' | 'F64' | 'BF16';
const DTYPE_BYTES: Readonly<Record<Dtype, number>> = { F64: 8, F32: 4, BF16: 2 };
/** A tensor of a saved state dict: float, or bfloat16 state (`stateDtype: 'bfloat16'`). */
type StateTensor = FloatArray | Uint16Array;
const dtypeOf = (t: StateTensor): Dtype => (t instanceof Float64Array ? 'F64' : t instanceof Float32Array ? 'F32' : 'BF16');

interface Entry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Writes a checkpoint atomically: after the promise resolves the file at `path` is the new
 * checkpoint, durably; if the process dies before, it is the old one (or absent).
 *
 * ```ts
 * const opt = new Adam([w, b], { lr: 1e-3 });
 * await saveCheckpoint('run/ckpt.safetensors', {
 *   tensors: { w, b },             // params: saved with their shapes (or w.data: flat)
 *   optimizer: opt.stateDict(),
 *   metadata: { epoch: '12' },
 * });
 * // later, into a fresh model and optimizer:
 * const { metadata } = await loadCheckpoint('run/ckpt.safetensors', {
 *   into: { tensors: { w: w2, b: b2 }, optimizer: opt2 },
 * });
 * ```
 *
 * Arguments are checked before the disk is touched (OptimTypeError, OptimRangeError).
 */
export async function saveCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  if (typeof path !== 'string' || path === '') {
    throw new OptimTypeError(`saveCheckpoint(path): path must be a non-empty string, got ${path === '' ? 'an empty string' : describe(path)}`);
  }
  checkHost(path);
  const { header, checksumAt, tensors, dataBytes } = prepare(checkpoint);
  const target = resolve(path);
  const dir = dirname(target);
  const tmp = join(dir, `.${basename(target)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  let fh: FileHandle | undefined = await open(tmp, 'wx');
  try {
    const hash = createHash('sha256');
    hash.update(header);
    await writeAll(fh, header, 0);
    let pos = header.length;
    const scratch = Buffer.allocUnsafe(Math.min(CHUNK, dataBytes));
    for (const [name, t] of tensors) {
      if (isDetached(t)) throw new OptimRangeError(`saveCheckpoint: tensor ${name} was detached during the write`);
      const bytes = new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
      for (let off = 0; off < bytes.length; off += CHUNK) {
        const n = Math.min(CHUNK, bytes.length - off);
        scratch.set(bytes.subarray(off, off + n));
        const chunk = scratch.subarray(0, n);
        hash.update(chunk);
        await writeAll(fh, chunk, pos);
        pos += n;
      }
    }
    if (pos !== header.length + dataBytes) {
      throw new OptimRangeError(`saveCheckpoint: a tensor changed length during the write (${pos - header.length} bytes written, ${dataBytes} planned)`);
    }
    header.write(hash.digest('hex'), checksumAt, 'latin1');
    await writeAll(fh, header.subarray(checksumAt, checksumAt + 64), checksumAt);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, target);
  } catch (e) {
    if (fh !== undefined) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dir);
}

/**
 * Reads a checkpoint written by `saveCheckpoint` (or, with `requireChecksum: false`, any
 * safetensors file of F32/F64 tensors). Verifies the layout and the checksum; a truncated,
 * corrupted or malformed file is a CheckpointError naming the file and the fault. With `into`,
 * restores a model and optimizer in place (see LoadCheckpointOptions).
 *
 * The type `S` of the state dict is not checked here; `loadStateDict` checks it.
 */
export async function loadCheckpoint<S = StateDict>(path: string, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint<S>> {
  if (typeof path !== 'string' || path === '') {
    throw new OptimTypeError(`loadCheckpoint(path): path must be a non-empty string, got ${path === '' ? 'an empty string' : describe(path)}`);
  }
  const { requireChecksum, into } = checkLoadOptions(options);
  checkHost(path);
  const bytes = await readWhole(path, failer(path));
  const loaded = parse(bytes, path, requireChecksum);
  if (into !== undefined) restore(loaded, into, path);
  return loaded as LoadedCheckpoint<S>;
}

function checkHost(path: string): void {
  if (endianness() !== 'LE') throw new CheckpointError(`checkpoints need a little-endian host (${path})`, path);
}

/** A key set with define, so that a name such as `__proto__` stays an ordinary own key. */
function setOwn(o: object, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A tensor to write or load into: a Float32Array or Float64Array whose buffer is still there. */
function checkTensor(v: unknown, where: string): asserts v is FloatArray {
  if (isDetached(checkFloatArray(v, where))) throw new OptimRangeError(`${where} is detached (its buffer was transferred)`);
}

/**
 * A model tensor: an array (shape undefined: `[length]` when written), or `{ data, shape }` (a
 * param) with dims of whole numbers whose product is data.length.
 */
function modelTensor(v: unknown, where: string): { data: FloatArray; shape: number[] | undefined } {
  if (isFloatArray(v) || v === null || typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v)) {
    checkTensor(v, where);
    return { data: v, shape: undefined };
  }
  const { data, shape } = v as Record<string, unknown>;
  checkTensor(data, `${where}.data`);
  if (!Array.isArray(shape)) {
    throw new OptimTypeError(`${where}.shape must be an array of whole numbers (the dims, row-major), got ${describe(shape)}`);
  }
  if (!shape.every(isIndex)) throw new OptimRangeError(`${where}.shape ${JSON.stringify(shape)} must hold whole numbers >= 0`);
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new OptimRangeError(`${where}.shape ${JSON.stringify(shape)} holds ${count} elements but ${where}.data has length ${data.length}`);
  }
  return { data, shape: [...(shape as number[])] };
}

interface Prepared {
  /** Length prefix and padded header, with the checksum hex as zeros at `checksumAt`. */
  header: Buffer;
  checksumAt: number;
  tensors: Array<[string, StateTensor]>;
  dataBytes: number;
}

/** A tensor to write: its name, values and, when it has one, its shape (else `[length]`). */
type Writable = [string, StateTensor, number[]?];

function prepare(checkpoint: Checkpoint): Prepared {
  const where = 'saveCheckpoint(path, checkpoint)';
  if (!isPlainObject(checkpoint)) {
    throw new OptimTypeError(`${where}: checkpoint must be an object { tensors, optimizer, metadata }, got ${describe(checkpoint)}`);
  }
  checkKnownKeys(checkpoint, ['tensors', 'optimizer', 'metadata'], where, false, 'key');
  const { tensors = {}, optimizer, metadata = {} } = checkpoint;
  const list: Writable[] = [];
  if (!isPlainObject(tensors)) throw new OptimTypeError(`${where}: tensors must be an object of named tensors, got ${describe(tensors)}`);
  for (const [name, t] of Object.entries(tensors)) {
    const label = `saveCheckpoint: tensors[${JSON.stringify(name)}]`;
    if (name === '') throw new OptimRangeError(`saveCheckpoint: a tensor name is empty`);
    if (name.startsWith(RESERVED) || name === '__metadata__') {
      throw new OptimRangeError(`${label}: the names "__metadata__" and "${RESERVED}*" are reserved for the checkpoint itself`);
    }
    const { data, shape } = modelTensor(t, label);
    list.push([name, data, shape]);
  }
  if (!isPlainObject(metadata)) throw new OptimTypeError(`${where}: metadata must be an object of strings, got ${describe(metadata)}`);
  const meta: Array<[string, string]> = [];
  for (const [key, v] of Object.entries(metadata)) {
    const label = `saveCheckpoint: metadata[${JSON.stringify(key)}]`;
    if (key.startsWith(RESERVED)) throw new OptimRangeError(`${label}: keys starting with "${RESERVED}" are reserved for the checkpoint itself`);
    if (typeof v !== 'string') throw new OptimTypeError(`${label} must be a string (safetensors metadata holds strings), got ${describe(v)}`);
    meta.push([key, v]);
  }
  meta.push([KEY_FORMAT, FORMAT], [KEY_VERSION, VERSION]);
  if (optimizer !== undefined) {
    if (!isPlainObject(optimizer)) {
      throw new OptimTypeError(`${where}: optimizer must be a state dict (a plain object, as from stateDict()), got ${kind(optimizer)}`);
    }
    const own: Array<[string, StateTensor]> = [];
    const skeleton = encode(optimizer, [], own, new Set());
    list.push(...own);
    meta.push([KEY_OPTIMIZER, JSON.stringify(skeleton)]);
  }
  meta.push([KEY_CHECKSUM, `sha256:${HEX_ZEROS}`]);

  // Widest first: every offset stays a multiple of its element size (the data section starts at a
  // multiple of 8).
  const ordered = (['F64', 'F32', 'BF16'] as const).flatMap((d) => list.filter(([, t]) => dtypeOf(t) === d));
  const parts = [`"__metadata__":{${meta.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`];
  let offset = 0;
  for (const [name, t, shape] of ordered) {
    const dtype = dtypeOf(t);
    parts.push(`${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${(shape ?? [t.length]).join(',')}],"data_offsets":[${offset},${offset + t.byteLength}]}`);
    offset += t.byteLength;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const n = Math.ceil(json.length / 8) * 8;
  const header = Buffer.alloc(8 + n, 0x20);
  header.writeBigUInt64LE(BigInt(n), 0);
  json.copy(header, 8);
  return {
    header,
    checksumAt: 8 + json.indexOf(CHECKSUM_NEEDLE) + CHECKSUM_NEEDLE.length,
    tensors: ordered.map(([name, t]): [string, StateTensor] => [name, t]),
    dataBytes: offset,
  };
}

/** `describe`, with the class of an object that is not a plain one (Map, Date). */
function kind(v: unknown): string {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && !isPlainObject(v)) {
    return (v as { constructor?: { name?: string } }).constructor?.name ?? 'object';
  }
  return describe(v);
}

function showPath(path: ReadonlyArray<string | number>): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join('');
}

/** The JSON skeleton of a state dict; its tensors are appended to `out`. */
function encode(v: unknown, path: Array<string | number>, out: Array<[string, StateTensor]>, visiting: Set<object>): unknown {
  if (typeof v === 'number') {
    if (Number.isFinite(v) && !Object.is(v, -0)) return v;
    return { $number: Object.is(v, -0) ? '-0' : String(v) };
  }
  if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v;
  if (v === undefined) return { $undefined: true };
  const where = `saveCheckpoint: optimizer${showPath(path)}`;
  if (isFloatArray(v) || v instanceof Uint16Array) {
    if (v instanceof Uint16Array) {
      if (isDetached(v)) throw new OptimRangeError(`${where} is detached (its buffer was transferred)`);
    } else {
      checkTensor(v, where);
    }
    const name = `${RESERVED}${out.length}${path.map((p) => `.${p}`).join('')}`;
    out.push([name, v]);
    return { $tensor: name };
  }
  if (Array.isArray(v) || isPlainObject(v)) {
    if (visiting.has(v)) throw new OptimTypeError(`${where} refers back to itself (a cycle cannot be saved)`);
    visiting.add(v);
    let result: unknown;
    if (Array.isArray(v)) {
      const arr: unknown[] = [];
      for (let i = 0; i < v.length; i++) arr.push(encode(v[i], [...path, i], out, visiting));
      result = arr;
    } else {
      const obj = {};
      for (const [k, x] of Object.entries(v)) setOwn(obj, k.startsWith('$') ? `$${k}` : k, encode(x, [...path, k], out, visiting));
      result = obj;
    }
    visiting.delete(v);
    return result;
  }
  throw new OptimTypeError(
    `${where} is of type ${kind(v)}: a state dict may hold numbers, strings, booleans, null, undefined, arrays, plain objects, Float32Array/Float64Array and Uint16Array (bfloat16 state)`,
  );
}

/** Rebuilds a state dict from its skeleton; every referenced tensor is marked in `used`. */
function decode(v: unknown, tensors: Map<string, StateTensor>, used: Set<string>, fail: (msg: string) => never): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => decode(x, tensors, used, fail));
  const keys = Object.keys(v);
  const rec = v as Record<string, unknown>;
  if (keys.length === 1 && TAGS.includes(keys[0])) {
    const tag = keys[0];
    const x = rec[tag];
    if (tag === '$undefined' && x === true) return undefined;
    if (tag === '$number') {
      const special: Record<string, number> = { NaN, Infinity, '-Infinity': -Infinity, '-0': -0 };
      if (typeof x === 'string' && Object.hasOwn(special, x)) return special[x];
    }
    if (tag === '$tensor' && typeof x === 'string') {
      const t = tensors.get(x);
      if (t === undefined) fail(`${KEY_OPTIMIZER} refers to tensor ${JSON.stringify(x)}, which the file does not hold`);
      if (used.has(x)) fail(`${KEY_OPTIMIZER} refers to tensor ${JSON.stringify(x)} twice`);
      used.add(x);
      return t;
    }
    fail(`${KEY_OPTIMIZER} holds a malformed ${tag}: ${JSON.stringify(x)}`);
  }
  const obj = {};
  for (const k of keys) {
    if (k.startsWith('$') && !k.startsWith('$$')) fail(`${KEY_OPTIMIZER} holds an unknown key ${JSON.stringify(k)}`);
    setOwn(obj, k.startsWith('$') ? k.slice(1) : k, decode(rec[k], tensors, used, fail));
  }
  return obj;
}

async function writeAll(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** Makes the rename durable. Windows cannot open a directory, and some filesystems refuse. */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR') throw e;
  } finally {
    await fh.close();
  }
}

/**
 * The whole file, read into one fresh ArrayBuffer (a shorter read means the file shrank). The
 * header length is checked against the file size first, so a corrupted one allocates nothing.
 */
async function readWhole(path: string, fail: (msg: string) => never): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size >= 8) {
      const prefix = new Uint8Array(8);
      const { bytesRead } = await fh.read(prefix, 0, 8, 0);
      if (bytesRead === 8) headerLength(prefix, size, fail);
    }
    const bytes = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await fh.read(bytes, done, size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return bytes.subarray(0, done);
  } finally {
    await fh.close();
  }
}

/** The header length N of the u64 prefix, checked against the file size and the limit. */
function headerLength(bytes: Uint8Array, fileSize: number, fail: (msg: string) => never): number {
  if (fileSize < 8) fail(`truncated: the file has ${fileSize} bytes, fewer than the 8 of the header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    fail(`truncated or not a safetensors file: the header length is ${n} bytes but only ${fileSize - 8} bytes follow it`);
  }
  if (n > MAX_HEADER) fail(`the header length ${n} exceeds the ${MAX_HEADER} bytes a safetensors header may have`);
  return Number(n);
}

function checkLoadOptions(options: unknown): { requireChecksum: boolean; into: LoadCheckpointOptions['into'] } {
  const where = 'loadCheckpoint(path, options)';
  if (!isPlainObject(options)) throw new OptimTypeError(`${where}: options must be an object, got ${describe(options)}`);
  checkKnownKeys(options, ['requireChecksum', 'into'], where, false, 'key');
  const { requireChecksum: given = true, into } = options;
  const requireChecksum = checkBoolean(given, 'options.requireChecksum', `${where}: `);
  if (into === undefined) return { requireChecksum, into: undefined };
  if (!isPlainObject(into)) throw new OptimTypeError(`${where}: options.into must be an object { tensors, optimizer }, got ${describe(into)}`);
  checkKnownKeys(into, ['tensors', 'optimizer'], `${where}: options.into`, false, 'key');
  const { tensors, optimizer } = into;
  if (tensors !== undefined) {
    if (!isPlainObject(tensors)) throw new OptimTypeError(`${where}: options.into.tensors must be an object of named tensors, got ${describe(tensors)}`);
    for (const [name, t] of Object.entries(tensors)) modelTensor(t, `loadCheckpoint: options.into.tensors[${JSON.stringify(name)}]`);
  }
  if (optimizer !== undefined) {
    const load = optimizer !== null && typeof optimizer === 'object' ? (optimizer as { loadStateDict?: unknown }).loadStateDict : undefined;
    if (typeof load !== 'function') {
      throw new OptimTypeError(`${where}: options.into.optimizer must have a loadStateDict method, got ${describe(optimizer)}`);
    }
  }
  return { requireChecksum, into: into as LoadCheckpointOptions['into'] };
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function failer(path: string): (msg: string) => never {
  return (msg) => {
    throw new CheckpointError(`loadCheckpoint: ${path}: ${msg}`, path);
  };
}

function parse(bytes: Uint8Array, path: string, requireChecksum: boolean): LoadedCheckpoint<unknown> {
  const fail: (msg: string) => never = failer(path);
  const n = headerLength(bytes, bytes.length, fail);
  const headerBytes = bytes.subarray(8, 8 + n);
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    fail('the header is not valid UTF-8 (corrupted, or not a safetensors file)');
  }
  if (!text.startsWith('{')) fail('the header does not start with "{" (corrupted, or not a safetensors file)');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`the header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isPlainObject(header)) fail('the header is not a JSON object');
  const head = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(head)) {
    if (name === '__metadata__') {
      if (!isPlainObject(info)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__[${JSON.stringify(k)}] is not a string`);
        setOwn(metadata, k, v);
      }
      continue;
    }
    const label = `tensor ${JSON.stringify(name)}`;
    if (!isPlainObject(info)) fail(`${label} is not an object { dtype, shape, data_offsets }`);
    const { dtype, shape, data_offsets: offsets, ...extra } = info as Record<string, unknown>;
    if (Object.keys(extra).length > 0) fail(`${label} has unknown keys ${Object.keys(extra).join(', ')}`);
    if (dtype !== 'F32' && dtype !== 'F64' && dtype !== 'BF16') {
      fail(`${label} has dtype ${JSON.stringify(dtype)}; only "F32" and "F64" are supported (and "BF16" inside a saved optimizer state)`);
    }
    if (!Array.isArray(shape) || !shape.every(isIndex)) fail(`${label} has shape ${JSON.stringify(shape)}, not an array of whole numbers >= 0`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex) || offsets[0] > offsets[1]) {
      fail(`${label} has data_offsets ${JSON.stringify(offsets)}, not [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    const size = DTYPE_BYTES[dtype as Dtype];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (count * size !== end - begin) {
      fail(`${label}: shape ${JSON.stringify(shape)} of ${dtype} needs ${count * size} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  const dataLength = bytes.length - 8 - n;
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < at) fail(`tensors ${JSON.stringify(prev?.name)} and ${JSON.stringify(e.name)} overlap in the data section`);
    if (e.begin > at) fail(`a gap of ${e.begin - at} bytes lies before tensor ${JSON.stringify(e.name)} in the data section`);
    at = e.end;
    prev = e;
  }
  if (at > dataLength) fail(`truncated: the tensors need ${at} bytes of data but the file holds ${dataLength}`);
  if (at < dataLength) fail(`${dataLength - at} trailing bytes follow the last tensor (the file is not what was written)`);

  const ours = Object.hasOwn(metadata, KEY_FORMAT);
  for (const e of entries) {
    if (e.dtype === 'BF16' && !(ours && e.name.startsWith(RESERVED))) {
      fail(`tensor ${JSON.stringify(e.name)} has dtype "BF16"; only "F32" and "F64" are supported (and "BF16" inside a saved optimizer state)`);
    }
  }
  const checksum = Object.hasOwn(metadata, KEY_CHECKSUM) ? metadata[KEY_CHECKSUM] : undefined;
  if (checksum === undefined) {
    if (ours) fail(`${KEY_CHECKSUM} is missing though ${KEY_FORMAT} is present (corrupted)`);
    if (requireChecksum) {
      fail(`it has no ${KEY_CHECKSUM} (not written by saveCheckpoint?); pass { requireChecksum: false } to load a plain safetensors file`);
    }
  } else {
    verifyChecksum(bytes, headerBytes, checksum, fail);
  }
  if (ours && metadata[KEY_FORMAT] !== FORMAT) {
    fail(`it is in format ${JSON.stringify(metadata[KEY_FORMAT])}; this version of optim reads ${JSON.stringify(FORMAT)}`);
  }

  const dataStart = bytes.byteOffset + 8 + n;
  const view = (e: Entry): StateTensor => {
    const Ctor = e.dtype === 'F32' ? Float32Array : e.dtype === 'F64' ? Float64Array : Uint16Array;
    const length = (e.end - e.begin) / Ctor.BYTES_PER_ELEMENT;
    if ((dataStart + e.begin) % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(bytes.buffer as ArrayBuffer, dataStart + e.begin, length);
    const copy = new Ctor(length);
    new Uint8Array(copy.buffer).set(bytes.subarray(8 + n + e.begin, 8 + n + e.end));
    return copy;
  };
  const tensors: Record<string, FloatArray> = {};
  const shapes: Record<string, number[]> = {};
  const internal = new Map<string, StateTensor>();
  for (const e of entries) {
    if (ours && e.name.startsWith(RESERVED)) {
      internal.set(e.name, view(e));
    } else {
      setOwn(tensors, e.name, view(e) as FloatArray);
      setOwn(shapes, e.name, e.shape);
    }
  }
  let optimizer: unknown;
  const userMetadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) if (!ours || !k.startsWith(RESERVED)) setOwn(userMetadata, k, v);
  if (ours) {
    const used = new Set<string>();
    if (Object.hasOwn(metadata, KEY_OPTIMIZER)) {
      let skeleton: unknown;
      try {
        skeleton = JSON.parse(metadata[KEY_OPTIMIZER]);
      } catch (e) {
        fail(`${KEY_OPTIMIZER} is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
      }
      if (!isPlainObject(skeleton)) fail(`${KEY_OPTIMIZER} is not a JSON object`);
      optimizer = decode(skeleton, internal, used, fail);
    }
    const stray = [...internal.keys()].filter((k) => !used.has(k));
    if (stray.length > 0) fail(`tensors ${stray.map((s) => JSON.stringify(s)).join(', ')} belong to no saved optimizer state`);
  }
  return { tensors, shapes, optimizer, metadata: userMetadata };
}

function verifyChecksum(bytes: Uint8Array, headerBytes: Uint8Array, checksum: string, fail: (msg: string) => never): void {
  if (!/^sha256:[0-9a-f]{64}$/.test(checksum)) fail(`${KEY_CHECKSUM} is ${JSON.stringify(checksum)}, not "sha256:" and 64 hex digits`);
  const head = Buffer.from(headerBytes.buffer, headerBytes.byteOffset, headerBytes.byteLength);
  const found = head.indexOf(CHECKSUM_NEEDLE);
  if (found < 0 || head.indexOf(CHECKSUM_NEEDLE, found + 1) >= 0) fail(`${KEY_CHECKSUM} is not written as saveCheckpoint writes it once`);
  const at = 8 + found + CHECKSUM_NEEDLE.length;
  const hex = checksum.slice('sha256:'.length);
  if (Buffer.from(bytes.buffer, bytes.byteOffset + at, 64).toString('latin1') !== hex) {
    fail(`${KEY_CHECKSUM} is not written as saveCheckpoint writes it`);
  }
  if (hex === HEX_ZEROS) fail('its checksum is still the placeholder: the write did not finish (a temp file of a crashed save?)');
  const hash = createHash('sha256');
  hash.update(bytes.subarray(0, at));
  hash.update(HEX_ZEROS, 'latin1');
  hash.update(bytes.subarray(at + 64));
  if (hash.digest('hex') !== hex) fail('checksum mismatch: the file is corrupted (or was changed after it was written)');
}

function restore(loaded: LoadedCheckpoint<unknown>, into: NonNullable<LoadCheckpointOptions['into']>, path: string): void {
  const problems: string[] = [];
  const file = loaded.tensors;
  const targets = into.tensors;
  const resolved = new Map<string, FloatArray>();
  if (targets !== undefined) {
    for (const [name, t] of Object.entries(targets)) {
      const { data: target, shape } = modelTensor(t, `loadCheckpoint: options.into.tensors[${JSON.stringify(name)}]`);
      resolved.set(name, target);
      const src = Object.hasOwn(file, name) ? file[name] : undefined;
      const fileShape = src === undefined ? [] : loaded.shapes[name];
      if (src === undefined) problems.push(`${JSON.stringify(name)} is not in the file`);
      else if (src.constructor !== target.constructor) {
        problems.push(`${JSON.stringify(name)} is a ${src.constructor.name} in the file but a ${target.constructor.name} here`);
      } else if (src.length !== target.length) {
        problems.push(`${JSON.stringify(name)} has length ${src.length} in the file but ${target.length} here`);
      } else if (shape !== undefined && fileShape.length > 1 && fileShape.join(',') !== shape.join(',')) {
        problems.push(`${JSON.stringify(name)} has shape [${fileShape.join(', ')}] in the file but [${shape.join(', ')}] here`);
      }
    }
    for (const name of Object.keys(file)) {
      if (!Object.hasOwn(targets, name)) problems.push(`${JSON.stringify(name)} is in the file but not in into.tensors`);
    }
  }
  if (into.optimizer !== undefined && loaded.optimizer === undefined) problems.push('the file holds no optimizer state');
  if (problems.length > 0) {
    throw new CheckpointError(`loadCheckpoint: ${path} does not match what it is loaded into: ${problems.join('; ')}`, path);
  }
  if (into.optimizer !== undefined) {
    try {
      into.optimizer.loadStateDict(loaded.optimizer as never);
    } catch (e) {
      const err = new CheckpointError(
        `loadCheckpoint: ${path}: the optimizer refused the saved state: ${e instanceof Error ? e.message : String(e)}`,
        path,
      );
      throw Object.assign(err, { cause: e });
    }
  }
  for (const [name, target] of resolved) target.set(file[name]);
}
