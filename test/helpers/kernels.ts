/**
 * The step kernels the tests iterate, and what follows from their descriptors: nothing here
 * names a kernel, so a new algorithm (src/optim/<name>.ts) is tested without a change here.
 */
import '../../src/index.js';
import { registeredKernels } from '../../src/backend/kernel.js';
import type { AnyKernel } from '../../src/backend/kernel.js';
import { getBackend } from '../../src/backend/select.js';
import { traceSteps } from '../../src/backend/trace.js';
import type { StepCall } from '../../src/backend/trace.js';
import * as optim from '../../src/optim/index.js';
import { scalarsFor } from './scalars.js';

/** Every kernel the package defines (src/optim/<name>.ts), in definition order. */
export const KERNELS: readonly AnyKernel[] = registeredKernels();

/** The flags that make every state buffer of `k` exist, and no other: the OR of their `when` flags. */
export function fullFlags(k: AnyKernel): number {
  return k.state.reduce((f, b) => (b.when === undefined ? f : f | k.flag[b.when]), 0);
}

/** One valid call of a kernel that uses (and moves) every state buffer it has. */
export interface KernelCase {
  kernel: AnyKernel;
  flags: number;
  /** Arrays per tensor: param, grad, then the state buffers. */
  stride: number;
  scalars: Float64Array;
}

export const KERNEL_CASES: readonly KernelCase[] = KERNELS.map((kernel) => {
  const flags = fullFlags(kernel);
  return { kernel, flags, stride: kernel.stride(flags), scalars: scalarsFor(kernel) };
});

/** The case with the most state buffers (the first one, on a tie). */
export const WIDEST_CASE: KernelCase = KERNEL_CASES.reduce((a, b) => (b.stride > a.stride ? b : a));

/** A descriptor's reference loop reads scalars by name: `{ [name]: scalars[slot] }`. */
export function scalarRecord(k: AnyKernel, scalars: ArrayLike<number>): Record<string, number> {
  return Object.fromEntries(k.scalars.map((name: string, i: number) => [name, scalars[i]]));
}

/** ... and flags by name. */
export function flagRecord(k: AnyKernel, flags: number): Record<string, boolean> {
  return Object.fromEntries(k.flags.map((name: string) => [name, (flags & k.flag[name]) !== 0]));
}

/** `flags` by name, for test titles: `wd|amsgrad`, or `plain`. */
export function flagName(k: AnyKernel, flags: number): string {
  const names = k.flags.filter((name: string) => (flags & k.flag[name]) !== 0);
  return names.length ? names.join('|') : 'plain';
}

// ---------------------------------------------------------------------------------------------
// The optimizer classes, and the kernel calls they make

type OptimizerInstance = optim.Optimizer<optim.GroupBase>;
export type OptimizerClass = new (params: optim.Param[], options?: object) => OptimizerInstance;

/**
 * Every optimizer class src/optim exports (the subclasses of Optimizer) whose step is a kernel
 * call on params of any shape: not Muon, which takes 2-D params only and multiplies matrices
 * (test/muon.test.ts covers its validation, non-finite policy and state), nor SparseAdam, which
 * takes row-sparse gradients only (test/sparse-adam.test.ts).
 */
export const OPTIMIZER_CLASSES = (Object.entries(optim) as Array<[string, unknown]>).filter(
  ([, v]) => typeof v === 'function' && v.prototype instanceof optim.Optimizer && v !== optim.Muon && v !== optim.SparseAdam,
) as ReadonlyArray<[string, OptimizerClass]>;

export type { StepCall } from '../../src/backend/trace.js';

/** Runs `fn` and returns the kernel calls it made through the backend in use. */
export function captureSteps(fn: () => void): StepCall[] {
  return traceSteps(getBackend(), fn);
}
