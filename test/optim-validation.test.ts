import { describe, expect, it } from 'vitest';
import { AdaBelief, Adadelta, Adafactor, Adagrad, ASGD, Adam, Adamax, AdamW, Lion, NAdam, RAdam, RMSprop, Rprop, SGD, Yogi, param } from '../src/optim/index.js';
import { LAMB, LARS, ScheduleFreeAdamW, ScheduleFreeSGD } from '../src/optim/index.js';
import type { GroupBase, Optimizer, Param } from '../src/optim/index.js';
import { OptimRangeError, OptimTypeError } from '../src/errors.js';
import type { FloatArray } from '../src/backend/types.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { KERNEL_CASES, OPTIMIZER_CLASSES } from './helpers/kernels.js';
import { bytesOf, detach, errorOf, snapshot } from './helpers/snapshot.js';

type AnyOptimizer = Optimizer<GroupBase>;
type Ctor = new (params: Param[], options?: object) => AnyOptimizer;
type ErrorClass = typeof OptimTypeError | typeof OptimRangeError;

const ALL: Array<[string, Ctor, object]> = [
  ['SGD', SGD as unknown as Ctor, { lr: 0.1, momentum: 0.9 }],
  ['Adagrad', Adagrad as unknown as Ctor, {}],
  ['RMSprop', RMSprop as unknown as Ctor, { centered: true, momentum: 0.5 }],
  ['Adam', Adam as unknown as Ctor, { amsgrad: true }],
  ['AdamW', AdamW as unknown as Ctor, {}],
  ['NAdam', NAdam as unknown as Ctor, {}],
  ['RAdam', RAdam as unknown as Ctor, {}],
  ['Adamax', Adamax as unknown as Ctor, {}],
  ['Adadelta', Adadelta as unknown as Ctor, {}],
  ['Rprop', Rprop as unknown as Ctor, {}],
  ['ASGD', ASGD as unknown as Ctor, { t0: 1 }],
  ['Lion', Lion as unknown as Ctor, {}],
  ['AdaBelief', AdaBelief as unknown as Ctor, { nesterov: true }],
  ['Yogi', Yogi as unknown as Ctor, {}],
  ['LAMB', LAMB as unknown as Ctor, { weightDecay: 0.01 }],
  ['LARS', LARS as unknown as Ctor, { lr: 0.1, weightDecay: 0.01, nesterov: true }],
  ['ScheduleFreeAdamW', ScheduleFreeAdamW as unknown as Ctor, { warmupSteps: 2, weightDecay: 0.01 }],
  ['ScheduleFreeSGD', ScheduleFreeSGD as unknown as Ctor, { weightDecay: 0.01 }],
  ['Adafactor', Adafactor as unknown as Ctor, { weightDecay: 0.01 }],
];

const BETAS = new Set(['Adam', 'AdamW', 'NAdam', 'RAdam', 'Adamax']);
/** The optimizers without weight decay or eps (torch's Rprop has neither; optax's AdaBelief and Yogi have no weight decay). */
const NO_DECAY = new Set(['Rprop', 'AdaBelief', 'Yogi']);
const NO_EPS = new Set(['SGD', 'Rprop', 'ASGD', 'Lion', 'Adafactor', 'ScheduleFreeSGD']); // Adafactor's eps is a pair [eps1, eps2]: checked on its own
/** optax's decay rates, each in [0, 1]. */
const B1B2 = new Set(['Lion', 'AdaBelief', 'Yogi', 'LAMB', 'ScheduleFreeAdamW']);
/** optax's algorithms: no maximize. */
const OPTAX = new Set([...B1B2, 'LARS', 'ScheduleFreeSGD']);
/** The boolean option of an optax algorithm that has one. */
const NESTEROV = new Set(['AdaBelief', 'LARS']);

it('the table covers every optimizer class src/optim exports', () => {
  expect(ALL.map(([, C]) => C)).toEqual(expect.arrayContaining(OPTIMIZER_CLASSES.map(([, C]) => C)));
});

