/**
 * Copies of a kernel's reference loop, one per (flags, dtype), each with its flags folded into
 * constants: `on.amsgrad` becomes `false` in the copy run with amsgrad off. Each copy is a
 * function of its own to V8 (its own type feedback, seeing one array type; its flag branches
 * gone), so it compiles like a loop written by hand for that case, where the one shared loop,
 * reading its flags from a record at every element and fed every dtype, runs up to ~1.4× slower
 * (bench/reference-plain.js). The arithmetic is the loop's own text: the results are the same bits.
 *
 * A copy is compiled from the loop's source with `new Function`, so it cannot see the variables
 * of the module that defined the loop. The source is checked conservatively first: every name it
 * uses must be declared in it, a global below, or a helper of src/optim/prelude.ts (the shared
 * arithmetic; under its own name, or through a namespace, as a CommonJS build or a test runner's
 * transform calls it: a name used only as `<name>.<prelude helper>`). A loop
 * that uses anything else, or any string, comment or pattern the check does not read, is not
 * copied: the runner calls it as it is.
 */
import * as prelude from '../optim/prelude.js';
import type { AnyKernel, ReferenceLoop } from './kernel.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loop = ReferenceLoop<any, any>;

const KEYWORDS = new Set([
  'const', 'let', 'var', 'for', 'if', 'else', 'return', 'true', 'false', 'null', 'undefined',
  'new', 'typeof', 'of', 'in', 'break', 'continue', 'while', 'do', 'void',
]);
/** Globals a loop may use: read-only built-ins. */
const GLOBALS = new Set(['Math', 'NaN', 'Infinity', 'Number', 'Error']);
const IDENT = /^[A-Za-z_$][\w$]*$/;

/** The index of the bracket closing the one at `open`, or -1. */
function closing(src: string, open: number): number {
  const pairs: Record<string, string> = { '(': ')', '[': ']', '{': '}' };
  const stack: string[] = [];
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (c in pairs) stack.push(pairs[c]);
    else if (c === ')' || c === ']' || c === '}') {
      if (stack.pop() !== c) return -1;
      if (stack.length === 0) return i;
    }
  }
  return -1;
}

/** Splits at the commas outside brackets. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      out.push(s.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(s.slice(start).trim());
  return out.filter((x) => x !== '');
}

/** The names a binding pattern declares (`a`, `[a, b]`, `{ a, b }`), or undefined if unread. */
function patternNames(pattern: string): string[] | undefined {
  const p = pattern.trim();
  if (IDENT.test(p)) return [p];
  if ((p.startsWith('[') && p.endsWith(']')) || (p.startsWith('{') && p.endsWith('}'))) {
    const names: string[] = [];
    const object = p.startsWith('{');
    for (const part of splitTop(p.slice(1, -1))) {
      // `{ key: name }` binds name (object patterns only).
      const alias = object ? /^([A-Za-z_$][\w$]*)\s*:\s*([A-Za-z_$][\w$]*)$/.exec(part) : null;
      const name = alias !== null ? alias[2] : part;
      if (!IDENT.test(name)) return undefined;
      names.push(name);
    }
    return names;
  }
  return undefined;
}

interface Parsed {
  /** `function (params) { body }`'s parts. */
  params: string[];
  body: string;
}

