import type { Backend, BackendInfo } from './types.js';
import { referenceBackend } from './reference.js';
import { loadNative } from './native.js';
import { loadWasm } from './wasm.js';
import { OptimRangeError, OptimStateError } from '../errors.js';
import { checkInRange, checkInteger } from '../validate.js';

export type BackendName = 'native' | 'wasm' | 'reference' | 'auto';

const NAMES: readonly string[] = ['native', 'wasm', 'reference', 'auto'];

let current: Backend | undefined;
let fallbackReason: string | undefined;
let warned = false;

/**
 * 'auto': the native addon, else the WebAssembly kernels, else the pure-TypeScript reference,
 * warning once (with the reason) when the addon does not load.
 */
function resolve(name: BackendName): Backend {
  if (name === 'reference') return referenceBackend;
  if (name === 'wasm') {
    const wasm = loadWasm();
    if (wasm.backend) return wasm.backend;
    throw new OptimStateError(`the wasm backend cannot load: ${wasm.error}`);
  }
  const native = loadNative();
  if (native.backend) return native.backend;
  if (name === 'native') {
    throw new OptimStateError(`the native backend cannot load: ${native.error}`);
  }
  const wasm = loadWasm();
  const fallback = wasm.backend ?? referenceBackend;
  fallbackReason = wasm.backend ? native.error : `${native.error}; wasm: ${wasm.error}`;
  if (!warned) {
    warned = true;
    process.emitWarning(
      `optim: native addon unavailable, using the ${wasm.backend ? 'WebAssembly' : 'pure-TypeScript reference'} backend ` +
        `(${fallbackReason}). Build it with \`npm rebuild optim\` (needs python3, make, g++ and Node headers), ` +
        `or set OPTIM_BACKEND=${fallback.name} to silence this warning.`,
      { code: 'OPTIM_NATIVE_UNAVAILABLE' },
    );
  }
  return fallback;
}

function envChoice(): BackendName {
  const v = (process.env.OPTIM_BACKEND ?? 'auto').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (v === 'native' || v === 'wasm' || v === 'reference') return v;
  throw new OptimRangeError(
    `OPTIM_BACKEND must be 'native', 'wasm', 'reference' or 'auto', got ${JSON.stringify(process.env.OPTIM_BACKEND)}`,
  );
}

/** The backend every optimizer and kernel call uses (chosen on first use, then fixed). */
export function getBackend(): Backend {
  if (!current) current = resolve(envChoice());
  return current;
}

/**
 * Choose the backend in code: 'native' (throws if the addon cannot load), 'wasm' (throws if the
 * WebAssembly module cannot load), 'reference', or 'auto' (native when it loads, else wasm, else
 * reference, with one warning). Returns the backend now in use.
 */
export function setBackend(name: BackendName): BackendInfo {
  if (!NAMES.includes(name)) {
    throw new OptimRangeError(`setBackend(name): name must be 'native', 'wasm', 'reference' or 'auto', got ${String(name)}`);
  }
  current = resolve(name);
  return backendInfo();
}

/** Which backend runs and how: `{ backend, simd, fma, blas, threads, version }`. */
export function backendInfo(): BackendInfo {
  const info = getBackend().info();
  return current !== undefined && current.name !== 'native' && fallbackReason ? { ...info, fallbackReason } : info;
}

/** Most threads a step may be split across. */
export const MAX_THREADS = 64;

/**
 * The threads a large native step may use, the caller's included, as torch.set_num_threads: for
 * the whole process (every worker_thread). Default: OPTIM_NUM_THREADS, else every hardware thread.
 * A step of at least 131072 elements is split into chunks of whole cache lines, each thread taking
 * its own run first and then what a slower one has left; the updates are elementwise,
 * so the results are the same bits whatever the count. The built-in linear algebra (native, without
 * OpenBLAS) splits large matrix products across the same threads, also with the same bits. The
 * reference backend runs on one thread.
 */
export function setNumThreads(n: number): void {
  checkInRange(checkInteger(n, 'n', 'setNumThreads(n): ', 1), 'n', 'setNumThreads(n): ', 1, MAX_THREADS);
  loadNative().addon?.setNumThreads(n);
}

/**
 * Backend.lineOffset of the backend in use, or of the one that will be chosen (native, unless
 * OPTIM_BACKEND says otherwise), without choosing it: param() places each grad where its data
 * starts within a cache line (align.ts). Undefined when the arrays will be stepped as copies.
 */
export function lineOffsetHint(): Backend['lineOffset'] {
  if (current !== undefined) return current.lineOffset;
  let choice: BackendName;
  try {
    choice = envChoice();
  } catch {
    return undefined; // a bad OPTIM_BACKEND is reported by the first step, not by param()
  }
  return choice === 'auto' || choice === 'native' ? loadNative().backend?.lineOffset : undefined;
}

/** Whether the native addon can be loaded here (without switching to it). */
export function nativeAvailable(): boolean {
  return loadNative().backend !== undefined;
}
