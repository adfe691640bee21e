/**
 * Where state and grads start (src/backend/align.ts): on the native backend each state view of an
 * optimizer starts at the same place within a cache line as its param, counted in elements (so
 * the runner's one split aligns every stream's vector loads), and param() places its grad where
 * its data starts; consecutive views of one buffer get consecutive state, with no padding, so
 * they still coalesce into one run. On the other backends (which step copies) nothing is padded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Adam, param, paramArena, setBackend } from '../src/index.js';
import { CACHE_LINE, lineAligned, maxLinePad, MIN_ALIGNED_LENGTH } from '../src/backend/align.js';
import { loadNative } from '../src/backend/native.js';
import type { FloatArray, StateArray } from '../src/backend/types.js';

const native = loadNative();
const lineOffset = native.backend?.lineOffset;

afterEach(() => {
  setBackend('auto');
});

/** Element phase within a line of `perLine` elements. */
const phase = (a: StateArray, perLine: number) => (lineOffset!(a) / a.BYTES_PER_ELEMENT) % perLine;

describe('lineAligned', () => {
  // A pretend backend: array `a` lies at byte `fake.get(a)` into its line.
  const fake = new Map<StateArray, number>();
  const at = (a: StateArray) => fake.get(a)!;

  it('returns the first index at or after start whose element phase is the target\'s', () => {
    for (const [ArenaC, TargetC] of [[Float32Array, Float32Array], [Float64Array, Float64Array], [Uint16Array, Float32Array]] as const) {
      const perLine = CACHE_LINE / TargetC.BYTES_PER_ELEMENT;
      for (let base = 0; base < CACHE_LINE; base += ArenaC.BYTES_PER_ELEMENT) {
        for (let t = 0; t < CACHE_LINE; t += TargetC.BYTES_PER_ELEMENT) {
          for (const start of [0, 1, 5, 17, 1000]) {
            const arena = new ArenaC(1);
            const target = new TargetC(MIN_ALIGNED_LENGTH);
            fake.set(arena, base).set(target, t);
            const i = lineAligned(at, arena, start, target);
            const want = t / TargetC.BYTES_PER_ELEMENT;
            const have = (base / ArenaC.BYTES_PER_ELEMENT + i) % perLine;
            expect(have, `${ArenaC.name} at ${base}, ${TargetC.name} at ${t}, start ${start}`).toBe(want);
            expect(i).toBeGreaterThanOrEqual(start);
            expect(i - start).toBeLessThanOrEqual(maxLinePad(at, target));
          }
        }
      }
    }
  });

  it('pads nothing without a lineOffset, for a target too short to be split, or for an array not on an element boundary', () => {
    const arena = new Float32Array(4);
    const target = new Float32Array(MIN_ALIGNED_LENGTH);
    expect(lineAligned(undefined, arena, 3, target)).toBe(3);
    expect(maxLinePad(undefined, target)).toBe(0);
    fake.set(arena, 2).set(target, 8);
    expect(lineAligned(at, arena, 3, target)).toBe(3);
    const short = new Float32Array(MIN_ALIGNED_LENGTH - 1);
    fake.set(arena, 0).set(short, 8);
    expect(lineAligned(at, arena, 3, short)).toBe(3);
    expect(maxLinePad(at, short)).toBe(0);
    fake.set(target, 8);
    expect(lineAligned(at, arena, 3, target)).toBe(18);
  });
});

