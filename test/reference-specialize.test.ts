// The reference runner's copies of the kernels' loops (src/backend/specialize.ts): the same bits
// as the loop itself for every kernel, flag combination and dtype; a loop the copier cannot read
// safely runs as it is.
import { describe, expect, it } from 'vitest';
import '../src/index.js';
import { registeredKernels } from '../src/backend/kernel.js';
import type { AnyKernel } from '../src/backend/kernel.js';
import { specializedLoop } from '../src/backend/specialize.js';
import { ADAM_KERNEL } from '../src/optim/adam.js';
import { SGD_KERNEL } from '../src/optim/sgd.js';
import { uniformStream } from '../src/data/random.js';

type Arr = Float32Array | Float64Array;

/** Deterministic values in (-1, 1), some of them special. */
function fill(a: Arr, seed: number): Arr {
  const u = uniformStream(seed);
  for (let i = 0; i < a.length; i++) a[i] = u() * 2 - 1;
  if (a.length > 3) a[3] = 0;
  return a;
}

function scalarRecord(k: AnyKernel, f32: boolean, seed: number): Record<string, number> {
  const s: Record<string, number> = {};
  (k.scalars as readonly string[]).forEach((name, i) => {
    const v = 0.05 + ((seed * 7 + i * 13) % 90) / 100;
    s[name] = f32 ? Math.fround(v) : v;
  });
  return s;
}

function run(loop: AnyKernel['reference'], k: AnyKernel, flags: number, C: typeof Float32Array | typeof Float64Array): Arr[] | string {
  const n = 37;
  const stride = k.stride(flags);
  const arrays = Array.from({ length: stride }, (_, j) => fill(new C(n), 11 + j + flags));
  for (let j = 2; j < stride; j++) for (let i = 0; i < n; i++) arrays[j][i] = Math.abs(arrays[j][i]);
  const on: Record<string, boolean> = {};
  (k.flags as readonly string[]).forEach((f, i) => (on[f] = (flags & (1 << i)) !== 0));
  try {
    for (let t = 0; t < 3; t++) loop(arrays[0], arrays[1], arrays.slice(2), scalarRecord(k, C === Float32Array, flags), on);
  } catch (e) {
    return String((e as Error).message);
  }
  return arrays;
}

describe('the reference runner copies each loop per flags and dtype', () => {
  for (const k of registeredKernels()) {
    it(`${k.name}: the copies give the loop's bits`, () => {
      for (let flags = 0; flags <= k.allFlags; flags++) {
        for (const C of [Float32Array, Float64Array]) {
          const copy = specializedLoop(k, flags, C === Float32Array);
          const want = run(k.reference, k, flags, C);
          const got = run(copy, k, flags, C);
          if (typeof want === 'string') {
            expect(got).toBe(want);
            continue;
          }
          expect(typeof got).toBe('object');
          (got as Arr[]).forEach((a, j) => {
            for (let i = 0; i < a.length; i++) {
              if (!Object.is(a[i], want[j][i])) expect.fail(`${k.name} flags ${flags} ${C.name}: array ${j}[${i}] ${a[i]} vs ${want[j][i]}`);
            }
          });
        }
      }
    });
  }

  it('copies the loops that use the prelude helpers and flags (Adam, SGD), once per flags and dtype', () => {
    for (const k of [ADAM_KERNEL, SGD_KERNEL] as AnyKernel[]) {
      const a = specializedLoop(k, 0, true);
      expect(a).not.toBe(k.reference);
      expect(specializedLoop(k, 0, true)).toBe(a);
      expect(specializedLoop(k, 0, false)).not.toBe(a);
      expect(specializedLoop(k, 1, true)).not.toBe(a);
    }
  });

  const SCALE = 3;
  const fake = (reference: AnyKernel['reference']): AnyKernel =>
    ({ name: 'fake', scalars: [], flags: ['x'], allFlags: 1, state: [], reference, stride: () => 2 }) as unknown as AnyKernel;

  it('folds the flags into the copy', () => {
    const k = fake((p, _g, _state, _s, on) => {
      for (let i = 0; i < p.length; i++) p[i] = on.x ? p[i] + 1 : p[i] - 1;
    });
    // An arrow function is not copied; a method is.
    expect(specializedLoop(k, 1, false)).toBe(k.reference);
    const m = fake({
      reference(p: Arr, _g: Arr, _state: readonly Arr[], _s: unknown, on: Record<string, boolean>) {
        for (let i = 0; i < p.length; i++) p[i] = on.x ? p[i] + 1 : p[i] - 1;
      },
    }.reference as AnyKernel['reference']);
    const on1 = specializedLoop(m, 1, false);
    const on0 = specializedLoop(m, 0, false);
    expect(on1).not.toBe(m.reference);
    const p = Float64Array.of(5);
    // The copy for flags 1 adds whatever record it is given: its flag is a constant.
    on1(p, p, [], {}, { x: false });
    expect(p[0]).toBe(6);
    on0(p, p, [], {}, { x: true });
    expect(p[0]).toBe(5);
  });

  it('runs a loop that reads a variable of its module, or a string, as it is', () => {
    const usesModule = fake({
      reference(p: Arr) {
        for (let i = 0; i < p.length; i++) p[i] = p[i] * SCALE;
      },
    }.reference as AnyKernel['reference']);
    expect(specializedLoop(usesModule, 0, false)).toBe(usesModule.reference);
    const usesString = fake({
      reference(p: Arr) {
        if (p.length < 0) throw new Error('never');
      },
    }.reference as AnyKernel['reference']);
    expect(specializedLoop(usesString, 0, false)).toBe(usesString.reference);
  });
});
