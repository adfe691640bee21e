/**
 * ZeroRedundancyOptimizer (ZeRO stage 1, torch's name): the optimizer state is sharded across
 * ranks. The parameters of each dtype are laid end to end and cut into worldSize equal chunks
 * (the last padded); rank r owns chunk r. A step reduce-scatters the averaged gradient (each
 * rank receives its chunk only), steps a private optimizer over the pieces of parameters in its
 * chunk, then all-gathers the updated values into every rank's parameters.
 *
 * Only elementwise optimizers shard exactly this way (SGD, Adam, AdamW, Adagrad, RMSprop, ...,
 * whose update of an element depends on that element alone): their result is the unsharded
 * optimizer's, bit for bit where the averaged gradient is (2 ranks). Optimizers that look at a
 * whole tensor (LAMB, LARS, Muon, Adafactor) would see pieces and are not supported.
 *
 * A non-finite gradient follows the wrapped optimizer's `nonFinite` policy on every rank alike:
 * each rank sees only its chunk of the averaged gradient, so before any rank steps, the ranks
 * agree (one small all-reduce) on the first non-finite element anywhere; then every rank throws
 * the same NonFiniteError ('error') or skips the step ('skip'), changing nothing.
 */
import { NonFiniteError, OptimRangeError, OptimTypeError } from '../errors.js';
import type { Param } from '../param.js';
import type { ParamState, StateDict } from '../optim/optimizer.js';
import type { ProcessGroup } from './index.js';
import { decodeState, encodeState } from './optimizer.js';
import type { WrappableOptimizer } from './optimizer.js';

type Floats = Float32Array | Float64Array;

interface Piece {
  param: Param;
  /** The piece's range in the parameter, and its offset in this rank's chunk. */
  from: number;
  to: number;
  at: number;
  shard: Param;
}

interface Flat {
  ctor: Float32ArrayConstructor | Float64ArrayConstructor;
  params: Param[];
  offsets: number[];
  chunk: number;
  grads: Floats; // worldSize × chunk
  gathered: Floats; // worldSize × chunk
  gradShard: Floats; // chunk
  dataShard: Floats; // chunk
  pieces: Piece[];
}

export interface ZeroRedundancyOptimizerOptions {
  processGroup: ProcessGroup;
}

/** The wrapped optimizer's `nonFinite` policy as a number, so the ranks can agree on it (min). */
const POLICY_CODES = { error: 0, skip: 1, ignore: 2 } as const;
const POLICY_NAMES = ['error', 'skip', 'ignore'] as const;

export class ZeroRedundancyOptimizer<O extends WrappableOptimizer = WrappableOptimizer> {
  readonly processGroup: ProcessGroup;
  /** The optimizer over this rank's shard (undefined when the shard holds no element). */
  readonly local: O | undefined;
  private readonly flats: Flat[] = [];
  private readonly params: Param[];
  /** Steps every rank skipped for a non-finite gradient (`nonFinite: 'skip'`). */
  private skipped = 0;
  /** Per dtype, the first non-finite element's index in the flat layout; then the policy code. */
  private readonly found: Float64Array;

  /**
   * `factory(shardParams)` builds the optimizer over this rank's pieces, with the
   * hyperparameters every rank must share: `(ps) => new Adam(ps, { lr: 1e-3 })`. Every rank
   * passes the same parameters (names, order, lengths).
   */
  constructor(params: Param[], factory: (shard: Param[]) => O, options: ZeroRedundancyOptimizerOptions) {
    if (!options?.processGroup) throw new OptimTypeError('ZeroRedundancyOptimizer: options.processGroup is required');
    if (typeof factory !== 'function') throw new OptimTypeError('ZeroRedundancyOptimizer: factory must be a function (shard params) => optimizer');
    const pg = options.processGroup;
    this.processGroup = pg;
    this.params = [...params];
    const names = new Set<string>();
    for (const p of params) {
      if (!(p.data instanceof Float32Array) && !(p.data instanceof Float64Array)) {
        throw new OptimTypeError(`ZeroRedundancyOptimizer: ${p.name}.data must be a Float32Array or a Float64Array`);
      }
      if (names.has(p.name)) throw new OptimRangeError(`ZeroRedundancyOptimizer: two parameters are named ${p.name}`);
      names.add(p.name);
    }
    const shardParams: Param[] = [];
    for (const ctor of [Float32Array, Float64Array] as const) {
      const ps = params.filter((p) => p.data instanceof ctor);
      if (ps.length === 0) continue;
      const offsets: number[] = [];
      let total = 0;
      for (const p of ps) {
        offsets.push(total);
        total += p.data.length;
      }
      const chunk = Math.max(1, Math.ceil(total / pg.worldSize));
      const lo = pg.rank * chunk;
      const hi = lo + chunk;
      const flat: Flat = {
        ctor, params: ps, offsets, chunk,
        grads: new ctor(chunk * pg.worldSize), gathered: new ctor(chunk * pg.worldSize),
        gradShard: new ctor(chunk), dataShard: new ctor(chunk), pieces: [],
      };
      ps.forEach((p, k) => {
        const start = offsets[k]!;
        const from = Math.max(lo, start) - start;
        const to = Math.min(hi, start + p.data.length) - start;
        if (to <= from) return;
        const at = start + from - lo;
        const data = flat.dataShard.subarray(at, at + to - from);
        data.set((p.data as Floats).subarray(from, to));
        const shard: Param = {
          name: from === 0 && to === p.data.length ? p.name : `${p.name}[${from}:${to}]`,
          data, grad: flat.gradShard.subarray(at, at + to - from), shape: Object.freeze([to - from]),
        };
        flat.pieces.push({ param: p, from, to, at, shard });
        shardParams.push(shard);
      });
      this.flats.push(flat);
    }
    this.local = shardParams.length > 0 ? factory(shardParams) : undefined;
    this.found = new Float64Array(this.flats.length + 1);
  }

