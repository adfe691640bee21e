/**
 * Step hooks (src/optim/hooks.ts), torch.optim's register_step_pre_hook / register_step_post_hook,
 * on both optimizer bases: the first-order one (SGD, Adam) and the closure one (L-BFGS, Newton).
 * Order, arguments, replacement of the closure by a pre hook, removal, refused and skipped steps
 * (no post hook), hooks that throw, and a run with hooks equal to one without.
 */
import { describe, expect, it } from 'vitest';
import { NonFiniteError, OptimRangeError, OptimTypeError } from '../src/errors.js';
import { Adam, SGD, param } from '../src/optim/index.js';
import type { HookHandle, Param } from '../src/optim/index.js';
import { LBFGS } from '../src/optim/lbfgs.js';
import { Newton } from '../src/optim/newton.js';
import { bytesOf, errorOf } from './helpers/snapshot.js';

type Hook = (optimizer: unknown, args: readonly unknown[]) => unknown;

/** What the tests use of an optimizer, whichever base it has. */
interface Hooked {
  step(closure?: unknown): unknown;
  registerStepPreHook(hook: Hook): HookHandle;
  registerStepPostHook(hook: Hook): HookHandle;
  readonly skippedSteps: number;
  readonly paramGroups: Array<{ lr: number }>;
  stateDict(): unknown;
}

interface Made {
  opt: Hooked;
  ps: Param[];
  /** Fills the grads (a quadratic around 1) and returns the loss (Newton: `{ loss, hessian }`). */
  closure: () => unknown;
  /** The same with a NaN in a grad. */
  poisoned: () => unknown;
}

interface Case {
  name: string;
  make(nonFinite?: 'error' | 'skip'): Made;
  /** The optimizer's step takes its closure as required (the closure base). */
  closureBase: boolean;
}

const C = [1, 3, 0.5, 2, 5];

function quadratic(ps: Param[], newton: boolean, nan: boolean): () => unknown {
  return () => {
    let loss = 0;
    let k = 0;
    for (const p of ps) {
      for (let i = 0; i < p.data.length; i++, k++) {
        const r = p.data[i] - 1;
        loss += 0.5 * C[k] * r * r;
        p.grad[i] = C[k] * r;
      }
    }
    if (nan) ps[1].grad[0] = NaN;
    if (!newton) return loss;
    const hessian = new Float64Array(k * k);
    for (let i = 0; i < k; i++) hessian[i * k + i] = C[i];
    return { loss, hessian };
  };
}

function made(opt: unknown, ps: Param[], newton = false): Made {
  return { opt: opt as Hooked, ps, closure: quadratic(ps, newton, false), poisoned: quadratic(ps, newton, true) };
}

const model = () => [param(Float64Array.of(3, -2, 0.5), 'w'), param(Float64Array.of(4, -1), 'b')];

const CASES: Case[] = [
  { name: 'SGD', closureBase: false, make: (nonFinite = 'error') => { const ps = model(); return made(new SGD(ps, { lr: 0.1, momentum: 0.9, nonFinite }), ps); } },
  { name: 'Adam', closureBase: false, make: (nonFinite = 'error') => { const ps = model(); return made(new Adam(ps, { lr: 0.1, nonFinite }), ps); } },
  { name: 'LBFGS', closureBase: true, make: (nonFinite = 'error') => { const ps = model(); return made(new LBFGS(ps, { maxIter: 3, nonFinite }), ps); } },
  { name: 'Newton', closureBase: true, make: (nonFinite = 'error') => { const ps = model(); return made(new Newton(ps, { nonFinite }), ps, true); } },
];

const bytes = (ps: Param[]) => ps.map((p) => bytesOf(p.data));

