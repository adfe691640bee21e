/**
 * Issue 5, item 4: the addon in worker threads. It loads in 4 workers at once (context-aware,
 * no static mutable state); each worker trains independently with results equal to the main
 * thread's bit for bit; parameters backed by a SharedArrayBuffer train in place, whichever thread
 * allocated them; a worker terminated mid-training (async calls in flight) leaves the process and
 * the other workers unharmed; and 20 short-lived workers in a row load and unload it (the
 * per-environment cleanup hooks).
 *
 * Workers run test/fixtures/worker-train.js on the compiled library (see helpers/dist.ts); this
 * thread runs the same `train` from the same build, so both sides execute the same code.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeAvailable } from '../src/backend/select.js';
import { compiledDist } from './helpers/dist.js';

const fixture = path.join(__dirname, 'fixtures', 'worker-train.js');
const requireHere = createRequire(__filename);
const { train, bytes } = requireHere('./fixtures/worker-train.js') as {
  train: (lib: Lib, options: TrainOptions) => { w: FloatArray; v: FloatArray; loss: number };
  bytes: (a: FloatArray) => Uint8Array;
};

type FloatArray = Float32Array | Float64Array;
interface TrainOptions {
  seed?: number;
  steps?: number;
  dtype?: 'float32' | 'float64';
  w?: FloatArray;
  v?: FloatArray;
}
type Lib = Record<string, unknown> & {
  setBackend(name: string): unknown;
  getBackend(): { name: string };
  backendInfo(): { simd: string; blas: string };
};
interface Info {
  backend: string;
  simd: string;
  blas: string;
}
interface TrainResult {
  info: Info;
  w: Uint8Array;
  v: Uint8Array;
  loss: number;
  sharedW: FloatArray;
  sharedV: FloatArray;
}

const STEPS = 120;
let dist = '';
let lib: Lib;
let previousBackend = 'reference';

beforeAll(() => {
  dist = compiledDist();
  lib = requireHere(dist) as Lib;
  previousBackend = lib.getBackend().name;
  lib.setBackend('native');
}, 120_000);

afterAll(() => {
  lib?.setBackend(previousBackend);
});

/** Starts a worker on the fixture; resolves with its messages when it exits. */
function start(job: Record<string, unknown>) {
  const worker = new Worker(fixture, { workerData: { role: 'optim-test', dist, ...job } });
  const messages: unknown[] = [];
  worker.on('message', (m) => messages.push(m));
  const exited = new Promise<{ code: number; messages: unknown[] }>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => resolve({ code, messages }));
  });
  return { worker, exited, messages };
}

function expectSameBits(got: Uint8Array | FloatArray, want: FloatArray, what: string): void {
  const g = got instanceof Uint8Array ? got : bytes(got);
  const w = bytes(want);
  expect(g.byteLength, what).toBe(w.byteLength);
  let first = -1;
  for (let i = 0; i < w.length; i++) {
    if (g[i] !== w[i]) {
      first = i;
      break;
    }
  }
  expect(first, `${what}: first differing byte`).toBe(-1);
}