function twoGroups(ctor: Ctor, options: object): { ps: Param[]; opt: AnyOptimizer } {
  const ps = [
    param(Float64Array.from([0.5, -1, 2]), 'a'),
    param(Float32Array.from([1, 2]), 'b'),
    param(Float64Array.from([3, 4, 5, 6]), 'c'),
  ];
  const opt = new ctor([{ params: [ps[0], ps[1]] }, { params: [ps[2]] }] as unknown as Param[], options);
  for (let t = 0; t < 3; t++) {
    for (const p of ps) p.grad.set(p.data.map((x, i) => x - i));
    opt.step();
  }
  return { ps, opt };
}

/** Expects `fn` to throw `cls` with a message matching every pattern, and to change no buffer. */
function expectRefused(ps: Param[], opt: AnyOptimizer, fn: () => unknown, cls: ErrorClass, ...patterns: RegExp[]): void {
  const before = snapshot(ps, opt);
  const error = errorOf(fn);
  expect(error).toBeInstanceOf(cls);
  for (const pattern of patterns) expect((error as Error).message).toMatch(pattern);
  expect(snapshot(ps, opt)).toEqual(before);
}

describe('param()', () => {
  it.each([
    ['an Int32Array', new Int32Array(3), /got Int32Array/],
    ['a plain array', [1, 2, 3], /got Array/],
    ['undefined', undefined, /got undefined/],
  ])('refuses %s as data', (_n, data, message) => {
    expect(() => param(data as unknown as Float64Array)).toThrow(OptimTypeError);
    expect(() => param(data as unknown as Float64Array)).toThrow(message);
  });

  it('refuses an empty or non-string name', () => {
    expect(() => param(new Float64Array(1), '')).toThrow(/name must be a non-empty string/);
    expect(() => param(new Float64Array(1), 3 as unknown as string)).toThrow(OptimTypeError);
  });
});

