'use strict';
// The peer libraries the linear algebra rows compare against (devDependencies, used by the bench
// only): ml-matrix (plain JavaScript, float64 only) and tfjs on its wasm backend (float32 only;
// tfjs has no Cholesky). Each peer gives, per case, a function to time in alternation with the
// native and reference calls (linalg.js), or undefined where it does not apply. A peer that
// cannot load is reported with its reason instead of failing the bench.
const path = require('node:path');

// One ml-matrix call costs ~0.25 s at n = 512 (matmul) and ~0.4–0.8 s at n = 1000 (Cholesky);
// the next sizes up would take 2–6 s a call, most of the bench's budget for one cell.
const ML_MATRIX_MAX = { matmul: 512, cholesky: 1000 };

// What each peer can be compared on: the report's columns, present even when a peer fails.
const ML_META = { name: 'ml-matrix', dtypes: ['float64'], hasCholesky: true };
const TFJS_META = { name: 'tfjs-wasm', dtypes: ['float32'], hasCholesky: false };

function mlMatrix() {
  let ml;
  try {
    ml = require('ml-matrix');
  } catch (e) {
    return { ...ML_META, error: `not installed (${e.message.split('\n')[0]})` };
  }
  const { Matrix, CholeskyDecomposition } = ml;
  const square = (n, data) => {
    const m = new Matrix(n, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m.set(i, j, data[i * n + j]);
    return m;
  };
  return {
    ...ML_META,
    note: 'ml-matrix: Matrix#mmul and CholeskyDecomposition#solve; it stores float64 only, so it appears in the float64 rows.',
    matmul(dtype, n, a, b) {
      if (dtype !== 'float64' || n > ML_MATRIX_MAX.matmul) return undefined;
      const A = square(n, a), B = square(n, b);
      return () => A.mmul(B);
    },
    cholesky(n, a, rhs) {
      if (n > ML_MATRIX_MAX.cholesky) return undefined;
      const A = square(n, a), R = Matrix.columnVector(Array.from(rhs));
      return () => new CholeskyDecomposition(A).solve(R);
    },
  };
}

/** tfjs-core on the wasm backend, its .wasm binaries loaded from the installed package. */
async function tfjsWasm() {
  try {
    const tf = require('@tensorflow/tfjs-core');
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
    wasm.setWasmPaths(`${dist}${path.sep}`);
    if (!(await tf.setBackend('wasm'))) return { ...TFJS_META, error: 'tf.setBackend("wasm") returned false' };
    await tf.ready();
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    let held = [];
    return {
      ...TFJS_META,
      note: `tfjs-wasm: @tensorflow/tfjs-core ${tf.version_core} with tfjs-backend-wasm, SIMD ${simd ? 'on' : 'off'}, threads ${threads ? 'on' : 'off (one thread)'}; tf.matMul then dataSync(), so the result lands in a JS Float32Array as the addon's does. float32 only.`,
      matmul(dtype, n, a, b) {
        if (dtype !== 'float32') return undefined;
        // The previous size's operands are done with: keep one pair in the wasm heap at a time.
        held.forEach((t) => t.dispose());
        const A = tf.tensor2d(a, [n, n]), B = tf.tensor2d(b, [n, n]);
        held = [A, B];
        return () => {
          const c = tf.matMul(A, B);
          c.dataSync();
          c.dispose();
        };
      },
    };
  } catch (e) {
    return { ...TFJS_META, error: `the wasm backend could not initialise: ${e.message.split('\n')[0]}` };
  }
}

/** The peers, each { name, dtypes, hasCholesky, note, matmul?, cholesky? } or with `error` instead. */
async function loadPeers() {
  return [mlMatrix(), await tfjsWasm()];
}

module.exports = { loadPeers, ML_MATRIX_MAX };
