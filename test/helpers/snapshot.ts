import type { FloatArray } from '../../src/backend/types.js';
import type { Param } from '../../src/param.js';
import type { StateDict } from '../../src/optim/optimizer.js';

/** The bytes of a typed array (a copy); a detached one reads as no bytes. */
export function bytesOf(a: FloatArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}

/** Every buffer the optimizer could touch, as bytes: params, grads and saved state. */
export function snapshot(params: readonly Param[], opt: { stateDict(): StateDict }): unknown {
  const state: Record<string, Record<string, unknown>> = {};
  for (const [name, st] of Object.entries(opt.stateDict().state)) {
    state[name] = Object.fromEntries(
      Object.entries(st).map(([k, v]) => [k, typeof v === 'number' ? v : bytesOf(v)]),
    );
  }
  return {
    data: params.map((p) => bytesOf(p.data)),
    grad: params.map((p) => (ArrayBuffer.isView(p.grad) ? bytesOf(p.grad) : p.grad)),
    state,
  };
}

/** Detaches the ArrayBuffer behind `a` (as a transfer to a worker would): `a.length` becomes 0. */
export function detach(a: FloatArray): void {
  const buffer = a.buffer as ArrayBuffer;
  structuredClone(buffer, { transfer: [buffer] });
}

/** What `fn` throws, or undefined when it returns: for tests that check a refusal's error and what it left. */
export function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}
