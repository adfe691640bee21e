/**
 * What the first-order optimizers share about their options: the Adam family's option block, and
 * the check of a group's options by the type of each default, in torch's wording.
 */
import { upperSnake } from '../backend/kernel.js';
import { OptimRangeError } from '../errors.js';
import { checkBetas, checkBoolean, checkFinite, checkNonNegative, path, show } from '../validate.js';
import type { Where } from '../validate.js';

/** The options most first-order optimizers share: step size, L2 weight decay, direction. */
export interface DecayOptions {
  lr?: number;
  weightDecay?: number;
  maximize?: boolean;
}

/** The options Adam and its relatives share (each adds its own). */
export interface AdamFamilyOptions extends DecayOptions {
  betas?: [number, number];
  eps?: number;
}

/** torch's defaults for the Adam family's options but `lr`, which each algorithm sets. */
export const ADAM_FAMILY_DEFAULTS: Readonly<Required<Omit<AdamFamilyOptions, 'lr'>>> = {
  betas: [0.9, 0.999],
  eps: 1e-8,
  weightDecay: 0,
  maximize: false,
};

/** How one option is checked, decided once per optimizer class from its default. */
interface OptionRule {
  readonly key: string;
  readonly kind: 'nonNegative' | 'finite' | 'unit' | 'boolean' | 'betas';
  /** torch's wording of the refusal: `Invalid learning rate`, `Invalid weight_decay value`. */
  readonly label: string;
}

/** torch's label for an option, which names it in snake case (`lr` and `eps` have their own). */
function torchLabel(key: string): string {
  if (key === 'lr') return 'Invalid learning rate';
  if (key === 'eps') return 'Invalid epsilon value';
  return `Invalid ${upperSnake(key).toLowerCase()} value`;
}

/** Checks a group's options (it runs at every step: no allocation unless it throws). */
export type OptionChecker = (group: object, where: Where) => void;

/** The test each kind passes, on `v`, as JavaScript source; anything else is refused by `refuse`. */
const ACCEPTS: Readonly<Record<OptionRule['kind'], string>> = {
  nonNegative: "typeof v === 'number' && v >= 0 && v < Infinity",
  finite: "typeof v === 'number' && v - v === 0",
  unit: "typeof v === 'number' && v >= 0 && v <= 1",
  boolean: "typeof v === 'boolean'",
  betas:
    "Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && v[0] >= 0 && v[0] < 1 && " +
    "typeof v[1] === 'number' && v[1] >= 0 && v[1] < 1",
};

/** Throws the error of a refused option, in torch's wording (src/validate.ts's checks). */
function refuse(rule: OptionRule, v: unknown, where: Where): void {
  const { key, kind, label } = rule;
  if (kind === 'nonNegative') checkNonNegative(v, key, label, where);
  else if (kind === 'finite') checkFinite(v, key, label, where);
  else if (kind === 'unit') {
    checkFinite(v, key, label, where);
    throw new OptimRangeError(`${label}: ${show(v)} (${path(where, key)} must be in [0, 1])`);
  } else if (kind === 'boolean') checkBoolean(v, key, where);
  else checkBetas(v, key, where);
}

/**
 * The checker of an optimizer's options, by the type of each default: a number must be finite and
 * ≥ 0 (torch's checks), or only finite when listed in `signed`, or in [0, 1] when listed in `unit`;
 * a boolean must be a boolean; `betas` must be a pair, each in [0, 1). An option whose default is
 * undefined (a required one), and a pair other than `betas`, are left to the optimizer's own
 * `checkHyper`.
 *
 * The checker is compiled from the table once per class, each option read by its own name: a
 * loop over the keys would read numbers through a generic keyed load, which allocates a box per
 * number at every step. The keys are the optimizer's own defaults, never user input.
 */
export function optionChecker(defaults: object, signed: readonly string[] = [], unit: readonly string[] = []): OptionChecker {
  const rules: OptionRule[] = [];
  for (const [key, v] of Object.entries(defaults)) {
    if (v === undefined) continue;
    // A pair other than `betas` (Rprop's etas) is the optimizer's own to check.
    if (Array.isArray(v) && key !== 'betas') continue;
    const kind =
      typeof v === 'boolean'
        ? 'boolean'
        : Array.isArray(v)
          ? 'betas'
          : signed.includes(key)
            ? 'finite'
            : unit.includes(key)
              ? 'unit'
              : 'nonNegative';
    rules.push({ key, kind, label: torchLabel(key) });
  }
  const body = rules
    .map((r, i) => `v = g[${JSON.stringify(r.key)}]; if (!(${ACCEPTS[r.kind]})) refuse(rules[${i}], v, where);`)
    .join('\n');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function('rules', 'refuse', `return function checkOptions(g, where) {\nlet v;\n${body}\n};`);
  return make(rules, refuse) as OptionChecker;
}

/**
 * The kernel scalars that follow from a group's options alone, by slot name, as JavaScript
 * expressions of the group `g`: the optimizer fills every slot of its kernel named here before
 * its own `fillScalars` (which computes the rest: bias corrections, schedules of the step).
 */
const OPTION_SCALARS: Readonly<Record<string, string>> = {
  lr: 'g.lr',
  negLr: '-g.lr',
  eps: 'g.eps',
  wd: 'g.weightDecay',
  decayMul: '1 - g.lr * g.weightDecay',
  sign: 'g.maximize ? -1 : 1',
  momentum: 'g.momentum',
  alpha: 'g.alpha',
  oneMinusAlpha: '1 - g.alpha',
  beta1: 'g.betas[0]',
  oneMinusBeta1: '1 - g.betas[0]',
  beta2: 'g.betas[1]',
  oneMinusBeta2: '1 - g.betas[1]',
  // optax's names for the decay rates (Lion, AdaBelief, Yogi).
  b1: 'g.b1',
  oneMinusB1: '1 - g.b1',
  b2: 'g.b2',
  oneMinusB2: '1 - g.b2',
  epsRoot: 'g.epsRoot',
};

/** A kernel's slots that OPTION_SCALARS fills, and the function that fills them. */
export interface OptionScalars {
  readonly slots: readonly number[];
  /** Writes every such slot of `out` from group `g` (no allocation: it runs at every step). */
  readonly fill: (g: object, out: Float64Array) => void;
}

const bySlots = new WeakMap<object, OptionScalars>();

/**
 * The option scalars of a kernel, compiled once per kernel into one function that reads each
 * option by name (a table of small functions called in turn costs a megamorphic call per scalar
 * at every step: ~60 ns of Adam's fixed cost). The expressions are OPTION_SCALARS', never input.
 */
export function optionScalars(kernel: { readonly scalars: readonly string[] }): OptionScalars {
  let o = bySlots.get(kernel);
  if (o === undefined) {
    const named = kernel.scalars.map((name, slot) => ({ slot, expr: OPTION_SCALARS[name] })).filter((x) => x.expr !== undefined);
    const body = named.map(({ slot, expr }) => `out[${slot}] = ${expr};`).join('\n');
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const fill = new Function('g', 'out', body) as OptionScalars['fill'];
    o = { slots: named.map((x) => x.slot), fill };
    bySlots.set(kernel, o);
  }
  return o;
}

/** Fills a kernel's option scalars from a group. */
export function fillOptionScalars(o: OptionScalars, group: object, out: Float64Array): void {
  o.fill(group, out);
}
