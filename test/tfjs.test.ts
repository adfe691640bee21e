/**
 * Issue 12, item 5 (tfjs): `optim/tfjs`, this library's optimizers as a tf.Optimizer for
 * tfjs-layers' `model.compile` / `model.fit`, on tfjs-core's cpu backend.
 *
 * - model.fit with our AdamW equals the same model trained step by step through our own API
 *   (gradients by tf.variableGrads on the same loss, fed to `new AdamW(params)` directly):
 *   asserted within float32 tolerance |Δ| ≤ 1e-6·(1 + |w|); measured: bit for bit (0).
 * - tfjs's own tf.train.adam and our Adam give the same trajectory where their rules agree. Both
 *   put ε outside the square root of the bias-corrected second moment (tfjs: m̂/(√v̂ + ε); ours
 *   torch's m/(√v/√(1−β₂ᵗ) + ε)·1/(1−β₁ᵗ), the same rule), but tfjs's default ε is the
 *   backend's (1e-7 in float32) and ours torch's 1e-8, so ε is passed to both. They round
 *   differently (tfjs keeps β^t as a float32 product, we compute the bias corrections in
 *   float64), so the tolerance is float32 rounding grown over 24 steps: |Δ| ≤ 2e-5·(1 + |w|)
 *   (measured 1.9e-6, with the weights moved by 0.2), and 2e-6 after one step (measured 7.6e-8).
 *   AdamW with weight decay, which tf.train.adam lacks, parts from it by 4e-2.
 * - Schedules (through `scheduleCallback`), serialization (config and optimizer weights through
 *   model.save / tf.loadLayersModel), the non-finite policy, refusals, and no aliasing between
 *   a step's output and a weight snapshot: on the cpu backend (whose tensors keep the array they
 *   are made from, so a step hands them a copy) and on the wasm backend (which copies, so a step
 *   hands it our param's array).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Adam, AdamW, ExponentialLR, NonFiniteError, OptimRangeError, OptimTypeError, ReduceLROnPlateau, SGD, StepLR, param } from '../src/index.js';
import type { Param } from '../src/index.js';
import { TfjsOptimizer, scheduleCallback, tfjsOptimizer } from '../src/tfjs/index.js';
import { uniformStream } from '../src/data/random.js';

const N = 64;
const IN = 8;
const OUT = 3;
const BATCH = 16;

/**
 * A fixed synthetic dataset, drawn without tfjs's random ops. X: N×8 in [-1, 1); Y: one-hot of
 * the argmax of a fixed linear map of X plus noise.
 */
function dataset(seed = 7): { x: Float32Array; y: Float32Array } {
  const r = uniformStream(seed);
  const x = new Float32Array(N * IN);
  for (let i = 0; i < x.length; i++) x[i] = 2 * r() - 1;
  const w = Array.from({ length: IN * OUT }, () => 2 * r() - 1);
  const y = new Float32Array(N * OUT);
  for (let i = 0; i < N; i++) {
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < OUT; c++) {
      let s = 0.3 * (2 * r() - 1);
      for (let j = 0; j < IN; j++) s += x[i * IN + j] * w[j * OUT + c];
      if (s > bestScore) {
        bestScore = s;
        best = c;
      }
    }
    y[i * OUT + best] = 1;
  }
  return { x, y };
}

/** Dense 8→16 (relu) →3 (softmax), kernels from seeded initializers. */
function makeModel(): tfl.Sequential {
  const model = tfl.sequential();
  model.add(tfl.layers.dense({ inputShape: [IN], units: 16, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 11 }) }));
  model.add(tfl.layers.dense({ units: OUT, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 12 }) }));
  return model;
}

/** A fresh model with the weights of `like`. */
function cloneModel(like: tfl.LayersModel): tfl.Sequential {
  const model = makeModel();
  model.setWeights(like.getWeights());
  return model;
}

function variablesOf(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => tf.engine().registeredVariables[w.name]);
}

function weights(model: tfl.LayersModel): Float32Array[] {
  return model.getWeights().map((t) => t.dataSync() as Float32Array).map((a) => a.slice());
}

/** max |a − b| / (1 + |b|) over every element of every tensor. */
function maxRelDiff(a: Float32Array[], b: Float32Array[]): number {
  expect(a.map((t) => t.length)).toEqual(b.map((t) => t.length));
  let worst = 0;
  a.forEach((t, i) => t.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i][j]) / (1 + Math.abs(b[i][j]))))));
  return worst;
}

