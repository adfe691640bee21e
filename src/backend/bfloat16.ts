/**
 * bfloat16: the upper 16 bits of a float32 (1 sign, 8 exponent, 7 mantissa bits), stored as
 * Uint16 bit patterns. Rounding is to nearest, ties to even, as torch's `.bfloat16()` and the
 * native kernels (native/kernels/isa_table.inc, `to_bf16`) round; a NaN stays a (quiet) NaN.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The bfloat16 bits nearest to x's float32 value: x is rounded to float32 first, as when a
 * float32 result is stored to bfloat16 (for a float64 x this can differ from rounding x directly
 * when x lies within half a float32 ulp of a bfloat16 tie).
 */
export function toBfloat16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40; // NaN: keep it quiet
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The value of bfloat16 bits h (exact in float32 and float64). */
export function fromBfloat16Bits(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** x rounded to the nearest bfloat16 value, as a number. */
export function roundBfloat16(x: number): number {
  return fromBfloat16Bits(toBfloat16Bits(x));
}

/** Widens bfloat16 bits `src[from, from + n)` into `dst[0, n)`. */
export function widenBfloat16(src: Uint16Array, from: number, n: number, dst: Float32Array | Float64Array): void {
  for (let i = 0; i < n; i++) dst[i] = fromBfloat16Bits(src[from + i]);
}

/** Rounds `src[0, n)` to bfloat16 bits into `dst[from, from + n)`. */
export function narrowBfloat16(src: Float32Array | Float64Array, n: number, dst: Uint16Array, from: number): void {
  for (let i = 0; i < n; i++) dst[from + i] = toBfloat16Bits(src[i]);
}
