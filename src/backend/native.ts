import * as path from 'node:path';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { OptimTypeError } from '../errors.js';
import { fromNative as translate } from './native-errors.js';
import type { Backend, BackendInfo, PreparedList, StateArray, TensorList } from './types.js';
import { nativeLinalg } from './native-linalg.js';
import type { NativeLinalgAddon } from './native-linalg.js';

/** A step export of the addon: `<kernel name>Step(list, scalars, flags)`. */
export type NativeStep = (list: TensorList | PreparedList, scalars: Float64Array, flags: number) => number | undefined;

/** A kernel's layout as the addon declares it (native/kernels/<name>.h). */
export interface NativeLayout {
  scalars: string;
  flags: string;
  states: string;
  stateWhen: number[];
}

/** The raw addon exports (native/bindings/addon.cc). */
export interface NativeAddon extends Pick<Backend, 'prepare'> {
  /** One per registered kernel, named `<name>Step`. */
  [step: `${string}Step`]: NativeStep;
  kernelLayouts(): Record<string, NativeLayout>;
  /** What runs in this environment (the step kernels' ISA, the linear algebra in use, ...). */
  info(): {
    simd: BackendInfo['simd']; fma: boolean; blas: 'openblas' | 'builtin'; openblasAvailable: boolean;
    linalgIsa: 'avx2' | 'baseline'; threads: number; stepThreads: number; version: string; bestSimd: string; maxStates: number;
    /** The shortest tensor the runner splits to align its loads (kMinAlignElements). */
    minAlignElements: number;
  };
  /** This environment's instruction set, for the step kernels and the built-in linear algebra. */
  setIsa(name: 'avx512' | 'avx2' | 'baseline' | 'best'): boolean;
  setNumThreads(n: number): void;
  /** The byte offset of a's first element within its 64-byte cache line. */
  lineOffset(a: StateArray): number;
}

export interface NativeLoad {
  backend?: Backend;
  addon?: NativeAddon;
  error?: string;
}

let loaded: NativeLoad | undefined;

/** The package root: the nearest folder above this file holding package.json and binding.gyp. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'binding.gyp')) && fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(__dirname, '..', '..');
    dir = up;
  }
}


function makeBackend(addon: NativeAddon): Backend {
  const steps: Array<NativeStep | undefined> = [];
  return {
    name: 'native',
    info(): BackendInfo {
      const { simd, fma, blas, threads, stepThreads, version } = addon.info();
      return { backend: 'native', simd, fma, blas, threads, stepThreads, version };
    },
    prepare(list, stride) {
      try {
        return addon.prepare(list, stride);
      } catch (e) {
        throw translate(e);
      }
    },
    step(kernel, list, scalars, flags) {
      // The export by the kernel's index: a lookup by name at every call cost ~70 ns of the
      // step's fixed cost once a process had stepped several kernels (a keyed load gone megamorphic).
      let fn = steps[kernel.index];
      if (fn === undefined) {
        fn = addon[kernel.exportName as `${string}Step`];
        if (typeof fn !== 'function') {
          throw new OptimTypeError(`the native addon has no kernel ${kernel.exportName}; rebuild it (npm run build:native)`);
        }
        steps[kernel.index] = fn;
      }
      try {
        // A prepared list's `native` (an External) is the cheapest form of it for the addon to
        // recognise: ~45 ns less per call than the handle object.
        return fn((list as { native?: PreparedList }).native ?? list, scalars, flags);
      } catch (e) {
        throw translate(e);
      }
    },
    lineOffset: (a) => addon.lineOffset(a),
    ...nativeLinalg(addon as NativeAddon & NativeLinalgAddon),
  };
}

/**
 * Loads the addon once (a prebuilt binary from prebuilds/ when one matches, else build/Release)
 * and reports why when it cannot. Never throws.
 */
export function loadNative(): NativeLoad {
  if (loaded) return loaded;
  try {
    const req = createRequire(path.join(packageRoot(), 'package.json'));
    // OPTIM_ADDON_PATH loads a specific binary (the cmake-js or sanitizer build, in CI).
    const explicit = process.env.OPTIM_ADDON_PATH;
    const addon = explicit
      ? (req(path.resolve(explicit)) as NativeAddon)
      : (req('node-gyp-build') as (dir: string) => NativeAddon)(packageRoot());
    loaded = { addon, backend: makeBackend(addon) };
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    loaded = { error: msg };
  }
  return loaded;
}
