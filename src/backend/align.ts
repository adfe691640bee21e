import type { StateArray } from './types.js';

/** The byte offset of `a[0]` within its cache line (Backend.lineOffset). */
export type LineOffset = (a: StateArray) => number;

/** The cache line the native runner aligns a tensor's streams to (kCacheLine in native/bindings/addon.cc). */
export const CACHE_LINE = 64;
/**
 * The shortest tensor the native runner splits to align its loads (kMinAlignElements there; a
 * test checks they agree): shorter ones are not padded, which would only cost memory.
 */
export const MIN_ALIGNED_LENGTH = 128;

/**
 * The first index ≥ `start` of `arena` whose element sits at the same place within a cache line
 * as `target[0]`, counted in elements (so a bfloat16 state view lines up with its float32 param:
 * element i of both in the same 16-element group). The native runner splits a tensor once so
 * that p's vector loads are aligned (step_aligned); the other streams' loads are aligned too when
 * they start where p does, and straddle two lines each when not: 1000 params of 1000 float32
 * whose state regions alternated between two offsets stepped 1.6× slower than the same params
 * aligned alike (bench/optimizer-suite.js). `start` itself without `lineOffset` (a backend
 * that steps copies), for a target shorter than MIN_ALIGNED_LENGTH, or when an array is not
 * element-aligned. Consecutive views of one buffer get no
 * padding: their state stays consecutive, and still coalesces into one run.
 */
export function lineAligned(lineOffset: LineOffset | undefined, arena: StateArray, start: number, target: StateArray): number {
  if (lineOffset === undefined || target.length < MIN_ALIGNED_LENGTH) return start;
  const base = lineOffset(arena);
  const at = lineOffset(target);
  const size = arena.BYTES_PER_ELEMENT;
  const targetSize = target.BYTES_PER_ELEMENT;
  if (base % size !== 0 || at % targetSize !== 0) return start;
  const perLine = CACHE_LINE / targetSize;
  const have = (base / size + start) % perLine;
  return start + ((((at / targetSize - have) % perLine) + perLine) % perLine);
}

/** The most `lineAligned` can add to an index for `target`. */
export function maxLinePad(lineOffset: LineOffset | undefined, target: StateArray): number {
  return lineOffset === undefined || target.length < MIN_ALIGNED_LENGTH ? 0 : CACHE_LINE / target.BYTES_PER_ELEMENT - 1;
}