describe.runIf(lineOffset !== undefined)('native backend: state and grads start where their param does', () => {
  it('MIN_ALIGNED_LENGTH is the runner\'s kMinAlignElements', () => {
    expect(native.addon!.info().minAlignElements).toBe(MIN_ALIGNED_LENGTH);
  });

  it('lineOffset reads the address: a view one element further is one element further into its line', () => {
    const a = new Float32Array(64);
    for (let i = 0; i < 32; i++) expect(lineOffset!(a.subarray(i))).toBe((lineOffset!(a) + 4 * i) % CACHE_LINE);
    expect(() => (native.addon!.lineOffset as (x: unknown) => number)({})).toThrow(/lineOffset\(a\): a must be a typed array/);
  });

  it('param() puts each grad at its data\'s offset', () => {
    setBackend('native');
    for (const C of [Float32Array, Float64Array]) {
      for (let k = 0; k < 40; k++) {
        const raw = new C(1100 + k * 3);
        const data = raw.subarray(k % 16, (k % 16) + 1000 + k);
        const p = param(data as FloatArray);
        expect(lineOffset!(p.grad)).toBe(lineOffset!(p.data));
        expect(p.grad.length).toBe(p.data.length);
      }
      const big = param(new C(2e6).subarray(3));
      expect(lineOffset!(big.grad)).toBe(lineOffset!(big.data));
    }
  });

  for (const stateDtype of ['param', 'bfloat16'] as const) {
    for (const C of stateDtype === 'bfloat16' ? [Float32Array] : [Float32Array, Float64Array]) {
      it(`Adam ${C.name}, ${stateDtype} state: every state view at its param's element phase`, () => {
        setBackend('native');
        const perLine = CACHE_LINE / C.BYTES_PER_ELEMENT;
        const ps = Array.from({ length: 50 }, (_, i) => {
          const p = param(new C(1000 + 7 * i).subarray(i % 5) as FloatArray);
          p.grad.fill(0.25);
          return p;
        });
        const opt = new Adam(ps, { lr: 0.01, amsgrad: true, stateDtype });
        opt.step();
        for (const p of ps) {
          const st = opt.state.get(p)!;
          for (const nm of ['expAvg', 'expAvgSq', 'maxExpAvgSq']) {
            const s = st[nm] as StateArray;
            expect(s.length).toBe(p.data.length);
            expect(phase(s, perLine), nm).toBe(phase(p.data, perLine));
          }
        }
      });
    }
  }

  it('consecutive views keep consecutive state (no padding), so they still run as one tensor', () => {
    setBackend('native');
    const ps = paramArena({ a: 1003, b: 17, c: 5000 });
    for (const p of Object.values(ps)) p.grad.fill(0.5);
    const opt = new Adam(Object.values(ps), { lr: 0.01 });
    opt.step();
    const a = opt.state.get(ps.a)!.expAvg as Float32Array;
    const b = opt.state.get(ps.b)!.expAvg as Float32Array;
    const c = opt.state.get(ps.c)!.expAvg as Float32Array;
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(a.byteOffset + a.byteLength);
    expect(c.byteOffset).toBe(b.byteOffset + b.byteLength);
  });

  it('the reference backend pads nothing', () => {
    setBackend('reference');
    const ps = [param(new Float32Array(1001)), param(new Float32Array(999))];
    const opt = new Adam(ps, { lr: 0.01 });
    opt.step();
    const m0 = opt.state.get(ps[0])!.expAvg as Float32Array;
    const m1 = opt.state.get(ps[1])!.expAvg as Float32Array;
    expect(m1.byteOffset).toBe(m0.byteOffset + m0.byteLength);
  });
});

describe('loaded state goes into arenas, as a first step creates it', () => {
  for (const backendName of ['native', 'reference'] as const) {
    for (const stateDtype of ['param', 'bfloat16'] as const) {
      it.runIf(backendName === 'reference' || lineOffset !== undefined)(`${backendName}, ${stateDtype} state: one buffer per state name, same values, same next step`, () => {
        setBackend(backendName);
        const make = () => Array.from({ length: 30 }, (_, i) => {
          const p = param(new Float32Array(500 + i).map((_, k) => Math.sin(k + i)), `p${i}`);
          p.grad.set(p.data.map((x) => 0.1 * x + 0.01));
          return p;
        });
        const a = make();
        const optA = new Adam(a, { lr: 0.01, stateDtype });
        optA.step();
        const b = make();
        b.forEach((p, i) => p.data.set(a[i].data));
        const optB = new Adam(b, { lr: 0.01, stateDtype });
        optB.loadStateDict(optA.stateDict());
        const bufs = new Set(b.map((p) => (optB.state.get(p)!.expAvg as StateArray).buffer));
        expect(bufs.size).toBe(1);
        for (const p of b) {
          const m = optB.state.get(p)!.expAvg as StateArray;
          if (lineOffset !== undefined && backendName === 'native') expect(phase(m, 16)).toBe(phase(p.data, 16));
        }
        optA.step();
        optB.step();
        a.forEach((p, i) => expect(Buffer.from(b[i].data.buffer, b[i].data.byteOffset, b[i].data.byteLength).equals(Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength))).toBe(true));
      });
    }
  }
});
