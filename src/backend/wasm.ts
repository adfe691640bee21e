/**
 * The WebAssembly backend: the native step kernels (native/kernels/*.h) and built-in linear
 * algebra (native/kernels/{gemm,gram,cholesky,eigh}.cc) compiled for wasm32 with SIMD128
 * (wasm/optim.wasm, `npm run build:wasm`), for where the addon does not load. No multiply-add is
 * fused (WebAssembly has no guaranteed FMA), as in the native baseline set, whose bits it
 * reproduces, steps and linear algebra alike (test/wasm-backend.test.ts).
 *
 * Cost: the kernels work in the module's own memory, so each call copies every tensor in (param,
 * grad, state) and back out (param, state), a chunk of CHUNK elements at a time through fixed
 * buffers: about one extra read and write of each buffer per step (bench/wasm.js measures it).
 * The linear algebra copies its operands into blocks allocated for the call (the memory grows as
 * needed and is reused by the next call) and its outputs back; an O(n²) copy beside O(n³) work.
 * Everything runs on the calling thread; the Async forms run the sync form on a later turn of the
 * event loop (as the reference backend's do), so they hold the loop as long as the sync call.
 *
 * Checks, prepared lists and the gradient policy are the reference backend's, so the two refuse
 * the same calls with the same messages; the linear algebra's argument and value checks too
 * (src/backend/reference-linalg.ts), all before anything is written. The loader reads the file
 * and compiles it with the standard WebAssembly API; nothing else here is Node-specific.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VERSION } from '../version.js';
import type { AnyKernel } from './kernel.js';
import { packageRoot } from './native.js';
import { checkStepCall, referenceBackend } from './reference.js';
import {
  checkGemm, checkPotrf, checkPotrs, checkSyevd, checkSyrk, linalgMethods, noConvergence, notPositiveDefinite,
} from './reference-linalg.js';
import { CHECK_FINITE, CHECK_ONLY } from './types.js';
import type { Backend, BackendInfo, FloatArray, PreparedList, StateArray, TensorList } from './types.js';

/** The part of the standard WebAssembly API used here (the project's lib has no DOM types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  RuntimeError: new () => Error;
}

interface WasmExports {
  memory: WasmMemory;
  alloc(bytes: number): number;
  kernel_count(): number;
  kernel_name(i: number): number;
  kernel_scalars(i: number): number;
  isa_name(): number;
  step_f32(k: number, p: number, g: number, s0: number, s1: number, s2: number, s3: number, n: number, sc: number, flags: number): void;
  step_f64(k: number, p: number, g: number, s0: number, s1: number, s2: number, s3: number, n: number, sc: number, flags: number): void;
  step_bf16(k: number, p: number, g: number, s0: number, s1: number, s2: number, s3: number, n: number, sc: number, flags: number): void;
  first_nonfinite_f32(g: number, n: number): number;
  first_nonfinite_f64(g: number, n: number): number;
  mark(): number;
  release(mark: number): void;
  // Linear algebra (native/wasm/abi.cc), one export per dtype: <name>_f32, <name>_f64.
  gemm_f32(flags: number, m: number, n: number, k: number, alpha: number, a: number, b: number, beta: number, c: number): void;
  gemm_f64(flags: number, m: number, n: number, k: number, alpha: number, a: number, b: number, beta: number, c: number): void;
  gram_f32(trans: number, rows: number, cols: number, a: number, c: number): void;
  gram_f64(trans: number, rows: number, cols: number, a: number, c: number): void;
  potrf_f32(n: number, a: number): number;
  potrf_f64(n: number, a: number): number;
  potrs_f32(n: number, nrhs: number, l: number, b: number): void;
  potrs_f64(n: number, nrhs: number, l: number, b: number): void;
  syevd_f32(n: number, a: number, values: number, vectors: number): number;
  syevd_f64(n: number, a: number, values: number, vectors: number): number;
}

/** syevd's status (linalg::EighStatus). */
const EIGH_NO_CONVERGENCE = 1;
/** The most bytes one call may ask of wasm32's 4 GiB address space. */
const MAX_BYTES = 2 ** 32;

/** Elements per kernel call: each tensor is copied in and out in chunks of this many. */
const CHUNK = 16384;
/** Buffers per call: param, grad and up to four states. */
const SLOTS = 6;
const MAX_SCALARS = 64;