  /** Steps skipped on every rank for a non-finite gradient (`nonFinite: 'skip'`); saved in the state dict. */
  get skippedSteps(): number {
    return this.skipped;
  }

  /**
   * Agrees across ranks on whether the averaged gradient holds a non-finite element, and refuses
   * the step alike on every rank when it does: throws NonFiniteError ('error') or resolves true
   * (a skipped step). A rank with an empty shard has no optimizer, so the policy travels too.
   */
  private async refuseNonFinite(): Promise<boolean> {
    const pg = this.processGroup;
    const found = this.found;
    const policy = (this.local as { nonFinite?: keyof typeof POLICY_CODES } | undefined)?.nonFinite;
    found.fill(Infinity);
    found[this.flats.length] = this.local ? POLICY_CODES[policy ?? 'ignore'] ?? POLICY_CODES.ignore : Infinity;
    if (policy === 'error' || policy === 'skip') {
      this.flats.forEach((f, j) => {
        const g = f.gradShard;
        for (let i = 0; i < g.length; i++) {
          if (!Number.isFinite(g[i])) {
            found[j] = pg.rank * f.chunk + i;
            break;
          }
        }
      });
    }
    await pg.allReduce(found, { op: 'min' });
    const agreed = POLICY_NAMES[found[this.flats.length]!] ?? 'ignore';
    const j = this.flats.findIndex((_, k) => found[k] !== Infinity);
    if (agreed === 'ignore' || j < 0) return false;
    if (agreed === 'skip') {
      this.skipped++;
      return true;
    }
    const f = this.flats[j]!;
    const at = found[j]!;
    const owner = Math.floor(at / f.chunk);
    const value = new Float64Array([owner === pg.rank ? f.gradShard[at - owner * f.chunk]! : 0]);
    await pg.broadcast(value, { root: owner });
    let k = f.offsets.length - 1;
    while (f.offsets[k]! > at) k--;
    const p = f.params[k]!;
    const index = at - f.offsets[k]!;
    throw new NonFiniteError(
      `ZeroRedundancyOptimizer.step(): the averaged grad of param "${p.name}" holds ${value[0]} at index ${index} ` +
        `(in rank ${owner}'s shard); nothing was updated on any rank (nonFinite: 'error'; 'skip' skips such steps on every rank)`,
      p.name, index, value[0]!,
    );
  }

  /**
   * Averages the gradients across ranks (a reduce-scatter: each rank receives its chunk), steps
   * this rank's shard, and all-gathers the new values into every rank's parameters. Every rank
   * must call it. A non-finite averaged gradient follows the wrapped optimizer's `nonFinite` on
   * every rank alike (see the class comment): NonFiniteError, or a skipped step.
   */
  async step(): Promise<void> {
    const pg = this.processGroup;
    for (const f of this.flats) {
      f.params.forEach((p, k) => f.grads.set(p.grad as Floats, f.offsets[k]));
      await pg.reduceScatter(f.grads, f.gradShard, { op: 'avg' });
    }
    if (await this.refuseNonFinite()) return;
    this.local?.step();
    for (const f of this.flats) {
      await pg.allGather(f.dataShard, f.gathered);
      f.params.forEach((p, k) => (p.data as Floats).set(f.gathered.subarray(f.offsets[k], f.offsets[k]! + p.data.length)));
    }
  }

