import type { Param } from '../param.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { describe, isFloatArray } from '../validate.js';

/**
 * The second-order methods see all their parameters as one vector: the concatenation of every
 * param's data, in order. These helpers move between that view (a Float64Array) and the params.
 */
export class FlatParams {
  readonly params: Param[];
  readonly size: number;
  readonly dtype: 'float32' | 'float64';

  constructor(params: Param[], who: string) {
    if (!Array.isArray(params) || params.length === 0) {
      throw new OptimTypeError(`${who}: params must be a non-empty array of param() handles`);
    }
    let size = 0;
    const seen = new Set<string>();
    params.forEach((p, i) => {
      if (p === null || typeof p !== 'object' || !isFloatArray(p.data) || !isFloatArray(p.grad)) {
        throw new OptimTypeError(`${who}: params[${i}] must be a param() handle with Float32Array/Float64Array data and grad`);
      }
      if (typeof p.name !== 'string') throw new OptimTypeError(`${who}: params[${i}].name must be a string, got ${describe(p.name)}`);
      if (p.data.length !== p.grad.length) {
        throw new OptimRangeError(`${who}: params[${i}] ("${p.name}") has data length ${p.data.length} but grad length ${p.grad.length}`);
      }
      if (seen.has(p.name)) throw new OptimRangeError(`${who}: two params share the name "${p.name}"`);
      seen.add(p.name);
      size += p.data.length;
    });
    const f32 = params[0].data instanceof Float32Array;
    params.forEach((p, i) => {
      if ((p.data instanceof Float32Array) !== f32) {
        throw new OptimTypeError(`${who}: params[${i}] is a ${describe(p.data)}, but params[0] is a ${describe(params[0].data)}; all params must share one dtype`);
      }
    });
    this.params = params;
    this.size = size;
    this.dtype = f32 ? 'float32' : 'float64';
  }

  /** Checks that no param was resized or replaced by an array of another length. */
  check(who: string): void {
    let size = 0;
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i];
      if (!isFloatArray(p.grad) || p.grad.length !== p.data.length) {
        throw new OptimTypeError(`${who}: params[${i}] ("${p.name}").grad must be a typed array of length ${p.data.length}`);
      }
      size += p.data.length;
    }
    if (size !== this.size) {
      throw new OptimRangeError(`${who}: the params now hold ${size} values, ${this.size} when the optimizer was made`);
    }
  }

  readData(out: Float64Array): Float64Array {
    return this.gather('data', out);
  }

  readGrad(out: Float64Array): Float64Array {
    return this.gather('grad', out);
  }

  private gather(key: 'data' | 'grad', out: Float64Array): Float64Array {
    let o = 0;
    for (const p of this.params) {
      out.set(p[key], o);
      o += p[key].length;
    }
    return out;
  }

  writeData(x: Float64Array): void {
    let o = 0;
    for (const p of this.params) {
      p.data.set(x.subarray(o, o + p.data.length));
      o += p.data.length;
    }
  }

  /** p += t*d, param by param (rounded to the params' dtype once). */
  addScaled(t: number, d: Float64Array): void {
    let o = 0;
    for (const p of this.params) {
      const data = p.data;
      for (let i = 0; i < data.length; i++) data[i] = data[i] + t * d[o + i];
      o += data.length;
    }
  }
}

export function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (v > m || v !== v) m = v;
  }
  return m;
}

export function sumAbs(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]);
  return s;
}