/** The parameters and body of a method, function or arrow function's source, or undefined. */
function parse(source: string): Parsed | undefined {
  // Comments out, then no strings, template literals or arrow functions may be left. (Had a
  // string held `//` or `/*`, cutting there leaves its opening quote: refused as well.)
  const src = source.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
  if (/["'`]|=>|\/\*/.test(src)) return undefined;
  const open = src.indexOf('(');
  if (open < 0) return undefined;
  const head = src.slice(0, open).trim();
  if (!/^(function\s*)?[A-Za-z_$]*[\w$]*$/.test(head)) return undefined;
  const close = closing(src, open);
  if (close < 0) return undefined;
  const rest = src.slice(close + 1).trim();
  if (!rest.startsWith('{') || closing(rest, 0) !== rest.length - 1) return undefined;
  return { params: splitTop(src.slice(open + 1, close)), body: rest };
}

/**
 * The names `body` declares with const/let/var, or undefined when a declaration is not of the
 * simple forms the check reads (one binding, a name or a flat pattern, per keyword).
 */
function declared(body: string): { names: Set<string>; patterns: Array<[number, number]> } | undefined {
  const names = new Set<string>();
  const patterns: Array<[number, number]> = [];
  const decl = /\b(?:const|let|var)\s+/g;
  for (let m = decl.exec(body); m !== null; m = decl.exec(body)) {
    const at = m.index + m[0].length;
    const c = body[at];
    let pattern: string;
    let end: number;
    if (c === '[' || c === '{') {
      end = closing(body, at);
      if (end < 0) return undefined;
      pattern = body.slice(at, end + 1);
      end += 1;
      patterns.push([at, end]);
    } else {
      const id = /^[A-Za-z_$][\w$]*/.exec(body.slice(at));
      if (id === null) return undefined;
      pattern = id[0];
      end = at + id[0].length;
    }
    const got = patternNames(pattern);
    if (got === undefined) return undefined;
    // A second declarator (`const a = 1, b = 2`) is not read: refuse rather than miss `b`.
    const tail = /^\s*(=[^;]*)?;?/.exec(body.slice(end));
    if (tail !== null && tail[1] !== undefined && splitTop(tail[1]).length > 1) return undefined;
    for (const n of got) names.add(n);
  }
  return { names, patterns };
}

/** Names the prelude is reachable by: its exports, and the namespace tsc's CommonJS build uses. */
function preludeScope(name: string): unknown {
  if (Object.prototype.hasOwnProperty.call(prelude, name)) return (prelude as Record<string, unknown>)[name];
  if (/^prelude(_js)?(_\d+)?$/.test(name)) return prelude;
  return undefined;
}

/**
 * A copy of `loop` for `flags` (bit i is `kernel.flags[i]`), or undefined when the loop's source
 * does not pass the check (see the file's header).
 */
function compile(kernel: AnyKernel, flags: number): Loop | undefined {
  const parsed = parse(kernel.reference.toString());
  if (parsed === undefined) return undefined;
  const { params, body } = parsed;
  if (params.length > 5) return undefined;
  const bound = new Set<string>();
  for (const p of params) {
    const names = patternNames(p);
    if (names === undefined) return undefined;
    for (const n of names) bound.add(n);
  }
  let text = body;
  const on = params[4];
  if (on !== undefined) {
    if (!IDENT.test(on)) return undefined;
    const names = kernel.flags as readonly string[];
    let unknown = false;
    text = text.replace(new RegExp(`(?<![\\w$.])${on.replace(/\$/g, '\\$')}\\s*\\.\\s*([A-Za-z_$][\\w$]*)`, 'g'), (_, f: string) => {
      const i = names.indexOf(f);
      if (i < 0) unknown = true;
      return (flags & (1 << i)) !== 0 ? 'true' : 'false';
    });
    if (unknown) return undefined;
  }
  const decl = declared(text);
  if (decl === undefined) return undefined;
  const locals = decl.names;
  const inPattern = (at: number): boolean => decl.patterns.some(([a, b]) => at >= a && at < b);
  // Every name left must be bound here, a keyword or global, or a prelude name. Names inside a
  // declaration's pattern are its bindings (in `locals`) or the keys of the record it reads.
  const scope = new Map<string, unknown>();
  const ident = /(?<![\w$])[A-Za-z_$][\w$]*/g;
  for (let m = ident.exec(text); m !== null; m = ident.exec(text)) {
    const name = m[0];
    const before = text.slice(0, m.index).trimEnd();
    if (before.endsWith('.') && !before.endsWith('..')) continue; // a property
    if (inPattern(m.index)) continue;
    if (bound.has(name) || locals.has(name) || KEYWORDS.has(name) || GLOBALS.has(name)) continue;
    if (name === (on ?? '')) return undefined; // the record used otherwise than as on.flag
    let value = preludeScope(name);
    if (value === undefined) {
      // The namespace a build or a test runner imports the prelude through, whatever it is named:
      // every use of the name must read one of the prelude's helpers.
      const member = /^\s*\.\s*([A-Za-z_$][\w$]*)/.exec(text.slice(m.index + name.length));
      if (member === null || !Object.prototype.hasOwnProperty.call(prelude, member[1])) return undefined;
      value = prelude;
    }
    if (scope.has(name) && scope.get(name) !== value) return undefined;
    scope.set(name, value);
  }
  try {
    const make = new Function(...scope.keys(), `'use strict'; return function (${params.join(', ')}) ${text};`);
    const copy: unknown = make(...scope.values());
    return typeof copy === 'function' ? (copy as Loop) : undefined;
  } catch {
    return undefined;
  }
}

/** Per kernel, per flags, the float32 and float64 copies (null: the loop is not copied). */
const copies = new WeakMap<AnyKernel, Map<number, [Loop | null, Loop | null]>>();

/** The loop to run `kernel` with `flags` on `f32` (or float64) tensors: its copy, else itself. */
export function specializedLoop(kernel: AnyKernel, flags: number, f32: boolean): Loop {
  let byFlags = copies.get(kernel);
  if (byFlags === undefined) {
    byFlags = new Map();
    copies.set(kernel, byFlags);
  }
  const key = flags & kernel.allFlags;
  let pair = byFlags.get(key);
  if (pair === undefined) {
    pair = [null, null];
    byFlags.set(key, pair);
  }
  const i = f32 ? 0 : 1;
  let loop = pair[i];
  if (loop === null) {
    loop = compile(kernel, key) ?? kernel.reference;
    pair[i] = loop;
  }
  return loop;
}
