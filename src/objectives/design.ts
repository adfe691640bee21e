/**
 * The design matrix of a linear model and the products every objective is made of, all through
 * the library's `matmul` and `gram` (so they run on the selected backend):
 *
 *   scores    Z = X·W + 1·bᵀ                    (n×K; W is cols×K, b has K entries)
 *   backprop  ∇W = α·Xᵀ·R,  ∇b = α·Rᵀ·1         (R is n×K)
 *   weighted  α·X̃ᵀ·diag(c)·X̃, c ≥ 0            (X̃ = [X 1] with an intercept), as the Gram
 *             matrix of the rows of X̃ scaled by √(α·cᵢ)
 *
 * A parameter vector holds W row-major (w[j·K + k]) then b, so with X̃ the weights are W̃ =
 * [W; bᵀ], (cols+1)×K, and entry j·K + k is feature j (the intercept at j = cols), output k.
 */
import type { FloatArray } from '../backend/types.js';
import { gram, matmul } from '../linalg/matmul.js';

export class Design<T extends FloatArray> {
  /** Features per row plus one for the intercept: the side of a weighted Gram block. */
  readonly width: number;
  /** Entries of a parameter vector: width·outputs. */
  readonly size: number;
  private readonly scratch = new Map<string, FloatArray>();

  constructor(
    readonly X: T,
    readonly rows: number,
    readonly cols: number,
    readonly outputs: number,
    readonly fitIntercept: boolean,
  ) {
    this.width = cols + (fitIntercept ? 1 : 0);
    this.size = this.width * outputs;
  }

  /** A zeroed array of the data's dtype. */
  alloc(length: number): T {
    return (this.X instanceof Float32Array ? new Float32Array(length) : new Float64Array(length)) as T;
  }

  /** A reusable work array (contents undefined) of the data's dtype; `name` keeps uses apart. */
  work(name: string, length: number): T {
    return this.reuse(name, length, () => this.alloc(length)) as T;
  }

  /** As `work`, in float64 (weights and probabilities that stay in double precision). */
  work64(name: string, length: number): Float64Array {
    return this.reuse(`${name}|f64`, length, () => new Float64Array(length)) as Float64Array;
  }

  private reuse(key: string, length: number, make: () => FloatArray): FloatArray {
    let buf = this.scratch.get(key);
    if (buf === undefined || buf.length < length) {
      buf = make();
      this.scratch.set(key, buf);
    }
    return buf.subarray(0, length);
  }

  /**
   * The rows a call runs over: X itself, or the batch's rows copied into a work array (a copy
   * costs a small fraction of the products that follow, and makes them contiguous for BLAS).
   */
  view(batch: Uint32Array | null): T {
    if (batch === null) return this.X;
    const cols = this.cols;
    const out = this.work('gathered', batch.length * cols);
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i] * cols;
      out.set(this.X.subarray(r, r + cols), i * cols);
    }
    return out;
  }

  /** Z (n×K) = X·W + 1·bᵀ for the n rows of `X`. */
  scores(X: T, n: number, w: T, Z: T): void {
    const { cols, outputs: K } = this;
    matmul(X, w.subarray(0, cols * K) as T, { m: n, k: cols, n: K, out: Z });
    if (!this.fitIntercept) return;
    const b = cols * K;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < K; k++) Z[i * K + k] += w[b + k];
    }
  }

  /** g = α·X̃ᵀ·R: ∇W = α·Xᵀ·R and ∇b = α·(column sums of R). Overwrites g. */
  backprop(X: T, n: number, R: T, alpha: number, g: T): void {
    const { cols, outputs: K } = this;
    matmul(X, R, { m: cols, n: K, k: n, transA: true, alpha, out: g.subarray(0, cols * K) as T });
    if (!this.fitIntercept) return;
    const b = cols * K;
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += R[i * K + k];
      g[b + k] = alpha * s;
    }
  }

  /**
   * out (width×width) = α·X̃ᵀ·diag(c)·X̃ for weights cᵢ ≥ 0 (α ≥ 0): Xᵀ D X, with the intercept
   * row and column (Xᵀc, Σc) when there is one. One syrk on the rows scaled by √(α·cᵢ).
   */
  weightedGram(X: T, n: number, c: ArrayLike<number>, alpha: number, out: T): void {
    const { cols, width } = this;
    const A = this.work('scaledRows', n * width);
    for (let i = 0; i < n; i++) {
      const s = Math.sqrt(alpha * c[i]);
      const src = i * cols;
      const dst = i * width;
      for (let j = 0; j < cols; j++) A[dst + j] = s * X[src + j];
      if (width > cols) A[dst + cols] = s;
    }
    gram(A, { rows: n, cols: width, trans: true, out });
  }
}
