/**
 * The WebAssembly backend: the native step kernels (native/kernels/*.h) compiled for wasm32 with
 * SIMD128 (wasm/optim.wasm, `npm run build:wasm`), for where the addon does not load. No
 * multiply-add is fused (WebAssembly has no guaranteed FMA), as in the native baseline set, whose
 * bits it reproduces.
 *
 * Cost: the kernels work in the module's own memory, so each call copies every tensor in (param,
 * grad, state) and back out (param, state), a chunk of CHUNK elements at a time through fixed
 * buffers: about one extra read and write of each buffer per step (measured: Adam float32 at 1e5
 * elements, 0.8 to 1.3 ns/element in the kernel, 1.6 to 2.5 with the copies; the reference
 * backend takes 16 to 30). Steps run on the calling thread. The linear algebra (matmul, gram,
 * Cholesky, eigh) runs through the pure-TypeScript reference implementation.
 *
 * Checks, prepared lists and the gradient policy are the reference backend's, so the two refuse
 * the same calls with the same messages. The loader reads the file and compiles it with the
 * standard WebAssembly API; nothing else here is Node-specific.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VERSION } from '../version.js';
import type { AnyKernel } from './kernel.js';
import { packageRoot } from './native.js';
import { checkStepCall, referenceBackend } from './reference.js';
import { CHECK_FINITE, CHECK_ONLY, firstNonFinite } from './types.js';
import type { Backend, BackendInfo, PreparedList, StateArray, TensorList } from './types.js';

/** The part of the standard WebAssembly API used here (the project's lib has no DOM types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
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
}

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

function makeBackend(x: WasmExports): Backend {
  const kernels = new Map(kernelList(x).map((k, index) => [k.name, { index, nScalars: k.nScalars }]));
  const isa = cString(x.memory, x.isa_name());
  // Fixed buffers, allocated once: the memory never grows afterwards, so these views stay valid.
  const base = x.alloc(SLOTS * CHUNK * 8 + MAX_SCALARS * 8);
  if (base === 0) throw new Error('the WebAssembly module could not allocate its buffers');
  const scalarsAt = base + SLOTS * CHUNK * 8;
  const slot = (j: number): number => base + j * CHUNK * 8;
  const buf = x.memory.buffer;
  const f32 = Array.from({ length: SLOTS }, (_, j) => new Float32Array(buf, slot(j), CHUNK));
  const f64 = Array.from({ length: SLOTS }, (_, j) => new Float64Array(buf, slot(j), CHUNK));
  const u16 = Array.from({ length: SLOTS }, (_, j) => new Uint16Array(buf, slot(j), CHUNK));
  const scalarsView = new Float64Array(buf, scalarsAt, MAX_SCALARS);

  function step(kernel: AnyKernel, input: TensorList | PreparedList, scalars: Float64Array, flags: number): number | undefined {
    const list = checkStepCall(kernel, input, scalars, flags);
    const stride = kernel.stride(flags);
    if ((flags & CHECK_FINITE) !== 0) {
      for (let t = 0; t < list.length; t += stride) if (firstNonFinite(list[t + 1]) >= 0) return t / stride;
      if ((flags & CHECK_ONLY) !== 0) return undefined;
    }
    if (list.length === 0) return undefined;
    const k = kernels.get(kernel.name);
    if (k === undefined || k.nScalars !== kernel.nScalars) {
      throw new Error(`wasm/optim.wasm has no kernel ${kernel.name} with ${kernel.nScalars} scalars; rebuild it (npm run build:wasm)`);
    }
    scalarsView.set(scalars);
    const own = flags & ~(CHECK_FINITE | CHECK_ONLY);
    const ns = stride - 2;
    const isF32 = list[0] instanceof Float32Array;
    const bf16 = ns > 0 && list[2] instanceof Uint16Array;
    const views: StateArray[][] = [isF32 ? f32 : f64, isF32 ? f32 : f64];
    for (let j = 0; j < ns; j++) views.push(bf16 ? u16 : isF32 ? f32 : f64);
    const run = bf16 ? x.step_bf16 : isF32 ? x.step_f32 : x.step_f64;
    const sp = (j: number): number => (j < ns ? slot(2 + j) : 0);
    for (let t = 0; t < list.length; t += stride) {
      const n = list[t].length;
      for (let off = 0; off < n; off += CHUNK) {
        const m = Math.min(CHUNK, n - off);
        for (let j = 0; j < stride; j++) {
          const src = list[t + j];
          const dst = views[j][j] as StateArray;
          (dst as Float64Array).set((src as Float64Array).subarray(off, off + m));
        }
        run(k.index, slot(0), slot(1), sp(0), sp(1), sp(2), sp(3), m, scalarsAt, own);
        for (let j = 0; j < stride; j++) {
          if (j === 1) continue;
          (list[t + j] as Float64Array).set((views[j][j] as Float64Array).subarray(0, m), off);
        }
      }
    }
    return undefined;
  }

  const { prepare, gemm, syrk, potrf, potrs, syevd, gemmAsync, potrfAsync, potrsAsync, syevdAsync } = referenceBackend;
  return {
    name: 'wasm',
    info(): BackendInfo {
      return { backend: 'wasm', simd: isa === 'wasm-simd128' ? 'wasm-simd128' : 'scalar', fma: false, blas: 'none', threads: 1, stepThreads: 1, version: VERSION };
    },
    prepare,
    step,
    gemm, syrk, potrf, potrs, syevd, gemmAsync, potrfAsync, potrsAsync, syevdAsync,
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
    const bytes = fs.readFileSync(wasmPath());
    const instance = new api.Instance(new api.Module(bytes), {});
    const x = instance.exports as unknown as WasmExports;
    loaded = { backend: makeBackend(x), kernels: kernelList(x) };
  } catch (e) {
    loaded = { error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  }
  return loaded;
}