describe.each(CASES.map((c) => [c.name, c] as const))('step hooks: %s', (_name, c) => {
  it('pre hooks run before the step, post hooks after, each in registration order; remove() unregisters', () => {
    const { opt, ps, closure } = c.make();
    const start = bytes(ps);
    const events: string[] = [];
    const moved = () => JSON.stringify(bytes(ps)) !== JSON.stringify(start);
    const handles = ['a', 'b', 'c'].map((k) => ({
      pre: opt.registerStepPreHook(() => void events.push(`pre ${k} ${moved() ? 'moved' : 'at start'}`)),
      post: opt.registerStepPostHook(() => void events.push(`post ${k} ${moved() ? 'moved' : 'at start'}`)),
    }));
    opt.step(closure);
    expect(events).toEqual([
      'pre a at start', 'pre b at start', 'pre c at start', 'post a moved', 'post b moved', 'post c moved',
    ]);
    events.length = 0;
    handles[0].pre.remove();
    handles[2].post.remove();
    handles[2].post.remove(); // again: nothing
    opt.step(closure);
    expect(events.map((e) => e.split(' ').slice(0, 2).join(' '))).toEqual(['pre b', 'pre c', 'post a', 'post b']);
    for (const h of handles) {
      h.pre.remove();
      h.post.remove();
    }
    events.length = 0;
    opt.step(closure);
    expect(events).toEqual([]);
  });

  it('hooks get the optimizer and the step\'s arguments, frozen', () => {
    const { opt, closure } = c.make();
    const seen: Array<[string, unknown, readonly unknown[]]> = [];
    opt.registerStepPreHook((o, args) => void seen.push(['pre', o, args]));
    opt.registerStepPostHook((o, args) => void seen.push(['post', o, args]));
    opt.step(closure);
    expect(seen.map(([k]) => k)).toEqual(['pre', 'post']);
    for (const [, o, args] of seen) {
      expect(o).toBe(opt);
      expect(args).toEqual([closure]);
      expect(Object.isFrozen(args)).toBe(true);
      expect(() => (args as unknown[]).push(1)).toThrow(TypeError);
    }
    if (!c.closureBase) {
      seen.length = 0;
      closure();
      opt.step();
      expect(seen.map(([, , args]) => args)).toEqual([[], []]);
    }
  });

  it('a pre hook may replace the closure: later hooks, the step and the post hooks get the replacement', () => {
    const { opt, ps, closure } = c.make();
    let original = 0;
    let replaced = 0;
    const counted = () => {
      original++;
      return closure();
    };
    const replacement = () => {
      replaced++;
      return closure();
    };
    const seen: unknown[] = [];
    opt.registerStepPreHook(() => [replacement]);
    opt.registerStepPreHook((_o, args) => void seen.push(args[0]));
    opt.registerStepPostHook((_o, args) => void seen.push(args[0]));
    const reference = c.make();
    const want = reference.opt.step(reference.closure);
    const got = opt.step(counted);
    expect(original).toBe(0);
    expect(replaced).toBeGreaterThan(0);
    expect(seen).toEqual([replacement, replacement]);
    expect(got).toEqual(want);
    expect(bytes(ps)).toEqual(bytes(reference.ps));
    if (!c.closureBase) {
      // step() without a closure: a pre hook may add one
      const second = c.make();
      let calls = 0;
      second.opt.registerStepPreHook((_o, args) => (args.length === 0 ? [() => (calls++, second.closure())] : undefined));
      second.opt.step();
      expect(calls).toBe(1);
    }
  });

  it('a pre hook returning anything but undefined or an array of arguments is refused before the step', () => {
    for (const [ret, Err, message] of [
      [5, OptimTypeError, /step pre hook 1 \(in registration order\) must return undefined or an array of step arguments \(\[closure\]\), got number/],
      [null, OptimTypeError, /must return undefined or an array of step arguments.*got null/],
      [[() => 0, () => 0], OptimRangeError, /step pre hook 1 \(in registration order\) returned 2 step arguments; step takes at most 1/],
    ] as const) {
      const { opt, ps, closure } = c.make();
      const start = bytes(ps);
      let posts = 0;
      opt.registerStepPreHook(() => undefined);
      opt.registerStepPreHook(() => ret);
      opt.registerStepPostHook(() => void posts++);
      const e = errorOf(() => opt.step(closure));
      expect(e).toBeInstanceOf(Err);
      expect((e as Error).message).toMatch(message);
      expect(bytes(ps)).toEqual(start);
      expect(posts).toBe(0);
    }
  });

  it('a refused step calls no post hook: non-finite gradient, invalid hyperparameter, closure that throws, bad closure', () => {
    const { opt, ps, closure, poisoned } = c.make();
    let pres = 0;
    let posts = 0;
    opt.registerStepPreHook(() => void pres++);
    opt.registerStepPostHook(() => void posts++);
    const start = bytes(ps);
    expect(() => opt.step(poisoned)).toThrow(NonFiniteError);
    const lr = opt.paramGroups[0].lr;
    opt.paramGroups[0].lr = -1;
    expect(() => opt.step(closure)).toThrow(OptimRangeError);
    opt.paramGroups[0].lr = lr;
    const boom = new Error('boom');
    expect(() => opt.step(() => {
      throw boom;
    })).toThrow(boom);
    expect(() => opt.step(42)).toThrow(OptimTypeError);
    expect(bytes(ps)).toEqual(start);
    expect([pres, posts]).toEqual([4, 0]);
    opt.step(closure);
    expect([pres, posts]).toEqual([5, 1]);
  });

  it("a step skipped under nonFinite: 'skip' calls no post hook", () => {
    const { opt, ps, closure, poisoned } = c.make('skip');
    let posts = 0;
    opt.registerStepPostHook(() => void posts++);
    const start = bytes(ps);
    opt.step(poisoned);
    expect(opt.skippedSteps).toBe(1);
    expect(bytes(ps)).toEqual(start);
    expect(posts).toBe(0);
    opt.step(closure);
    expect(posts).toBe(1);
  });

  it('a hook that throws: the error propagates; from a pre hook the step does not run, from a post hook the update stays', () => {
    const boom = new Error('boom');
    {
      const { opt, ps, closure } = c.make();
      const ran: string[] = [];
      opt.registerStepPreHook(() => {
        throw boom;
      });
      opt.registerStepPreHook(() => void ran.push('pre 2'));
      opt.registerStepPostHook(() => void ran.push('post'));
      const start = bytes(ps);
      expect(errorOf(() => opt.step(closure))).toBe(boom);
      expect(bytes(ps)).toEqual(start);
      expect(ran).toEqual([]);
    }
    {
      const { opt, ps, closure } = c.make();
      const reference = c.make();
      reference.opt.step(reference.closure);
      const ran: string[] = [];
      opt.registerStepPostHook(() => {
        throw boom;
      });
      opt.registerStepPostHook(() => void ran.push('post 2'));
      expect(errorOf(() => opt.step(closure))).toBe(boom);
      expect(bytes(ps)).toEqual(bytes(reference.ps));
      expect(opt.stateDict()).toEqual(reference.opt.stateDict());
      expect(ran).toEqual([]);
    }
  });

  it('a hook registered or removed by a hook takes effect from the next phase', () => {
    const { opt, closure } = c.make();
    const ran: string[] = [];
    let late: HookHandle | undefined;
    opt.registerStepPreHook(() => {
      ran.push('pre');
      late ??= opt.registerStepPreHook(() => void ran.push('late pre'));
    });
    const self: HookHandle = opt.registerStepPostHook(() => {
      ran.push('post once');
      self.remove();
    });
    opt.registerStepPostHook(() => void ran.push('post'));
    opt.step(closure);
    opt.step(closure);
    expect(ran).toEqual(['pre', 'post once', 'post', 'pre', 'late pre', 'post']);
  });

  it('registering anything but a function is refused, naming the method', () => {
    const { opt } = c.make();
    expect(() => opt.registerStepPreHook(null as unknown as Hook)).toThrow(OptimTypeError);
    expect(() => opt.registerStepPreHook({} as unknown as Hook)).toThrow(
      new RegExp(`${c.name}\\.registerStepPreHook\\(hook\\): hook must be a function \\(optimizer, args\\) => \\.\\.\\., got object`),
    );
    expect(() => opt.registerStepPostHook('f' as unknown as Hook)).toThrow(/registerStepPostHook\(hook\): hook must be a function.*got string/);
  });

  it('a run with hooks that return nothing equals the run without, bit for bit', () => {
    const a = c.make();
    const b = c.make();
    b.opt.registerStepPreHook(() => undefined);
    b.opt.registerStepPostHook(() => 'ignored');
    for (let t = 0; t < 5; t++) {
      expect(b.opt.step(b.closure)).toEqual(a.opt.step(a.closure));
    }
    expect(bytes(b.ps)).toEqual(bytes(a.ps));
    expect(b.opt.stateDict()).toEqual(a.opt.stateDict());
  });
});