  zeroGrad(): void {
    for (const p of this.params) (p.grad as Floats).fill(0);
  }

  /** The bytes of optimizer state this rank holds (its shard's buffers). */
  stateBytes(): number {
    if (!this.local) return 0;
    let n = 0;
    for (const st of Object.values(this.local.stateDict().state)) {
      for (const v of Object.values(st)) if (ArrayBuffer.isView(v)) n += v.byteLength;
    }
    return n;
  }

  /** This rank's shard as a state dict keyed by the original names, with each piece's range. */
  private shardDict(): { state: Record<string, Array<{ from: number; state: ParamState }>>; groups: StateDict['paramGroups']; skippedSteps: number } {
    const sd = this.local?.stateDict();
    const state: Record<string, Array<{ from: number; state: ParamState }>> = {};
    for (const f of this.flats) {
      for (const piece of f.pieces) {
        const st = sd?.state[piece.shard.name];
        if (st) (state[piece.param.name] ??= []).push({ from: piece.from, state: st });
      }
    }
    return { state, groups: sd?.paramGroups ?? [], skippedSteps: this.skipped };
  }

  /**
   * Gathers the whole state dict (as the unsharded optimizer's stateDict() would give it) on rank
   * `to`, for saveCheckpoint; resolves undefined on the other ranks. Every rank must call it.
   */
  async consolidateStateDict(to = 0): Promise<StateDict | undefined> {
    const pg = this.processGroup;
    if (!Number.isInteger(to) || to < 0 || to >= pg.worldSize) {
      throw new OptimRangeError(`consolidateStateDict: to must be a rank from 0 to ${pg.worldSize - 1}, got ${String(to)}`);
    }
    const mine = encodeState(this.shardDict() as unknown as StateDict);
    const sizes = new Float64Array(pg.worldSize);
    const mySize = new Float64Array([mine.length]);
    await pg.allGather(mySize, sizes);
    const words = Math.ceil(Math.max(...sizes) / 8);
    const send = new Float64Array(words);
    new Uint8Array(send.buffer).set(mine);
    const all = new Float64Array(words * pg.worldSize);
    await pg.allGather(send, all);
    if (pg.rank !== to) return undefined;
    const shards = [...sizes].map((n, r) => decodeState(new Uint8Array(all.buffer, r * words * 8, n)) as unknown as ReturnType<ZeroRedundancyOptimizer['shardDict']>);
    const state: Record<string, ParamState> = {};
    for (const p of this.params) {
      const pieces = shards.flatMap((s) => s.state[p.name] ?? []).sort((a, b) => a.from - b.from);
      if (pieces.length === 0) continue;
      const whole: ParamState = {};
      for (const [key, v] of Object.entries(pieces[0]!.state)) {
        if (!ArrayBuffer.isView(v)) {
          whole[key] = v;
          continue;
        }
        const Ctor = v.constructor as Float32ArrayConstructor;
        const out = new Ctor(p.data.length);
        for (const piece of pieces) out.set(piece.state[key] as Float32Array, piece.from);
        whole[key] = out;
      }
      state[p.name] = whole;
    }
    const group = shards.find((s) => s.groups.length > 0)?.groups[0] ?? { params: [] };
    return {
      state,
      paramGroups: [{ ...group, params: this.params.map((p) => p.name) }],
      skippedSteps: Math.max(...shards.map((s) => s.skippedSteps)),
    };
  }

  /** Loads a whole state dict (consolidateStateDict's, or an unsharded optimizer's): each rank keeps its shard. */
  loadStateDict(sd: StateDict): void {
    const skipped = sd.skippedSteps ?? 0;
    if (!Number.isInteger(skipped) || skipped < 0) {
      throw new OptimRangeError(`ZeroRedundancyOptimizer.loadStateDict: stateDict.skippedSteps must be a whole number >= 0, got ${String(skipped)}`);
    }
    if (!this.local) {
      this.skipped = skipped;
      return;
    }
    const state: Record<string, ParamState> = {};
    for (const f of this.flats) {
      for (const piece of f.pieces) {
        const st = sd.state[piece.param.name];
        if (!st) continue;
        const part: ParamState = {};
        for (const [key, v] of Object.entries(st)) {
          part[key] = ArrayBuffer.isView(v) ? (v as Float32Array).slice(piece.from, piece.to) : v;
        }
        state[piece.shard.name] = part;
      }
    }
    const group = sd.paramGroups[0] ?? { params: [] };
    const names = this.local.paramGroups.flatMap((g) => g.params.map((p) => p.name));
    this.local.loadStateDict({ ...sd, state, paramGroups: [{ ...group, params: names }] });
    this.skipped = skipped;
  }
}