async function fit(model: tfl.LayersModel, optimizer: tf.Optimizer, epochs: number, callbacks: tfl.CustomCallbackArgs[] = []): Promise<number[]> {
  const { x, y } = dataset();
  const xs = tf.tensor2d(x, [N, IN]);
  const ys = tf.tensor2d(y, [N, OUT]);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  try {
    const h = await model.fit(xs, ys, { epochs, batchSize: BATCH, shuffle: false, verbose: 0, callbacks });
    return h.history.loss as number[];
  } finally {
    xs.dispose();
    ys.dispose();
  }
}

/**
 * The same training through our own API: per batch, tf.variableGrads of the loss model.fit
 * minimizes (tfjs-layers' categorical cross-entropy, averaged over the batch) into our params'
 * grads, `optimizer.step()`, the params written back into the model's variables.
 */
function trainByHand(model: tfl.LayersModel, make: (params: Param[]) => { step(): unknown }, epochs: number, perEpoch?: () => void): void {
  const { x, y } = dataset();
  const vars = variablesOf(model);
  const params = vars.map((v) => param(Float32Array.from(v.dataSync() as Float32Array), v.name));
  const optimizer = make(params);
  for (let e = 0; e < epochs; e++) {
    for (let b = 0; b < N / BATCH; b++) {
      tf.tidy(() => {
        const xb = tf.tensor2d(x.subarray(b * BATCH * IN, (b + 1) * BATCH * IN), [BATCH, IN]);
        const yb = tf.tensor2d(y.subarray(b * BATCH * OUT, (b + 1) * BATCH * OUT), [BATCH, OUT]);
        const loss = () => tf.mean(tfl.metrics.categoricalCrossentropy(yb, model.apply(xb) as tf.Tensor)) as tf.Scalar;
        const { grads } = tf.variableGrads(loss, vars);
        vars.forEach((v, i) => params[i].grad.set(grads[v.name].dataSync() as Float32Array));
      });
      optimizer.step();
      vars.forEach((v, i) => v.assign(tf.tensor(params[i].data.slice(), v.shape, 'float32')));
    }
    perEpoch?.();
  }
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

describe('optim/tfjs: model.fit trains with our optimizers', () => {
  it('tfjsOptimizer(AdamW) in model.fit equals our AdamW fed tf.variableGrads step by step (float32 tolerance)', async () => {
    const base = makeModel();
    const fitted = cloneModel(base);
    const byHand = cloneModel(base);
    const options = { lr: 1e-2, betas: [0.9, 0.99] as [number, number], weightDecay: 0.05 };
    const optimizer = tfjsOptimizer(AdamW, options);
    expect(optimizer).toBeInstanceOf(tf.Optimizer);
    const losses = await fit(fitted, optimizer, 6);
    expect(losses[5]).toBeLessThan(losses[0]);
    trainByHand(byHand, (params) => new AdamW(params, options), 6);
    const before = weights(base);
    const after = weights(fitted);
    expect(maxRelDiff(after, before)).toBeGreaterThan(1e-3); // it trained
    expect(maxRelDiff(after, weights(byHand))).toBeLessThanOrEqual(1e-6);
    expect(optimizer.iterations).toBe(6 * (N / BATCH));
    expect(optimizer.optimizer).toBeInstanceOf(AdamW);
    expect(optimizer.params.map((p) => p.name)).toEqual(fitted.trainableWeights.map((w) => w.name));
  });

  it('tf.train.adam and our Adam follow the same trajectory where their rules agree (ε passed to both)', async () => {
    const base = makeModel();
    const eps = 1e-7;
    const theirs1 = cloneModel(base);
    const ours1 = cloneModel(base);
    // One step: full batch, one epoch.
    const { x, y } = dataset();
    const oneStep = async (model: tfl.LayersModel, optimizer: tf.Optimizer) => {
      model.compile({ optimizer, loss: 'categoricalCrossentropy' });
      const xs = tf.tensor2d(x, [N, IN]);
      const ys = tf.tensor2d(y, [N, OUT]);
      await model.fit(xs, ys, { epochs: 1, batchSize: N, shuffle: false, verbose: 0 });
      tf.dispose([xs, ys]);
    };
    await oneStep(theirs1, tf.train.adam(1e-2, 0.9, 0.999, eps));
    await oneStep(ours1, tfjsOptimizer(Adam, { lr: 1e-2, betas: [0.9, 0.999], eps }));
    const one = maxRelDiff(weights(ours1), weights(theirs1));
    expect(one).toBeLessThanOrEqual(2e-6);

    const theirs = cloneModel(base);
    const ours = cloneModel(base);
    await fit(theirs, tf.train.adam(1e-2, 0.9, 0.999, eps), 6);
    await fit(ours, tfjsOptimizer(Adam, { lr: 1e-2, betas: [0.9, 0.999], eps }), 6);
    const moved = maxRelDiff(weights(ours), weights(base));
    const diff = maxRelDiff(weights(ours), weights(theirs));
    expect(moved).toBeGreaterThan(1e-2);
    expect(diff).toBeLessThanOrEqual(2e-5);

    // Where the rules differ, the trajectories part: torch's default ε (1e-8) against tfjs's
    // backend ε (1e-7), or decoupled weight decay (AdamW), which tf.train.adam does not have.
    const other = cloneModel(base);
    await fit(other, tfjsOptimizer(AdamW, { lr: 1e-2, betas: [0.9, 0.999], eps, weightDecay: 0.5 }), 6);
    expect(maxRelDiff(weights(other), weights(theirs))).toBeGreaterThan(100 * Math.max(diff, 1e-7));
  });

  it('a schedule built on the wrapped optimizer is stepped per epoch by scheduleCallback, as by hand', async () => {
    const base = makeModel();
    const fitted = cloneModel(base);
    const byHand = cloneModel(base);
    const optimizer = tfjsOptimizer(SGD, { lr: 0.2, momentum: 0.9, schedule: (o) => new StepLR(o, { stepSize: 2, gamma: 0.5 }) });
    expect(optimizer.scheduler).toBeUndefined();
    await fit(fitted, optimizer, 5, [scheduleCallback(optimizer)]);
    expect(optimizer.scheduler).toBeInstanceOf(StepLR);
    expect(optimizer.optimizer!.paramGroups[0].lr).toBeCloseTo(0.2 * 0.25, 15); // epochs 2 and 4
    let sched: StepLR | undefined;
    trainByHand(
      byHand,
      (params) => {
        const o = new SGD(params, { lr: 0.2, momentum: 0.9 });
        sched = new StepLR(o, { stepSize: 2, gamma: 0.5 });
        return o;
      },
      5,
      () => sched!.step(),
    );
    expect(maxRelDiff(weights(fitted), weights(byHand))).toBeLessThanOrEqual(1e-6);
  });

  it('build(model.trainableWeights) makes the wrapped optimizer and its schedule before training', async () => {
    const model = makeModel();
    const optimizer = tfjsOptimizer(AdamW, { lr: 1e-2, schedule: (o) => new ExponentialLR(o, { gamma: 0.5 }) });
    const inner = optimizer.build(model.trainableWeights);
    expect(inner).toBeInstanceOf(AdamW);
    expect(optimizer.optimizer).toBe(inner);
    expect(optimizer.scheduler).toBeInstanceOf(ExponentialLR);
    expect(optimizer.params.map((p) => p.name)).toEqual(model.trainableWeights.map((w) => w.name));
    inner.paramGroups[0].lr = 0; // a change made before training is what the first step uses
    const before = weights(model);
    await fit(model, optimizer, 1);
    expect(weights(model)).toEqual(before);
    expect(optimizer.iterations).toBe(N / BATCH);
    expect(() => optimizer.build(model.trainableWeights)).toThrow(/already built/);
  });

  it("scheduleCallback steps per batch, and gives ReduceLROnPlateau the monitored metric", async () => {
    const perBatch = tfjsOptimizer(Adam, { lr: 1e-2, schedule: (o) => new ExponentialLR(o, { gamma: 0.9 }) });
    await fit(makeModel(), perBatch, 2, [scheduleCallback(perBatch, { every: 'batch' })]);
    expect(perBatch.optimizer!.paramGroups[0].lr).toBeCloseTo(1e-2 * 0.9 ** (2 * (N / BATCH)), 15);

    // mode 'max' on a falling loss: every epoch after the first is bad; patience 0 halves the lr.
    const plateau = tfjsOptimizer(Adam, { lr: 1e-2, schedule: (o) => new ReduceLROnPlateau(o, { mode: 'max', patience: 0, factor: 0.5 }) });
    const losses = await fit(makeModel(), plateau, 4, [scheduleCallback(plateau, { monitor: 'loss' })]);
    expect(losses[3]).toBeLessThan(losses[0]);
    expect(plateau.optimizer!.paramGroups[0].lr).toBeCloseTo(1e-2 * 0.5 ** 3, 15);

    const missing = tfjsOptimizer(Adam, { schedule: (o) => new ReduceLROnPlateau(o) });
    await expect(fit(makeModel(), missing, 1, [scheduleCallback(missing, { monitor: 'val_acc' })])).rejects.toThrow(/val_acc/);
    expect(() => scheduleCallback(tfjsOptimizer(Adam))).toThrow(OptimRangeError);
  });

  it('a weight snapshot taken between steps is not changed by later steps (no aliasing of our buffers)', async () => {
    const model = makeModel();
    const optimizer = tfjsOptimizer(Adam, { lr: 1e-2 });
    await fit(model, optimizer, 1);
    // A clone shares the variable's current storage; the next step must assign new storage.
    const snapshot = model.getWeights().map((t) => tf.clone(t));
    const copy = snapshot.map((t) => (t.dataSync() as Float32Array).slice());
    await fit(model, optimizer, 1);
    expect(maxRelDiff(weights(model), copy)).toBeGreaterThan(1e-4);
    snapshot.forEach((t, i) => expect(t.dataSync()).toEqual(copy[i]));
  });
});

describe('optim/tfjs on the wasm backend (whose tensors copy what they are made from)', () => {
  it('model.fit with ours equals the step-by-step run, and a snapshot survives later steps', async () => {
    await tf.setBackend('wasm');
    try {
      await tf.ready();
      expect(tf.getBackend()).toBe('wasm');
      const base = makeModel();
      const fitted = cloneModel(base);
      const byHand = cloneModel(base);
      const optimizer = tfjsOptimizer(AdamW, { lr: 1e-2 });
      await fit(fitted, optimizer, 2);
      const snapshot = fitted.getWeights().map((t) => tf.clone(t));
      const copy = snapshot.map((t) => (t.dataSync() as Float32Array).slice());
      await fit(fitted, optimizer, 2);
      snapshot.forEach((t, i) => expect(t.dataSync()).toEqual(copy[i]));
      trainByHand(byHand, (params) => new AdamW(params, { lr: 1e-2 }), 4);
      expect(maxRelDiff(weights(fitted), weights(base))).toBeGreaterThan(1e-3);
      expect(maxRelDiff(weights(fitted), weights(byHand))).toBeLessThanOrEqual(1e-6);
      tf.dispose(snapshot);
    } finally {
      await tf.setBackend('cpu');
    }
  });
});

describe('optim/tfjs: serialization', () => {
  const CLASS_NAME = 'OptimTfjsOptimizer';

  it('is registered with tf.serialization; getConfig/fromConfig round-trip through JSON and train identically', async () => {
    expect(TfjsOptimizer.className).toBe(CLASS_NAME);
    const entry = tf.serialization.SerializationMap.getMap().classNameMap[CLASS_NAME];
    expect(entry?.[0]).toBe(TfjsOptimizer);
    const original = tfjsOptimizer(AdamW, { lr: 3e-3, betas: [0.8, 0.95], weightDecay: 0.1, amsgrad: true, nonFinite: 'skip' });
    const config = JSON.parse(JSON.stringify(original.getConfig()));
    expect(config).toEqual({ optimizer: 'AdamW', options: { lr: 3e-3, betas: [0.8, 0.95], weightDecay: 0.1, amsgrad: true, nonFinite: 'skip' } });
    const [cls, fromConfig] = entry;
    const restored = fromConfig(cls, { ...config, customObjects: {} }) as TfjsOptimizer;
    expect(restored).toBeInstanceOf(TfjsOptimizer);
    expect(restored.optimizerClass).toBe(AdamW);
    expect(restored.getConfig()).toEqual(config);

    const base = makeModel();
    const a = cloneModel(base);
    const b = cloneModel(base);
    await fit(a, original, 3);
    await fit(b, restored, 3);
    expect(weights(a)).toEqual(weights(b));
    expect(restored.optimizer!.nonFinite).toBe('skip');
    expect(() => TfjsOptimizer.fromConfig(TfjsOptimizer, { optimizer: 'Nope', options: {} })).toThrow(OptimTypeError);
  });

  it('model.save with includeOptimizer and tf.loadLayersModel restore the optimizer and its state: training resumes bit for bit', async () => {
    const model = makeModel();
    const optimizer = tfjsOptimizer(Adam, { lr: 1e-2, betas: [0.9, 0.99], eps: 1e-7 });
    await fit(model, optimizer, 2);
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
      { includeOptimizer: true },
    );
    expect((saved!.trainingConfig as unknown as { optimizer_config: { class_name: string } }).optimizer_config.class_name).toBe(CLASS_NAME);
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
    const restored = loaded.optimizer as TfjsOptimizer;
    expect(restored).toBeInstanceOf(TfjsOptimizer);
    expect(restored.iterations).toBe(optimizer.iterations);
    expect(weights(loaded)).toEqual(weights(model));
    const fresh = cloneModel(loaded);
    // The loaded model's variables have other names (tfjs makes them unique): matched by position.
    expect(loaded.trainableWeights.map((w) => w.name)).not.toEqual(model.trainableWeights.map((w) => w.name));
    await fit(model, optimizer, 2);
    await fit(loaded, restored, 2);
    expect(weights(loaded)).toEqual(weights(model));
    const want = optimizer.optimizer!.stateDict();
    const got = restored.optimizer!.stateDict();
    expect(Object.values(got.state)).toEqual(Object.values(want.state));

    // Resuming with a fresh optimizer (no restored state) does not give the same: the test can tell.
    await fit(fresh, tfjsOptimizer(Adam, { lr: 1e-2, betas: [0.9, 0.99], eps: 1e-7 }), 2);
    expect(maxRelDiff(weights(fresh), weights(model))).toBeGreaterThan(1e-5);
  });
});

