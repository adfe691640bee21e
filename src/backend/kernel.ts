/**
 * Kernel descriptors: what an algorithm's step kernel takes, declared once, next to its optimizer
 * (src/optim/<name>.ts), and everything else derived from it: scalar slots, flag bits, which
 * state buffers exist for which flags and in what order, the stride of a tensor list, the
 * state-dict keys, and the tables of the tests, the fuzzer and the benchmarks.
 *
 * The native kernel (native/kernels/<name>.h) declares the same layout in C++; the addon reports
 * it (`kernelLayouts()`), and test/kernel-layouts.test.ts checks the two are equal, name by name.
 */
import type { FloatArray } from './types.js';

/** Most state buffers a kernel keeps per tensor (the addon reports its own: kernelLayouts test). */
export const MAX_STATES = 4;

/** A state buffer of a kernel, and the flag it needs to exist (none: always). */
export interface StateBuffer<F extends string> {
  readonly name: string;
  readonly when?: F;
}

/**
 * The reference loop of one tensor: updates `p` and the `state` buffers the flags select (in the
 * descriptor's order) in place. `s` holds the scalars by name, `on` the flags by name.
 * Float32 tensors are computed in float64 from their stored values and rounded once on store; a
 * value stored into a buffer is read back before it is used again, as torch reads the updated
 * tensor. JavaScript has no fma: each `fma(a, b, c)` of the formula is `a*b + c`, rounded twice.
 * The loop must be elementwise (element i reads and writes element i only): the reference runner
 * calls it on consecutive chunks of a tensor (src/backend/reference.ts), as the native runner
 * splits a tensor across threads.
 */
export type ReferenceLoop<S extends string, F extends string> = (
  p: FloatArray,
  g: FloatArray,
  state: readonly FloatArray[],
  s: Readonly<Record<S, number>>,
  on: Readonly<Record<F, boolean>>,
) => void;

export interface KernelDescriptor<S extends string, F extends string> {
  /** The algorithm's name: the addon exports `<name>Step`, native/kernels/<name>.h holds it. */
  readonly name: string;
  /** The scalar slots, in order (camelCase; the C++ header spells them UPPER_SNAKE). */
  readonly scalars: readonly S[];
  /** The option flags: flags[i] is the bit 1 << i. */
  readonly flags: readonly F[];
  /** The state buffers, in order; a buffer exists when its flag is set (or always). */
  readonly state: readonly StateBuffer<F>[];
  readonly reference: ReferenceLoop<S, F>;
}

/** A descriptor with what follows from it. */
export interface Kernel<S extends string = string, F extends string = string> extends KernelDescriptor<S, F> {
  /** The addon's export: `<name>Step`. */
  readonly exportName: string;
  /** Its place in registeredKernels(): backends keep per-kernel tables indexed by it. */
  readonly index: number;
  /** Scalar slot of each name. */
  readonly slot: Readonly<Record<S, number>>;
  /** Bit of each flag. */
  readonly flag: Readonly<Record<F, number>>;
  readonly nScalars: number;
  /** Every flag bit of the kernel set. */
  readonly allFlags: number;
  /** Every buffer the kernel may keep. */
  readonly buffers: readonly string[];
  /** The buffers that exist for `flags`, in order. */
  stateNames(flags: number): readonly string[];
  /** 2 + the number of buffers for `flags`: the tuple length of a tensor list. */
  stride(flags: number): number;
}

/** A kernel of any layout (what backends and optimizers take). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyKernel = Kernel<any, any>;

const registry: AnyKernel[] = [];

/**
 * Every kernel defined so far, in definition order: once the package is loaded, every algorithm's
 * (the tests, the fuzzer and the benchmarks iterate this).
 */
export function registeredKernels(): readonly AnyKernel[] {
  return registry;
}

/** Builds a kernel from its descriptor (see Kernel) and registers it. */
export function defineKernel<const S extends string, const F extends string>(d: KernelDescriptor<S, F>): Kernel<S, F> {
  if (registry.some((k) => k.name === d.name)) throw new Error(`kernel ${d.name} is defined twice`);
  if (d.state.length > MAX_STATES) throw new Error(`kernel ${d.name}: at most ${MAX_STATES} state buffers`);
  const slot = Object.fromEntries(d.scalars.map((s, i) => [s, i])) as Record<S, number>;
  const flag = Object.fromEntries(d.flags.map((f, i) => [f, 1 << i])) as Record<F, number>;
  const allFlags = (1 << d.flags.length) - 1;
  const byFlags: Array<readonly string[]> = [];
  for (let f = 0; f <= allFlags; f++) {
    byFlags.push(Object.freeze(d.state.filter((b) => b.when === undefined || (f & flag[b.when]) !== 0).map((b) => b.name)));
  }
  const kernel: Kernel<S, F> = Object.freeze({
    ...d,
    exportName: `${d.name}Step`,
    index: registry.length,
    slot: Object.freeze(slot),
    flag: Object.freeze(flag),
    nScalars: d.scalars.length,
    allFlags,
    buffers: Object.freeze(d.state.map((b) => b.name)),
    stateNames: (flags: number) => byFlags[flags & allFlags],
    stride: (flags: number) => 2 + byFlags[flags & allFlags].length,
  });
  registry.push(kernel);
  return kernel;
}

/**
 * A state layout in the form the optimizer base reads a kernel's: the buffers a step keeps per
 * param (saved in the state dict), for an optimizer whose update is not one elementwise kernel
 * (Adafactor, Muon, SparseAdam, LAMB: their classes run it). Not registered, so it has no
 * native twin and no kernel tables (index -1), and it never reaches a backend.
 */
export function stateLayout(name: string, buffers: readonly string[]): AnyKernel {
  const names = Object.freeze([...buffers]);
  return Object.freeze({
    name,
    exportName: `${name}State`,
    index: -1,
    scalars: [],
    flags: [],
    state: names.map((b) => ({ name: b })),
    slot: {},
    flag: {},
    nScalars: 0,
    allFlags: 0,
    buffers: names,
    stateNames: () => names,
    stride: () => 2 + names.length,
    reference(): void {
      throw new Error(`${name} is a state layout, not a step kernel: its optimizer's step runs the update`);
    },
  });
}

/** `expAvgSq` → `EXP_AVG_SQ`: a descriptor name as the C++ header spells it. */
export function upperSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}