export interface WasmLoad {
  backend?: Backend;
  /** The module's kernels in registry order, as it reports them (a stale module shows here). */
  kernels?: ReadonlyArray<{ name: string; nScalars: number }>;
  error?: string;
}

let loaded: WasmLoad | undefined;

function cString(mem: WasmMemory, ptr: number): string {
  const bytes = new Uint8Array(mem.buffer, ptr);
  return new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)));
}

function kernelList(x: WasmExports): Array<{ name: string; nScalars: number }> {
  return Array.from({ length: x.kernel_count() }, (_, i) => ({ name: cString(x.memory, x.kernel_name(i)), nScalars: x.kernel_scalars(i) }));
}

/** Raised by a kernel that ran out of memory mid-call (a failed new[] traps). */
function outOfMemory(fn: string, bytes: number): Error {
  return Object.assign(
    new Error(`${fn}: not enough WebAssembly memory for the operands and workspace (${bytes} bytes of operands; wasm32 addresses at most 4 GiB)`),
    { code: 'ERR_OPTIM_OUT_OF_MEMORY' },
  );
}

/**
 * `instantiate` gives a fresh instance: the backend makes one at once and another only if a call
 * traps (a kernel out of memory), since a trap leaves the module's stack pointer where it was.
 */
function makeBackend(first: WasmExports, instantiate: () => WasmExports, runtimeError: new () => Error): Backend {
  let x = first;
  const kernels = new Map(kernelList(x).map((k, index) => [k.name, { index, nScalars: k.nScalars }]));
  const isa = cString(x.memory, x.isa_name());

  // The steps' fixed buffers, allocated first (the bottom of the module's heap, never freed), and
  // views of them, made again whenever the memory has grown (growing detaches the old buffer).
  let base = 0;
  let buf: ArrayBuffer | undefined;
  let f32: Float32Array[] = [], f64: Float64Array[] = [], u16: Uint16Array[] = [];
  let scalarsView = new Float64Array(0);
  const slot = (j: number): number => base + j * CHUNK * 8;
  const scalarsAt = (): number => base + SLOTS * CHUNK * 8;
  function setup(): void {
    base = x.alloc(SLOTS * CHUNK * 8 + MAX_SCALARS * 8);
    if (base === 0) throw new Error('the WebAssembly module could not allocate its buffers');
    buf = undefined;
  }
  function views(): void {
    if (buf === x.memory.buffer) return;
    buf = x.memory.buffer;
    const b = buf;
    f32 = Array.from({ length: SLOTS }, (_, j) => new Float32Array(b, slot(j), CHUNK));
    f64 = Array.from({ length: SLOTS }, (_, j) => new Float64Array(b, slot(j), CHUNK));
    u16 = Array.from({ length: SLOTS }, (_, j) => new Uint16Array(b, slot(j), CHUNK));
    scalarsView = new Float64Array(b, scalarsAt(), MAX_SCALARS);
  }
  setup();

  /**
   * CHECK_FINITE's scan by the module (SIMD; a JavaScript loop costs more than the step itself):
   * each gradient copied through the grad slot a chunk at a time. The index of the first tensor
   * with a NaN or ±Inf, or undefined.
   */
  function scanGrads(list: readonly StateArray[], stride: number): number | undefined {
    const isF32 = list[0] instanceof Float32Array;
    const view = isF32 ? f32[1] : f64[1];
    const scan = isF32 ? x.first_nonfinite_f32 : x.first_nonfinite_f64;
    for (let t = 0; t < list.length; t += stride) {
      const g = list[t + 1] as Float64Array;
      for (let off = 0; off < g.length; off += CHUNK) {
        const m = Math.min(CHUNK, g.length - off);
        view.set(g.subarray(off, off + m));
        if (scan(slot(1), m) < m) return t / stride;
      }
    }
    return undefined;
  }

  function step(kernel: AnyKernel, input: TensorList | PreparedList, scalars: Float64Array, flags: number): number | undefined {
    const list = checkStepCall(kernel, input, scalars, flags);
    const stride = kernel.stride(flags);
    if (list.length === 0) return undefined;
    views();
    // One tensor of at most one chunk (the common small step): its gradient is scanned where the
    // step copies it anyway, before anything is written back. Otherwise a scan pass first.
    const fused = (flags & (CHECK_FINITE | CHECK_ONLY)) === CHECK_FINITE && list.length === stride && list[0].length <= CHUNK;
    if ((flags & CHECK_FINITE) !== 0 && !fused) {
      const bad = scanGrads(list, stride);
      if (bad !== undefined || (flags & CHECK_ONLY) !== 0) return bad;
    }
    const k = kernels.get(kernel.name);
    if (k === undefined || k.nScalars !== kernel.nScalars) {
      throw new Error(`wasm/optim.wasm has no kernel ${kernel.name} with ${kernel.nScalars} scalars; rebuild it (npm run build:wasm)`);
    }
    scalarsView.set(scalars);
    const own = flags & ~(CHECK_FINITE | CHECK_ONLY);
    const ns = stride - 2;
    const isF32 = list[0] instanceof Float32Array;
    const bf16 = ns > 0 && list[2] instanceof Uint16Array;
    const vs: StateArray[][] = [isF32 ? f32 : f64, isF32 ? f32 : f64];
    for (let j = 0; j < ns; j++) vs.push(bf16 ? u16 : isF32 ? f32 : f64);
    const run = bf16 ? x.step_bf16 : isF32 ? x.step_f32 : x.step_f64;
    const sp = (j: number): number => (j < ns ? slot(2 + j) : 0);
    const sc = scalarsAt();
    for (let t = 0; t < list.length; t += stride) {
      const n = list[t].length;
      for (let off = 0; off < n; off += CHUNK) {
        const m = Math.min(CHUNK, n - off);
        for (let j = 0; j < stride; j++) {
          const src = list[t + j];
          const dst = vs[j][j] as StateArray;
          (dst as Float64Array).set((src as Float64Array).subarray(off, off + m));
        }
        if (fused && (isF32 ? x.first_nonfinite_f32 : x.first_nonfinite_f64)(slot(1), m) < m) return 0;
        run(k.index, slot(0), slot(1), sp(0), sp(1), sp(2), sp(3), m, sc, own);
        for (let j = 0; j < stride; j++) {
          if (j === 1) continue;
          (list[t + j] as Float64Array).set((vs[j][j] as Float64Array).subarray(0, m), off);
        }
      }
    }
    return undefined;
  }

  // ---- linear algebra: operands copied into blocks of the module's heap for one call ----

  /** Where one call's operands go; every block is released when the call ends, however it ends. */
  interface Call {
    /** A copy of `src` in the module's memory. */
    put(src: FloatArray): number;
    /** Room for `length` elements like `like`, not initialised. */
    room(like: FloatArray, length: number): number;
    /** `dst` = the `dst.length` elements at `ptr`. */
    get(ptr: number, dst: FloatArray): void;
  }

  function withCall<R>(fn: string, body: (c: Call, f64: boolean) => R, first: FloatArray): R {
    const f64 = first instanceof Float64Array;
    const heap = x;
    const mark = heap.mark();
    let bytes = 0;
    const room = (like: FloatArray, length: number): number => {
      const want = length * like.BYTES_PER_ELEMENT;
      bytes += want;
      const p = want < MAX_BYTES ? x.alloc(want) : 0;
      if (p === 0) throw outOfMemory(fn, bytes);
      return p;
    };
    const view = (like: FloatArray, ptr: number, length: number): FloatArray =>
      like instanceof Float64Array ? new Float64Array(x.memory.buffer, ptr, length) : new Float32Array(x.memory.buffer, ptr, length);
    const call: Call = {
      put(src) {
        const p = room(src, src.length);
        view(src, p, src.length).set(src);
        return p;
      },
      room,
      get(ptr, dst) {
        dst.set(view(dst, ptr, dst.length));
      },
    };
    try {
      return body(call, f64);
    } catch (e) {
      if (e instanceof runtimeError) {
        // A kernel's new[] failed: start over with a fresh instance (the trap skipped the epilogues
        // that restore the module's stack pointer), and report it as native reports no memory.
        x = instantiate();
        setup();
        throw outOfMemory(fn, bytes);
      }
      throw e;
    } finally {
      heap.release(mark);
    }
  }

  function gemmCall(fn: string, a: FloatArray, b: FloatArray, c: FloatArray, m: number, n: number, k: number,
    transA: boolean, transB: boolean, alpha: number, beta: number): void {
    const g = checkGemm(fn, a, b, c, m, n, k, alpha, beta);
    if (g.M === 0 || g.N === 0) return;
    withCall(fn, (call, f64) => {
      const pa = call.put(g.A), pb = call.put(g.B);
      const pc = g.be === 0 ? call.room(g.C, g.C.length) : call.put(g.C);
      (f64 ? x.gemm_f64 : x.gemm_f32)((transA ? 1 : 0) | (transB ? 2 : 0), g.M, g.N, g.K, g.al, pa, pb, g.be, pc);
      call.get(pc, g.C);
    }, g.A);
  }

  function syrk(a: FloatArray, c: FloatArray, rows: number, cols: number, trans: boolean): void {
    const s = checkSyrk(a, c, rows, cols, trans);
    if (s.n === 0) return;
    withCall('gram', (call, f64) => {
      const pa = call.put(s.A), pc = call.room(s.C, s.C.length);
      (f64 ? x.gram_f64 : x.gram_f32)(trans ? 1 : 0, s.R, s.Cn, pa, pc);
      call.get(pc, s.C);
    }, s.A);
  }

  function potrfCall(fn: string, a: FloatArray, out: FloatArray, n: number): void {
    const f = checkPotrf(fn, a, out, n);
    if (f.N === 0) return;
    withCall(fn, (call, f64) => {
      const pa = call.put(f.A);
      const pivot = (f64 ? x.potrf_f64 : x.potrf_f32)(f.N, pa);
      if (pivot >= 0) throw notPositiveDefinite(fn, pivot);
      call.get(pa, f.O);
    }, f.A);
  }

  function potrsCall(fn: string, l: FloatArray, b: FloatArray, xo: FloatArray, n: number, nrhs: number): void {
    const s = checkPotrs(fn, l, b, xo, n, nrhs);
    if (s.N === 0 || s.R === 0) return;
    withCall(fn, (call, f64) => {
      const pl = call.put(s.L), pb = call.put(s.B);
      (f64 ? x.potrs_f64 : x.potrs_f32)(s.N, s.R, pl, pb);
      call.get(pb, s.X);
    }, s.L);
  }

  function syevdCall(fn: string, a: FloatArray, values: FloatArray, vectors: FloatArray, n: number): void {
    const e = checkSyevd(fn, a, values, vectors, n);
    if (e.N === 0) return;
    withCall(fn, (call, f64) => {
      const pa = call.put(e.A0), pw = call.room(e.W, e.N), pv = call.room(e.V, e.N * e.N);
      const status = (f64 ? x.syevd_f64 : x.syevd_f32)(e.N, pa, pw, pv);
      if (status === EIGH_NO_CONVERGENCE) throw noConvergence(fn);
      if (status !== 0) throw outOfMemory(fn, 0);
      call.get(pw, e.W);
      call.get(pv, e.V);
    }, e.A0);
  }

  const { prepare } = referenceBackend;
  return {
    name: 'wasm',
    info(): BackendInfo {
      return { backend: 'wasm', simd: isa === 'wasm-simd128' ? 'wasm-simd128' : 'scalar', fma: false, blas: 'builtin', threads: 1, stepThreads: 1, version: VERSION };
    },
    prepare,
    step,
    ...linalgMethods({ gemm: gemmCall, syrk, potrf: potrfCall, potrs: potrsCall, syevd: syevdCall }),
  };
}

/** The module's file: wasm/optim.wasm in the package (OPTIM_WASM_PATH overrides it). */
export function wasmPath(): string {
  return process.env.OPTIM_WASM_PATH ? path.resolve(process.env.OPTIM_WASM_PATH) : path.join(packageRoot(), 'wasm', 'optim.wasm');
}

/** Compiles and instantiates the module once and reports why when it cannot. Never throws. */
export function loadWasm(): WasmLoad {
  if (loaded) return loaded;
  try {
    const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    if (api === undefined) throw new Error('this runtime has no WebAssembly');
    const module = new api.Module(fs.readFileSync(wasmPath()));
    const instantiate = (): WasmExports => new api.Instance(module, {}).exports as unknown as WasmExports;
    const first = instantiate();
    loaded = { backend: makeBackend(first, instantiate, api.RuntimeError), kernels: kernelList(first) };
  } catch (e) {
    loaded = { error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  }
  return loaded;
}