describe('optim/tfjs: non-finite gradients, refusals, values set between steps', () => {
  function twoVariables(): tf.Variable[] {
    return [tf.variable(tf.tensor1d([1, 2, 3]), true, `nf_a_${Math.random()}`), tf.variable(tf.tensor2d([[0.5, -0.5]]), true, `nf_b_${Math.random()}`)];
  }

  it("nonFinite 'error' (the default) refuses a NaN gradient: NonFiniteError, no variable or state changed", () => {
    const [a, b] = twoVariables();
    const optimizer = tfjsOptimizer(Adam, { lr: 0.1 });
    optimizer.applyGradients({ [a.name]: tf.tensor1d([0.1, 0.2, 0.3]), [b.name]: tf.tensor2d([[1, 1]]) });
    const stateBefore = optimizer.optimizer!.stateDict();
    const va = a.dataSync().slice();
    const vb = b.dataSync().slice();
    let error: unknown;
    try {
      optimizer.applyGradients({ [a.name]: tf.tensor1d([0.1, 0.2, 0.3]), [b.name]: tf.tensor2d([[1, NaN]]) });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NonFiniteError);
    expect((error as NonFiniteError).param).toBe(b.name);
    expect((error as NonFiniteError).index).toBe(1);
    expect(a.dataSync()).toEqual(va);
    expect(b.dataSync()).toEqual(vb);
    expect(optimizer.optimizer!.stateDict()).toEqual(stateBefore);
    expect(optimizer.iterations).toBe(1);
  });

  it('model.fit rejects with NonFiniteError on a NaN input, weights untouched', async () => {
    const model = makeModel();
    const before = weights(model);
    model.compile({ optimizer: tfjsOptimizer(AdamW), loss: 'categoricalCrossentropy' });
    const { x, y } = dataset();
    x[5] = NaN;
    const xs = tf.tensor2d(x, [N, IN]);
    const ys = tf.tensor2d(y, [N, OUT]);
    await expect(model.fit(xs, ys, { epochs: 1, batchSize: N, verbose: 0 })).rejects.toBeInstanceOf(NonFiniteError);
    expect(weights(model)).toEqual(before);
    tf.dispose([xs, ys]);
  });

  it("nonFinite 'skip' leaves every variable as it was and counts the step; 'ignore' lets NaN in", () => {
    const [a, b] = twoVariables();
    const skip = tfjsOptimizer(SGD, { lr: 0.1, nonFinite: 'skip' });
    const va = a.dataSync().slice();
    skip.applyGradients([
      { name: a.name, tensor: tf.tensor1d([Infinity, 0, 0]) },
      { name: b.name, tensor: tf.tensor2d([[1, 1]]) },
    ]);
    expect(skip.skippedSteps).toBe(1);
    expect(a.dataSync()).toEqual(va);
    skip.applyGradients([
      { name: a.name, tensor: tf.tensor1d([1, 1, 1]) },
      { name: b.name, tensor: tf.tensor2d([[1, 1]]) },
    ]);
    expect(Array.from(a.dataSync())).toEqual([0.9, 1.9, 2.9].map(Math.fround));

    const [c] = twoVariables();
    const ignore = tfjsOptimizer(SGD, { lr: 0.1, nonFinite: 'ignore' });
    ignore.applyGradients({ [c.name]: tf.tensor1d([NaN, 0, 0]) });
    expect(Number.isNaN(c.dataSync()[0])).toBe(true);
  });

  it('a value set between steps (variable.assign, model.setWeights) is what the next step starts from', async () => {
    const [a, b] = twoVariables();
    const optimizer = tfjsOptimizer(SGD, { lr: 0.5 });
    const grads = () => ({ [a.name]: tf.tensor1d([1, 1, 1]), [b.name]: tf.tensor2d([[1, -1]]) });
    optimizer.applyGradients(grads());
    expect(Array.from(a.dataSync())).toEqual([0.5, 1.5, 2.5]);
    a.assign(tf.tensor1d([10, 20, 30]));
    optimizer.applyGradients(grads());
    expect(Array.from(a.dataSync())).toEqual([9.5, 19.5, 29.5]);
    expect(Array.from(b.dataSync())).toEqual([-0.5, 0.5]);

    const model = makeModel();
    const modelOptimizer = tfjsOptimizer(SGD, { lr: 0.1 });
    await fit(model, modelOptimizer, 1);
    const other = makeModel();
    model.setWeights(other.getWeights());
    const byHand = cloneModel(other);
    await fit(model, modelOptimizer, 1);
    trainByHand(byHand, (params) => new SGD(params, { lr: 0.1 }), 1);
    expect(weights(model)).toEqual(weights(byHand));
  });

  it('refuses a missing or unknown variable, a wrong size or dtype, bad options, changing nothing', () => {
    const [a, b] = twoVariables();
    const optimizer = tfjsOptimizer(SGD, { lr: 0.5 });
    optimizer.applyGradients({ [a.name]: tf.tensor1d([1, 1, 1]), [b.name]: tf.tensor2d([[1, 1]]) });
    const va = a.dataSync().slice();
    expect(() => optimizer.applyGradients({ [a.name]: tf.tensor1d([1, 1, 1]) })).toThrow(/no gradient for ".*nf_b_/);
    const [c] = twoVariables();
    expect(() => optimizer.applyGradients({ [a.name]: tf.tensor1d([1, 1, 1]), [b.name]: tf.tensor2d([[1, 1]]), [c.name]: tf.tensor1d([1, 1, 1]) })).toThrow(
      /not among the 2 variables/,
    );
    expect(() => optimizer.applyGradients({ [a.name]: tf.tensor1d([1, 1]), [b.name]: tf.tensor2d([[1, 1]]) })).toThrow(OptimRangeError);
    expect(() => optimizer.applyGradients({ [a.name]: tf.tensor1d([1, 1, 1], 'int32'), [b.name]: tf.tensor2d([[1, 1]]) })).toThrow(OptimTypeError);
    expect(a.dataSync()).toEqual(va);
    expect(optimizer.iterations).toBe(1);

    expect(() => tfjsOptimizer(Adam, { lr: -1 })).toThrow(OptimRangeError);
    expect(() => tfjsOptimizer(Adam, { lr: 1e-3, bogus: 1 } as never)).toThrow(OptimTypeError);
    expect(() => tfjsOptimizer(SGD, { lr: 0.1, momentum: 0.9, lookahead: true })).toThrow(/lookahead/);
    expect(() => tfjsOptimizer((class {}) as never)).toThrow(OptimTypeError);
  });
});