describe('constructor validation', () => {
  const p = () => param(new Float64Array(3), 'p');

  it.each(ALL)('%s: refuses an empty params list, a non-array, and a bad param', (_n, ctor) => {
    expect(() => new ctor([], {})).toThrow(OptimRangeError);
    expect(() => new ctor([], {})).toThrow(/empty parameter list/);
    expect(() => new ctor(p() as unknown as Param[], {})).toThrow(/params must be an array/);
    const bad = { name: 'x', data: new Int32Array(3), grad: new Int32Array(3) } as unknown as Param;
    expect(() => new ctor([bad], { lr: 0.1 })).toThrow(OptimTypeError);
    expect(() => new ctor([bad], { lr: 0.1 })).toThrow(/data must be a Float32Array or Float64Array, got Int32Array/);
    expect(() => new ctor([new Float64Array(3)] as unknown as Param[], { lr: 0.1 })).toThrow(/must be a param/);
  });

  it.each(ALL)('%s: refuses unknown option keys, naming them', (_n, ctor) => {
    expect(() => new ctor([p()], { lr: 0.1, weight_decay: 0.1 })).toThrow(OptimTypeError);
    expect(() => new ctor([p()], { lr: 0.1, weight_decay: 0.1 })).toThrow(/unknown option "weight_decay"/);
    expect(() => new ctor([{ params: [p()], lrr: 0.1 }] as unknown as Param[], { lr: 0.1 })).toThrow(
      /paramGroups\[0\]: unknown option "lrr"/,
    );
  });

  it.each(ALL)('%s: refuses a negative, NaN or infinite lr, naming it', (_n, ctor) => {
    for (const lr of [-1, NaN, Infinity]) {
      expect(() => new ctor([p()], { lr })).toThrow(OptimRangeError);
      expect(() => new ctor([p()], { lr })).toThrow(new RegExp(`Invalid learning rate: ${lr} \\(options\\.lr must be`));
    }
    expect(() => new ctor([p()], { lr: '0.1' })).toThrow(OptimTypeError);
    expect(() => new ctor([{ params: [p()], lr: -2 }] as unknown as Param[], { lr: 0.1 })).toThrow(
      /Invalid learning rate: -2 \(paramGroups\[0\]\.lr/,
    );
  });

  it.each(ALL)('%s: refuses negative or non-finite eps / weightDecay / momentum-like options', (name, ctor) => {
    const cases: Array<[object, RegExp]> = [];
    if (!NO_DECAY.has(name)) cases.push([{ weightDecay: -0.1 }, /Invalid weight_decay value: -0\.1 \(options\.weightDecay/]);
    if (!NO_EPS.has(name)) cases.push([{ eps: -1 }, /Invalid epsilon value: -1 \(options\.eps/], [{ eps: NaN }, /Invalid epsilon value: NaN/]);
    if (name === 'Adadelta') cases.push([{ rho: -0.1 }, /Invalid rho value: -0\.1/], [{ rho: 1.5 }, /Invalid rho value: 1\.5 \(options\.rho must be in \[0, 1\]\)/]);
    if (name === 'Rprop') {
      cases.push(
        [{ etas: [1.2, 0.5] }, /Invalid eta values: 1\.2, 0\.5 \(options\.etas must satisfy 0 < etas\[0\] < 1 < etas\[1\]\)/],
        [{ etas: [0.5, 1] }, /Invalid eta values/],
        [{ etas: [0.5, NaN] }, /options\.etas\[1\] must be a finite number, got NaN/],
        [{ stepSizes: [1, 0.5] }, /options\.stepSizes must satisfy 0 <= stepSizes\[0\] <= stepSizes\[1\], got 1, 0\.5/],
        [{ stepSizes: [-1, 2] }, /stepSizes/],
      );
    }
    if (name === 'SGD' || name === 'RMSprop' || name === 'LARS') cases.push([{ momentum: -0.5 }, /Invalid momentum value: -0\.5/]);
    if (name === 'ScheduleFreeSGD') cases.push([{ b1: 1.5 }, /options\.b1 must be in \[0, 1\]/], [{ b1: 0 }, /options\.b1 must be in \(0, 1\]/]);
    if (name === 'RMSprop') cases.push([{ alpha: -0.1 }, /Invalid alpha value: -0\.1/]);
    if (name === 'Adagrad') {
      cases.push([{ lrDecay: -1 }, /Invalid lr_decay value: -1/], [{ initialAccumulatorValue: -1 }, /Invalid initial_accumulator_value value: -1/]);
    }
    if (name === 'NAdam') cases.push([{ momentumDecay: -1 }, /Invalid momentum_decay value: -1/]);
    if (B1B2.has(name)) cases.push([{ b1: 1.5 }, /options\.b1 must be in \[0, 1\]/], [{ b2: -0.1 }, /options\.b2 must be in \[0, 1\]/], [{ b1: NaN }, /b1/]);
    if (name === 'Yogi') cases.push([{ initialAccumulatorValue: -1 }, /initialAccumulatorValue/], [{ epsRoot: -1 }, /epsRoot/]);
    if (name === 'AdaBelief') cases.push([{ epsRoot: -1 }, /epsRoot/]);
    if (name === 'Adafactor') {
      cases.push(
        [{ eps: [null, -1] }, /Invalid epsilon value: -1 \(options\.eps\[1\] must be a finite number >= 0\)/],
        [{ eps: [-1, 1e-3] }, /Invalid epsilon value: -1 \(options\.eps\[0\] must be null or a finite number >= 0\)/],
        [{ beta2Decay: 0.5 }, /Invalid beta2_decay value: 0\.5 \(options\.beta2Decay must be a finite number <= 0\)/],
        [{ d: 0.5 }, /Invalid clipping threshold d: 0\.5 \(options\.d must be a number >= 1\)/],
      );
    }
    for (const [options, message] of cases) {
      expect(() => new ctor([p()], { lr: 0.1, ...options })).toThrow(OptimRangeError);
      expect(() => new ctor([p()], { lr: 0.1, ...options })).toThrow(message);
    }
  });

  it.each(ALL.filter(([n]) => BETAS.has(n)))('%s: refuses betas outside [0, 1) or of the wrong shape', (_n, ctor) => {
    expect(() => new ctor([p()], { betas: [1.2, 0.999] })).toThrow(/Invalid beta parameter at index 0: 1.2 \(options\.betas\[0\]/);
    expect(() => new ctor([p()], { betas: [0.9, 1] })).toThrow(/Invalid beta parameter at index 1: 1/);
    expect(() => new ctor([p()], { betas: [-0.1, 0.9] })).toThrow(OptimRangeError);
    expect(() => new ctor([p()], { betas: [0.9] })).toThrow(OptimTypeError);
    expect(() => new ctor([p()], { betas: 0.9 })).toThrow(/betas must be an array of two numbers/);
  });

  it.each(ALL)('%s: refuses a boolean option given as a number', (name, ctor) => {
    if (OPTAX.has(name)) {
      // optax's algorithms have no maximize: the key is unknown.
      expect(() => new ctor([p()], { lr: 0.1, maximize: true })).toThrow(/unknown option "maximize"/);
      if (!NESTEROV.has(name)) return;
    }
    const key = NESTEROV.has(name) ? 'nesterov' : 'maximize';
    expect(() => new ctor([p()], { lr: 0.1, [key]: 1 })).toThrow(OptimTypeError);
    expect(() => new ctor([p()], { lr: 0.1, [key]: 1 })).toThrow(new RegExp(`options\\.${key} must be a boolean, got number`));
  });

  it('SGD: lr is required; nesterov needs momentum and no dampening; emaMomentum needs momentum', () => {
    expect(() => new SGD([p()])).toThrow(OptimTypeError);
    expect(() => new SGD([p()])).toThrow(/paramGroups\[0\]\.lr is required/);
    expect(new SGD([{ params: [p()], lr: 0.1 }]).paramGroups[0].lr).toBe(0.1);
    expect(() => new SGD([p()], { lr: 0.1, nesterov: true })).toThrow(/Nesterov momentum requires a momentum and zero dampening/);
    expect(() => new SGD([p()], { lr: 0.1, nesterov: true, momentum: 0.9, dampening: 0.1 })).toThrow(OptimRangeError);
    expect(() => new SGD([p()], { lr: 0.1, emaMomentum: true })).toThrow(/emaMomentum requires momentum > 0/);
    expect(() => new SGD([p()], { lr: 0.1, dampening: NaN, momentum: 0.9 })).toThrow(/Invalid dampening value: NaN/);
  });
});

describe.each(backendRows)('step() refusals change nothing, %s backend', (_name, backend) => {
  useBackend(backend);

  it.each(ALL)('%s: hyperparameters set on paramGroups after construction', (name, ctor, options) => {
    const { ps, opt } = twoGroups(ctor, options);
    const groups = opt.paramGroups as unknown as Array<Record<string, unknown>>;
    const cases: Array<[string, unknown, ErrorClass, RegExp]> = [
      ['lr', NaN, OptimRangeError, /Invalid learning rate: NaN \(paramGroups\[1\]\.lr must be a finite number >= 0\)/],
      ['lr', -1, OptimRangeError, /Invalid learning rate: -1/],
      ['lr', Infinity, OptimRangeError, /Invalid learning rate: Infinity/],
      ['lr', undefined, OptimTypeError, /paramGroups\[1\]\.lr/],
    ];
    // optax's algorithms have no maximize.
    if (!OPTAX.has(name)) cases.push(['maximize', 'yes', OptimTypeError, /paramGroups\[1\]\.maximize must be a boolean/]);
    if (B1B2.has(name)) cases.push(['b2', 1.01, OptimRangeError, /paramGroups\[1\]\.b2 must be in \[0, 1\]/]);
    if (NESTEROV.has(name)) cases.push(['nesterov', 1, OptimTypeError, /paramGroups\[1\]\.nesterov must be a boolean/]);
    if (name.startsWith('ScheduleFree')) cases.push(['warmupSteps', 0.5, OptimRangeError, /paramGroups\[1\]\.warmupSteps must be an integer >= 0, got 0\.5/]);
    if (!NO_DECAY.has(name)) cases.push(['weightDecay', -1, OptimRangeError, /Invalid weight_decay value: -1 \(paramGroups\[1\]\.weightDecay/]);
    if (name === 'Rprop') cases.push(['etas', [0.5, 0.9], OptimRangeError, /Invalid eta values: 0\.5, 0\.9 \(paramGroups\[1\]\.etas/]);
    if (name === 'Adadelta') cases.push(['rho', 2, OptimRangeError, /Invalid rho value: 2 \(paramGroups\[1\]\.rho/]);
    if (!NO_EPS.has(name)) cases.push(['eps', NaN, OptimRangeError, /Invalid epsilon value: NaN \(paramGroups\[1\]\.eps/]);
    if (name === 'Adafactor') cases.push(['eps', [null, NaN], OptimRangeError, /Invalid epsilon value: NaN \(paramGroups\[1\]\.eps\[1\]/]);
    if (BETAS.has(name)) cases.push(['betas', [0.9, 1.5], OptimRangeError, /Invalid beta parameter at index 1: 1.5 \(paramGroups\[1\]\.betas\[1\]/]);
    if (name === 'SGD') cases.push(['momentum', -0.5, OptimRangeError, /Invalid momentum value: -0.5/]);
    for (const [key, value, cls, message] of cases) {
      const saved = groups[1][key];
      groups[1][key] = value;
      expectRefused(ps, opt, () => opt.step(), cls, message);
      groups[1][key] = saved;
    }
    const before = snapshot(ps, opt);
    opt.step();
    expect(snapshot(ps, opt)).not.toEqual(before);
  });

  it.each(ALL)('%s: bad grads and data', (_n, ctor, options) => {
    const { ps, opt } = twoGroups(ctor, options);
    const c = ps[2];
    const grad = c.grad;
    const cases: Array<[string, unknown, ErrorClass, RegExp[]]> = [
      ['missing', undefined, OptimTypeError, [/param "c": grad is missing/]],
      ['null', null, OptimTypeError, [/grad is missing \(got null\)/]],
      ['too short', new Float64Array(3), OptimRangeError, [/param "c": grad has length 3 but data has length 4/]],
      ['float32 for float64 data', new Float32Array(4), OptimTypeError, [/grad is a Float32Array but data is a Float64Array/]],
      ['an Int32Array', new Int32Array(4), OptimTypeError, [/grad must be a Float32Array or Float64Array, got Int32Array/]],
      ['a plain array', [1, 2, 3, 4], OptimTypeError, [/got Array/]],
    ];
    for (const [, value, cls, messages] of cases) {
      (c as { grad: unknown }).grad = value;
      expectRefused(ps, opt, () => opt.step(), cls, ...messages);
    }
    c.grad = grad;

    const data = c.data;
    c.data = new Float64Array(5);
    c.grad = new Float64Array(5);
    expectRefused(ps, opt, () => opt.step(), OptimRangeError, /param "c": data has length 5 but had length 4 at its first step/);
    c.data = Float32Array.from(data) as unknown as Float64Array;
    c.grad = new Float32Array(4) as unknown as Float64Array;
    expectRefused(ps, opt, () => opt.step(), OptimTypeError, /data is a Float32Array but its state \w+ is a Float64Array/);
    c.data = new Int32Array(4) as unknown as Float64Array;
    expectRefused(ps, opt, () => opt.step(), OptimTypeError, /data must be a Float32Array or Float64Array, got Int32Array/);
    c.data = data;
    c.grad = grad;
    opt.step();
  });

  it.each(ALL)('%s: a detached buffer is refused before anything is written', (_n, ctor, options) => {
    const { ps, opt } = twoGroups(ctor, options);
    const a = ps[0];
    const others = ps.slice(1);
    const before = snapshot(others, opt);
    const aGrad = bytesOf(a.grad);
    detach(a.data);
    expect(a.data.length).toBe(0);
    expect(() => opt.step()).toThrow(OptimRangeError);
    expect(() => opt.step()).toThrow(/param "a": data has length 0 but had length 3 at its first step \(detached/);
    expect(snapshot(others, opt)).toEqual(before);
    expect(bytesOf(a.grad)).toEqual(aGrad);
  });

  it('a closure that is not a function is refused', () => {
    const { ps, opt } = twoGroups(Adam as unknown as Ctor, {});
    expectRefused(ps, opt, () => opt.step(42 as unknown as () => number), OptimTypeError, /closure must be a function/);
  });
});

describe.each(backendRows)('backend kernels refuse bad calls without writing, %s backend', (_name, backend) => {
  describe.each(KERNEL_CASES)('$kernel.exportName', ({ kernel, flags, stride, scalars }) => {
    /** One tensor of 3 elements for a kernel with `n` arrays per tensor. */
    const make = (n = kernel.stride(0)): FloatArray[] =>
      Array.from({ length: n }, (_, j) => Float64Array.from([1, 2, 3], (x) => x * (j === 1 ? 0.1 : 1)));
    const call = (list: unknown, s: unknown = scalars, f = 0) => () => backend.step(kernel, list as FloatArray[], s as Float64Array, f);
    /** A flag set whose stride differs from that of flags 0, if the kernel has one. */
    const wider = flags !== 0 && stride !== kernel.stride(0) ? [flags] : [];

    it.each([
      ['a list that is not an array', call({}), OptimTypeError, /list must be an Array/],
      ['an Int32Array in the list', call(make().map((a, i) => (i === 1 ? new Int32Array(3) : a))), OptimTypeError, /list\[1\] must be a Float64Array/],
      ['mixed dtypes', call(make().map((a, i) => (i === 1 ? new Float32Array(3) : a))), OptimTypeError, /list\[1\]/],
      ['lengths differing within a tuple', call(make().map((a, i) => (i === 1 ? new Float64Array(2) : a))), OptimRangeError, /list\[1\] has length 2/],
      ['a list length not a multiple of the stride', call([...make(), new Float64Array(3)]), OptimRangeError, new RegExp(`not a multiple of ${kernel.stride(0)}`)],
      ...wider.map((f) => ['a list too short for the flags', call(make(), scalars, f), OptimRangeError, new RegExp(`not a multiple of ${kernel.stride(f)}`)] as const),
      ['scalars of the wrong length', call(make(), new Float64Array(kernel.nScalars + 1)), OptimRangeError, new RegExp(`scalars must have length ${kernel.nScalars}`)],
      ['scalars that are not a Float64Array', call(make(), new Float32Array(kernel.nScalars)), OptimTypeError, /scalars must be a Float64Array/],
      ['unknown flag bits', call(make(), scalars, kernel.allFlags + 1), OptimRangeError, /flags/],
    ] as const)('refuses %s, naming the kernel', (_n, fn, cls, message) => {
      expect(fn).toThrow(cls);
      expect(fn).toThrow(message);
      expect(fn).toThrow(kernel.exportName);
    });

    it('writes nothing when a later tensor of the list is bad', () => {
      const good = make();
      const before = good.map(bytesOf);
      const bad = make().map((a, i) => (i === 0 ? new Float64Array(2) : a));
      expect(call([...good, ...bad])).toThrow(OptimRangeError);
      expect(good.map(bytesOf)).toEqual(before);
    });

    it('refuses a plain list holding a detached array, which is not an empty tensor', () => {
      const list = make();
      const empty = Array.from({ length: list.length }, () => new Float64Array(0));
      call([...list, ...empty])();
      const before = list.map(bytesOf);
      empty.forEach(detach);
      expect(call([...list, ...empty])).toThrow(OptimTypeError);
      expect(list.map(bytesOf)).toEqual(before);
    });

    it('a prepared list refuses to step once a buffer is detached, or with flags of another stride', () => {
      const list = make();
      const handle = backend.prepare(list, list.length);
      expect(handle.tensors).toBe(1);
      call(handle)();
      for (const f of wider) expect(call(handle, scalars, f)).toThrow(OptimRangeError);
      detach(list[1]);
      const before = bytesOf(list[0]);
      expect(call(handle)).toThrow(/detached or resized/);
      expect(bytesOf(list[0])).toEqual(before);
    });
  });
});
