/**
 * One algorithm, one layout: every kernel the TypeScript side defines (src/optim/<name>.ts) has
 * a native twin (native/kernels/<name>.h) declaring the same scalar slots, flags and state
 * buffers in the same order, and the addon registers no kernel TypeScript does not know. A drift
 * fails here by name, before any number can go wrong.
 */
import { describe, expect, it } from 'vitest';
import '../src/index.js';
import { MAX_STATES, registeredKernels, upperSnake } from '../src/backend/kernel.js';
import { loadNative } from '../src/backend/native.js';

const native = loadNative();
if (process.env.CI === 'true' && !native.addon) {
  throw new Error(`CI requires the native addon, which did not load: ${native.error}`);
}
const split = (s: string) => (s === '' ? [] : s.split(', '));

describe.skipIf(!native.addon)('kernel layouts: TypeScript descriptors = native headers', () => {
  const layouts = native.addon!.kernelLayouts();
  const kernels = registeredKernels();

  it('the same kernels on both sides', () => {
    expect(Object.keys(layouts).sort()).toEqual(kernels.map((k) => k.name).sort());
    for (const k of kernels) expect(typeof native.addon![k.exportName as `${string}Step`]).toBe('function');
  });

  it('the same limit on state buffers', () => {
    expect(native.addon!.info().maxStates).toBe(MAX_STATES);
  });

  for (const k of registeredKernels()) {
    it(`${k.name}: scalars, flags and state buffers in the same order`, () => {
      const l = layouts[k.name];
      expect(split(l.scalars)).toEqual(k.scalars.map(upperSnake));
      expect(split(l.flags)).toEqual(k.flags.map(upperSnake));
      expect(split(l.states)).toEqual(k.buffers.map(upperSnake));
      expect(l.stateWhen).toEqual(k.state.map((b) => (b.when === undefined ? -1 : k.flags.indexOf(b.when))));
    });
  }
});