describe.runIf(nativeAvailable() || process.env.CI === 'true')('the native addon in worker threads', () => {
  it('loads in 4 workers at once; each trains as the main thread does, bit for bit, on plain and shared params', async () => {
    const parties = 4;
    const barrier = new Int32Array(new SharedArrayBuffer(4));
    const jobs = [
      { seed: 1, dtype: 'float32' },
      { seed: 2, dtype: 'float64' },
      { seed: 3, dtype: 'float32' },
      { seed: 1, dtype: 'float32' },
    ] as const;
    const t0 = Date.now();
    const runs = jobs.map((j) => start({ mode: 'train', barrier, parties, steps: STEPS, ...j }));
    const outcomes = await Promise.all(runs.map((r) => r.exited));
    const tWorkers = Date.now() - t0;
    const t1 = Date.now();
    const mine = jobs.map((j) => train(lib, { ...j, steps: STEPS }));
    const tMain = Date.now() - t1;
    expect(Atomics.load(barrier, 0)).toBe(parties);
    outcomes.forEach(({ code, messages }, i) => {
      expect(code, `worker ${i} exit code`).toBe(0);
      const r = messages[0] as TrainResult;
      expect(r.info.backend).toBe('native');
      expect(r.info.simd).toBe(lib.backendInfo().simd);
      expect(r.info.blas).toBe(lib.backendInfo().blas);
      expectSameBits(r.w, mine[i].w, `worker ${i} (${jobs[i].dtype}, seed ${jobs[i].seed}) softmax weights`);
      expectSameBits(r.v, mine[i].v, `worker ${i} Newton parameters`);
      expect(Object.is(r.loss, mine[i].loss)).toBe(true);
      expect(r.sharedW.buffer).toBeInstanceOf(SharedArrayBuffer);
      expectSameBits(r.sharedW, mine[i].w, `worker ${i}: its own shared-memory weights, read here`);
      expectSameBits(r.sharedV, mine[i].v, `worker ${i}: its own shared-memory Newton parameters`);
    });
    // Workers 0 and 3 ran the same job: the seed alone decides the result.
    expectSameBits(mine[0].w, mine[3].w, 'two runs of one seed');
    console.log(
      `workers: 4 workers x 2 runs of ${STEPS} steps + 3 Newton steps in ${tWorkers} ms (incl. start-up), ` +
        `main thread 4 runs in ${tMain} ms; loss seed 1 ${mine[0].loss.toFixed(6)}, seed 2 (f64) ${mine[1].loss.toFixed(6)}`,
    );
  }, 120_000);

  it('a worker trains parameters the main thread allocated in shared memory, in place', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const want = train(lib, { seed: 7, steps: STEPS, dtype });
      const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
      // (TypeScript's ES2022 lib types the constructors for ArrayBuffer only.)
      const w = new Ctor(new SharedArrayBuffer(want.w.byteLength) as unknown as ArrayBuffer);
      const v = new Ctor(new SharedArrayBuffer(want.v.byteLength) as unknown as ArrayBuffer);
      const { exited } = start({ mode: 'train-given', seed: 7, steps: STEPS, dtype, w, v });
      const { code, messages } = await exited;
      expect(code).toBe(0);
      expect(messages).toEqual([expect.objectContaining({ done: true })]);
      expectSameBits(w, want.w, `${dtype} weights trained by the worker`);
      expectSameBits(v, want.v, `${dtype} Newton parameters trained by the worker`);
    }
  }, 120_000);

  it('terminating a worker mid-training, async calls in flight, leaves the process and other workers unharmed', async () => {
    const doomed = [start({ mode: 'endless', dtype: 'float32' }), start({ mode: 'endless', dtype: 'float64' })];
    const others = [1, 2].map((seed) => start({ mode: 'train', seed, steps: STEPS, dtype: 'float32' }));
    await Promise.all(
      doomed.map(
        (d) =>
          new Promise<void>((resolve) => {
            const check = (m: { steps: number }) => {
              if (m.steps >= 2000) {
                d.worker.off('message', check);
                resolve();
              }
            };
            d.worker.on('message', check);
          }),
      ),
    );
    const codes = await Promise.all(doomed.map((d) => d.worker.terminate()));
    expect(codes).toEqual([1, 1]);
    const done = await Promise.all(others.map((o) => o.exited));
    const mine = [1, 2].map((seed) => train(lib, { seed, steps: STEPS, dtype: 'float32' }));
    done.forEach(({ code, messages }, i) => {
      expect(code).toBe(0);
      expectSameBits((messages[0] as TrainResult).w, mine[i].w, `worker beside the terminated ones, seed ${i + 1}`);
    });
    // The main thread's addon still works, sync and async.
    const again = train(lib, { seed: 1, steps: STEPS, dtype: 'float32' });
    expectSameBits(again.w, mine[0].w, 'main thread after the terminations');
    const cholesky = lib.choleskyAsync as (a: Float64Array, n: number) => Promise<Float64Array>;
    expect(Array.from(await cholesky(Float64Array.from([4, 2, 2, 3]), 2))).toEqual([2, 0, 1, Math.SQRT2]);
  }, 120_000);

  it('20 short-lived workers in a row load and unload the addon', async () => {
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      const dtype = i % 2 === 0 ? 'float32' : 'float64';
      const { worker, exited } = start({ mode: 'short', dtype });
      // Half end on their own (an empty event loop), half are terminated right after they answer.
      if (i % 4 >= 2) worker.once('message', () => void worker.terminate());
      const { code, messages } = await exited;
      // A terminated worker exits with 1, unless it finished first.
      expect(i % 4 >= 2 ? [0, 1] : [0], `worker ${i} exit code`).toContain(code);
      const m = messages[0] as { info: Info; p: number[]; L: number[] };
      expect(m.info.backend).toBe('native');
      expect(m.L).toEqual([2, 0, 1, Math.SQRT2]);
      // The same step here gives the same bits.
      const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
      const P = lib.param as (data: FloatArray, name: string) => { data: FloatArray; grad: FloatArray };
      const Adam = lib.Adam as new (ps: unknown[], o: object) => { step(): void };
      const p = P(Ctor.from([1, 2, 3]), 'p');
      p.grad.set([0.5, -0.5, 1]);
      new Adam([p], { lr: 0.1 }).step();
      expect(m.p).toEqual(Array.from(p.data));
    }
    console.log(`workers: 20 short-lived workers in ${Date.now() - t0} ms`);
  }, 120_000);
});
