/**
 * Step hooks, as torch.optim's `register_step_pre_hook` / `register_step_post_hook`: the list of
 * hooks and the way they run around a step, in one place for every optimizer (the first-order
 * base, src/optim/optimizer.ts, and the closure base of L-BFGS and Newton,
 * src/optim/closure-optimizer.ts, each hold one `StepHooks` and delegate to it).
 *
 * ```ts
 * const h = opt.registerStepPreHook((opt, args) => { ... });   // args: the step's arguments, [closure?]
 * opt.registerStepPostHook((opt, args) => log(opt.paramGroups[0].lr));
 * h.remove();
 * ```
 *
 * Semantics (torch's, with the decisions torch leaves to Python spelled out):
 * - Pre hooks run before the step, before it checks anything, in registration order, as
 *   `hook(optimizer, args)`, `args` being the step's arguments as a frozen array: `[]` for
 *   `step()`, `[closure]` for `step(closure)`. A pre hook returns `undefined` (keep the
 *   arguments) or a new array of arguments (torch's `(new_args, new_kwargs)`), e.g. `[wrapped]`
 *   to run the step with another closure; the next hooks and the step get that array. Anything
 *   else is an OptimTypeError (torch: RuntimeError), thrown before the step runs.
 * - Post hooks run after a step that updated, in registration order, as `hook(optimizer, args)`
 *   with the arguments the step ran with; what they return is ignored. A step that was refused
 *   does not call them: one that threw (invalid hyperparameter, param or closure,
 *   NonFiniteError, a closure that threw) and one skipped under `nonFinite: 'skip'` (it counted
 *   in `skippedSteps` and changed nothing, as if the step had not been called).
 * - A hook that throws: the error propagates to the caller of `step` unchanged (as in torch),
 *   and the hooks after it do not run. From a pre hook, the step does not run (nothing changed);
 *   from a post hook, the step's update stays (it is complete: the step's transaction is already
 *   committed).
 * - Each phase runs the hooks registered when it starts: a hook registered or removed by a
 *   hook takes effect from the next phase.
 * - With no hook registered a step pays one size check and allocates nothing.
 * - Hooks are not part of `stateDict()`.
 */
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { describe } from '../validate.js';

/**
 * Called before each step with the optimizer and the step's arguments (frozen); returns
 * `undefined` or replacement arguments.
 */
export type StepPreHook<O, A extends readonly unknown[]> = (optimizer: O, args: Readonly<A>) => A | undefined | void;

/** Called after each step that updated, with the optimizer and the arguments the step ran with. */
export type StepPostHook<O, A extends readonly unknown[]> = (optimizer: O, args: Readonly<A>) => unknown;

/** What `registerStepPreHook` / `registerStepPostHook` return (torch's RemovableHandle). */
export interface HookHandle {
  /** Unregisters the hook; calling it again does nothing. */
  remove(): void;
}

type AnyHook = (optimizer: unknown, args: readonly unknown[]) => unknown;

/** The step hooks of one optimizer (see the module comment). */
export class StepHooks {
  private readonly pre = new Map<number, AnyHook>();
  private readonly post = new Map<number, AnyHook>();
  private nextId = 0;

  /**
   * `owner` names the optimizer class in messages; `maxArgs` is how many arguments its step takes
   * (a replacement with more is refused).
   */
  constructor(private readonly owner: string, private readonly maxArgs: number) {}

  /** Registered hooks, pre and post. */
  get size(): number {
    return this.pre.size + this.post.size;
  }

  /** Adds a pre (`'pre'`) or post hook at the end of its list. */
  register(kind: 'pre' | 'post', hook: unknown): HookHandle {
    const method = kind === 'pre' ? 'registerStepPreHook' : 'registerStepPostHook';
    if (typeof hook !== 'function') {
      throw new OptimTypeError(`${this.owner}.${method}(hook): hook must be a function (optimizer, args) => ..., got ${describe(hook)}`);
    }
    const list = kind === 'pre' ? this.pre : this.post;
    const id = this.nextId++;
    list.set(id, hook as AnyHook);
    return { remove: () => void list.delete(id) };
  }

  /**
   * Runs `step` between the hooks: pre hooks (which may replace `args`), the step, then the post
   * hooks unless the step threw or was skipped (`optimizer.skippedSteps` grew).
   */
  run<O extends { readonly skippedSteps: number }, A extends readonly unknown[], R>(optimizer: O, args: A, step: (args: A) => R): R {
    let current = Object.freeze(args.slice()) as unknown as A;
    if (this.pre.size > 0) {
      let i = 0;
      for (const hook of [...this.pre.values()]) {
        const r = hook(optimizer, current);
        if (r !== undefined) current = this.checkReplacement(r, i);
        i++;
      }
    }
    const skipped = optimizer.skippedSteps;
    const out = step(current);
    if (this.post.size > 0 && optimizer.skippedSteps === skipped) {
      for (const hook of [...this.post.values()]) hook(optimizer, current);
    }
    return out;
  }

  private checkReplacement<A>(r: unknown, i: number): A {
    const where = `${this.owner}.step(): step pre hook ${i} (in registration order)`;
    if (!Array.isArray(r)) {
      throw new OptimTypeError(`${where} must return undefined or an array of step arguments ([closure]), got ${describe(r)}`);
    }
    if (r.length > this.maxArgs) {
      throw new OptimRangeError(`${where} returned ${r.length} step arguments; step takes at most ${this.maxArgs}`);
    }
    return Object.freeze(r.slice()) as unknown as A;
  }
}
