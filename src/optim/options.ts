/**
 * What the first-order optimizers share about their options: the Adam family's option block, and
 * the check of a group's options by the type of each default, in torch's wording.
 */
import { upperSnake } from '../backend/kernel.js';
import { checkBetas, checkBoolean, checkFinite, checkNonNegative } from '../validate.js';
import type { Where } from '../validate.js';

/** The options of Adam and its relatives (Adamax, NAdam, RAdam). */
export interface AdamFamilyOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  maximize?: boolean;
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
  readonly kind: 'nonNegative' | 'finite' | 'boolean' | 'betas';
  /** torch's wording of the refusal: `Invalid learning rate`, `Invalid weight_decay value`. */
  readonly label: string;
}

/** torch's label for an option, which names it in snake case (`lr` and `eps` have their own). */
function torchLabel(key: string): string {
  if (key === 'lr') return 'Invalid learning rate';
  if (key === 'eps') return 'Invalid epsilon value';
  return `Invalid ${upperSnake(key).toLowerCase()} value`;
}

/**
 * The rules for an optimizer's options, by the type of each default: a number must be finite and
 * ≥ 0 (torch's checks), or only finite when listed in `signed`; a boolean must be a boolean; a
 * pair is `betas`, each in [0, 1). An option whose default is undefined (a required one) is left to
 * the optimizer's own `checkHyper`.
 */
export function optionRules(defaults: object, signed: readonly string[] = []): readonly OptionRule[] {
  const rules: OptionRule[] = [];
  for (const [key, v] of Object.entries(defaults)) {
    if (v === undefined) continue;
    const kind =
      typeof v === 'boolean' ? 'boolean' : Array.isArray(v) ? 'betas' : signed.includes(key) ? 'finite' : 'nonNegative';
    rules.push({ key, kind, label: torchLabel(key) });
  }
  return rules;
}

/** Applies `rules` to a group's options (it runs at every step: no allocation unless it throws). */
export function checkOptionRules(rules: readonly OptionRule[], group: object, where: Where): void {
  const g = group as Record<string, unknown>;
  for (const { key, kind, label } of rules) {
    const v = g[key];
    if (kind === 'nonNegative') checkNonNegative(v, key, label, where);
    else if (kind === 'finite') checkFinite(v, key, label, where);
    else if (kind === 'boolean') checkBoolean(v, key, where);
    else checkBetas(v, key, where);
  }
}

/** What a kernel scalar is, as a function of a group's options alone. */
type OptionScalar = (g: Readonly<Record<string, unknown>>) => number;
const n = (v: unknown): number => v as number;
const beta = (g: Readonly<Record<string, unknown>>, i: number): number => (g.betas as number[])[i];

/**
 * The kernel scalars that follow from a group's options alone, by slot name: the optimizer fills
 * every slot of its kernel named here before its own `fillScalars` (which computes the rest: bias
 * corrections, schedules of the step).
 */
const OPTION_SCALARS: Readonly<Record<string, OptionScalar>> = {
  lr: (g) => n(g.lr),
  negLr: (g) => -n(g.lr),
  eps: (g) => n(g.eps),
  wd: (g) => n(g.weightDecay),
  decayMul: (g) => 1 - n(g.lr) * n(g.weightDecay),
  sign: (g) => (g.maximize ? -1 : 1),
  momentum: (g) => n(g.momentum),
  alpha: (g) => n(g.alpha),
  oneMinusAlpha: (g) => 1 - n(g.alpha),
  beta1: (g) => beta(g, 0),
  oneMinusBeta1: (g) => 1 - beta(g, 0),
  beta2: (g) => beta(g, 1),
  oneMinusBeta2: (g) => 1 - beta(g, 1),
};

/** A kernel's slots that OPTION_SCALARS fills, with their functions. */
export interface OptionScalars {
  readonly slots: readonly number[];
  readonly values: readonly OptionScalar[];
}

const bySlots = new WeakMap<object, OptionScalars>();

/** The option scalars of a kernel (computed once per kernel). */
export function optionScalars(kernel: { readonly scalars: readonly string[] }): OptionScalars {
  let o = bySlots.get(kernel);
  if (o === undefined) {
    const named = kernel.scalars.map((name, slot) => ({ slot, f: OPTION_SCALARS[name] })).filter((x) => x.f !== undefined);
    o = { slots: named.map((x) => x.slot), values: named.map((x) => x.f) };
    bySlots.set(kernel, o);
  }
  return o;
}

/** Fills a kernel's option scalars from a group (no allocation: it runs at every step). */
export function fillOptionScalars(o: OptionScalars, group: object, out: Float64Array): void {
  const g = group as Readonly<Record<string, unknown>>;
  for (let i = 0; i < o.slots.length; i++) out[o.slots[i]] = o.values[i](g);
}
