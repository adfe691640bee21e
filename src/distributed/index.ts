/**
 * optim/distributed: process groups and collectives over Gloo, the library torch.distributed
 * runs on CPUs (Debian: `apt-get install libgloo-dev`, then rebuild the addon). Without Gloo in
 * the addon every entry point throws a DistributedError (code 'unavailable') saying how to get it.
 *
 * Rendezvous needs no outside service: rank 0 hosts a small TCP store (./store.ts) at
 * masterAddr:masterPort; every rank's native side registers there and Gloo connects the full mesh
 * through it. Collectives run on a thread of the group's own, one at a time in issue order (which
 * must be the same on every rank), and never block the event loop; each works in place on the
 * arrays it is given, holds them until its Promise settles, and must not see them written before.
 */
import { DistributedError, OptimRangeError, OptimTypeError } from '../errors.js';
import { loadNative } from '../backend/native.js';
import { fromNative } from '../backend/native-errors.js';
import { LivenessClient, StoreServer } from './store.js';

export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';
type Floats = Float32Array | Float64Array;
type Handle = object;

interface DistributedAddon {
  distributedInfo(): { gloo: boolean };
  pgCreate(rank: number, size: number, host: string, port: number, timeoutMs: number, token: string, bindHost: string): Handle;
  pgConnect(h: Handle): Promise<void>;
  pgAllReduce(h: Handle, x: Floats, op: number): Promise<void>;
  pgBroadcast(h: Handle, x: Floats, root: number): Promise<void>;
  pgAllGather(h: Handle, input: Floats, output: Floats): Promise<void>;
  pgReduceScatter(h: Handle, input: Floats, output: Floats, op: number): Promise<void>;
  pgBarrier(h: Handle): Promise<void>;
  pgDestroy(h: Handle): Promise<void>;
  pgAbort(h: Handle, why: string): void;
}

const OPS: Record<ReduceOp, number> = { sum: 0, avg: 1, max: 2, min: 3 };

export interface ProcessGroupOptions {
  /** This process's rank, 0 to worldSize-1. Default: the RANK environment variable. */
  rank?: number;
  /** The number of processes. Default: WORLD_SIZE. */
  worldSize?: number;
  /** Where rank 0 hosts the rendezvous store (and the address it binds). Default: MASTER_ADDR, else 127.0.0.1. */
  masterAddr?: string;
  /** The store's port. Default: MASTER_PORT, else 29500 (torch's default). */
  masterPort?: number;
  /** How long rendezvous and each collective may wait for the other ranks. Default 300000 (5 min). */
  timeoutMs?: number;
  /**
   * A secret every rank must present at rendezvous, so a stray process cannot join the job or
   * read its keys. Default: OPTIM_DIST_TOKEN, else none.
   */
  token?: string;
  /** The address Gloo's listener binds on this rank. Default: the interface that reaches masterAddr. */
  bindAddr?: string;
}

function addon(): DistributedAddon {
  const load = loadNative();
  const a = load.addon as unknown as Partial<DistributedAddon> | undefined;
  if (!a) {
    throw new DistributedError(
      `optim/distributed needs the native addon, which did not load (${load.error}); build it with npm run build:native`,
      'unavailable',
    );
  }
  if (typeof a.distributedInfo !== 'function' || a.distributedInfo().gloo !== true) {
    throw new DistributedError(
      'optim/distributed: Gloo was not built into the native addon. Install it (Debian/Ubuntu: ' +
        'apt-get install libgloo-dev) and rebuild the addon (npm run build:native); ' +
        'scripts/detect-gloo.js must print "gloo"',
      'unavailable',
    );
  }
  return a as DistributedAddon;
}

/** True when the addon was built with Gloo, so initProcessGroup can work. */
export function distributedAvailable(): boolean {
  try {
    addon();
    return true;
  } catch {
    return false;
  }
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new OptimRangeError(`initProcessGroup: ${name}=${JSON.stringify(v)} is not an integer`);
  return n;
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new OptimRangeError(`initProcessGroup: ${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

/**
 * Joins the process group: every rank calls this with the same worldSize, masterAddr and
 * masterPort and its own rank; it resolves once all ranks are connected (or rejects with a
 * DistributedError after timeoutMs).
 */
export async function initProcessGroup(options: ProcessGroupOptions = {}): Promise<ProcessGroup> {
  const native = addon();
  const rankIn = options.rank ?? envInt('RANK');
  const sizeIn = options.worldSize ?? envInt('WORLD_SIZE');
  if (rankIn === undefined) throw new OptimRangeError('initProcessGroup: no rank given and RANK is not set');
  if (sizeIn === undefined) throw new OptimRangeError('initProcessGroup: no worldSize given and WORLD_SIZE is not set');
  const worldSize = checkInt('worldSize', sizeIn, 1, 65536);
  const rank = checkInt('rank', rankIn, 0, worldSize - 1);
  const masterAddr = options.masterAddr ?? (process.env.MASTER_ADDR || '127.0.0.1');
  const masterPort = checkInt('masterPort', options.masterPort ?? envInt('MASTER_PORT') ?? 29500, 1, 65535);
  const timeoutMs = checkInt('timeoutMs', options.timeoutMs ?? 300_000, 1, 2 ** 31 - 1);
  const token = options.token ?? process.env.OPTIM_DIST_TOKEN ?? '';
  if (typeof masterAddr !== 'string' || masterAddr === '') throw new OptimTypeError('initProcessGroup: masterAddr must be a host name or address');

  const group = new ProcessGroup(rank, worldSize, timeoutMs);
  if (rank === 0) {
    try {
      group.server = await StoreServer.listen({
        host: masterAddr, port: masterPort, worldSize, token, onLost: (r) => group.noteLost(r, 'its connection to the store closed'),
      });
    } catch (e) {
      throw new DistributedError(
        `initProcessGroup: rank 0 cannot host the store at ${masterAddr}:${masterPort}: ${(e as Error).message}`, 'rendezvous',
      );
    }
  }
  group.handle = native.pgCreate(rank, worldSize, masterAddr, masterPort, timeoutMs, token, options.bindAddr ?? '');
  const live = rank === 0
    ? Promise.resolve(undefined)
    : LivenessClient.connect(masterAddr, masterPort, token, rank, worldSize, timeoutMs, (r, why) => group.noteLost(r, why));
  const [mesh, liveness] = await Promise.allSettled([native.pgConnect(group.handle), live]);
  if (liveness.status === 'fulfilled') group.live = liveness.value;
  const failure = mesh.status === 'rejected' ? mesh.reason : liveness.status === 'rejected' ? liveness.reason : undefined;
  if (failure !== undefined) {
    const err = failure instanceof Error && 'code' in failure
      ? await group.translate('initProcessGroup', failure)
      : new DistributedError(`initProcessGroup: ${(failure as Error).message}`, 'rendezvous');
    group.abandon();
    group.live?.close();
    group.server?.close();
    void native.pgDestroy(group.handle).catch(() => {});
    throw err;
  }
  return group;
}

export class ProcessGroup {
  /** @internal */ handle!: Handle;
  /** @internal */ server?: StoreServer;
  /** @internal */ live?: LivenessClient;
  private destroyed = false;
  private failure?: DistributedError;
  private readonly lost = new Map<number, string>();
  private lostWaiters: Array<() => void> = [];

  /** @internal */
  constructor(readonly rank: number, readonly worldSize: number, readonly timeoutMs: number) {}

  /**
   * @internal A rank disappeared (told by the store). The call in flight, if it waits on that rank,
   * is ended now rather than at the timeout (pgAbort: Gloo does not fail a wait whose message the
   * connection dropped halfway through), and so is every later call.
   */
  noteLost(rank: number, why: string): void {
    if (!this.lost.has(rank)) this.lost.set(rank, why);
    if (this.handle !== undefined && !this.destroyed) addon().pgAbort(this.handle, `rank ${rank} was reported lost`);
    const w = this.lostWaiters;
    this.lostWaiters = [];
    for (const f of w) f();
  }

  /** The ranks known to have disappeared. */
  get lostRanks(): number[] {
    return [...this.lost.keys()].sort((a, b) => a - b);
  }

  /** @internal Stops holding the event loop open (after a failure nothing more will run). */
  abandon(): void {
    this.live?.unref();
  }

  /** @internal Turns the addon's rejection into a DistributedError naming the lost rank, if any. */
  async translate(fn: string, e: unknown): Promise<DistributedError> {
    const code = (e as { code?: string }).code ?? '';
    const message = e instanceof Error ? e.message : String(e);
    if (code === 'ERR_OPTIM_DIST_MISMATCH') return new DistributedError(message, 'mismatch');
    if (code === 'ERR_OPTIM_DIST_BROKEN') return this.failure ?? new DistributedError(message, 'broken');
    if (code === 'ERR_OPTIM_DIST_STORE') return new DistributedError(`${fn}: the store refused this rank: ${message}`, 'rendezvous');
    // A lost peer shows in Gloo as a closed connection (or a timeout on the far side of a ring);
    // the store's notice of which rank went usually arrives first, else within a moment.
    if (this.lost.size === 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(250, this.timeoutMs));
        this.lostWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    // In the order they were reported: the first is the one that broke this call (the store's host,
    // rank 0, may exit after the others learned of the first loss; it is then only "also lost").
    const lost = [...this.lost.keys()].filter((r) => r !== this.rank);
    let err: DistributedError;
    if (lost.length > 0) {
      const r = lost[0]!;
      err = new DistributedError(
        `${fn} failed on rank ${this.rank}: rank ${r} was lost (${this.lost.get(r)})` +
          `${lost.length > 1 ? `; also lost: ranks ${lost.slice(1).join(', ')}` : ''}. Gloo said: ${message}`,
        'lost', r,
      );
    } else if (code === 'ERR_OPTIM_DIST_TIMEOUT') {
      err = new DistributedError(`${fn} timed out on rank ${this.rank} after ${this.timeoutMs} ms waiting for the other ranks: ${message}`, 'timeout');
    } else {
      err = new DistributedError(`${fn} failed on rank ${this.rank}: ${message}`, code === 'ERR_OPTIM_DIST_IO' ? 'lost' : 'broken');
    }
    if (!this.failure) {
      this.failure = err;
      this.abandon();
    }
    return err;
  }

  private check(fn: string): DistributedAddon {
    if (this.destroyed) throw new DistributedError(`${fn}: the process group was destroyed`, 'destroyed');
    if (this.failure) {
      throw new DistributedError(`${fn}: the process group is unusable after an earlier failure: ${this.failure.message}`, 'broken', this.failure.lostRank);
    }
    return addon();
  }

  /** Queues a native call: a refusal of its arguments throws now (as optim's classes), a failure rejects. */
  private run(fn: string, call: () => Promise<void>): Promise<void> {
    let p: Promise<void>;
    try {
      p = call();
    } catch (e) {
      throw fromNative(e);
    }
    return p.catch(async (e: unknown) => {
      throw await this.translate(fn, e);
    });
  }

  private floats(fn: string, name: string, x: unknown): Floats {
    if (!(x instanceof Float32Array) && !(x instanceof Float64Array)) {
      throw new OptimTypeError(`${fn}: ${name} must be a Float32Array or a Float64Array`);
    }
    return x;
  }

  private op(fn: string, op: unknown): number {
    const code = OPS[op as ReduceOp];
    if (typeof op !== 'string' || code === undefined) {
      throw new OptimRangeError(`${fn}: op must be 'sum', 'avg', 'max' or 'min', got ${String(op)}`);
    }
    return code;
  }

  /** Reduces x across ranks, in place on every rank (torch.distributed.all_reduce). */
  allReduce(x: Floats, options: { op?: ReduceOp } = {}): Promise<void> {
    const native = this.check('allReduce');
    const a = this.floats('allReduce', 'x', x);
    return this.run('allReduce', () => native.pgAllReduce(this.handle, a, this.op('allReduce', options.op ?? 'sum')));
  }

  /** Copies root's x into x on every other rank. */
  broadcast(x: Floats, options: { root?: number } = {}): Promise<void> {
    const native = this.check('broadcast');
    const a = this.floats('broadcast', 'x', x);
    const root = options.root ?? 0;
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      throw new OptimRangeError(`broadcast: root must be a rank from 0 to ${this.worldSize - 1}, got ${String(root)}`);
    }
    return this.run('broadcast', () => native.pgBroadcast(this.handle, a, root));
  }

  /** output (worldSize × input.length) receives every rank's input, in rank order. */
  allGather(input: Floats, output: Floats): Promise<void> {
    const native = this.check('allGather');
    const i = this.floats('allGather', 'input', input);
    const o = this.floats('allGather', 'output', output);
    if (i.constructor !== o.constructor) throw new OptimTypeError('allGather: input and output must have the same dtype');
    if (o.length !== i.length * this.worldSize) {
      throw new OptimRangeError(`allGather: output must hold worldSize × input.length = ${i.length * this.worldSize} elements, got ${o.length}`);
    }
    if (i.buffer === o.buffer) throw new OptimRangeError('allGather: input and output must not share memory');
    return this.run('allGather', () => native.pgAllGather(this.handle, i, o));
  }

  /**
   * Reduces input (worldSize × output.length) across ranks and leaves chunk `rank` of the result
   * in output; input is not changed (torch.distributed.reduce_scatter_tensor).
   */
  reduceScatter(input: Floats, output: Floats, options: { op?: ReduceOp } = {}): Promise<void> {
    const native = this.check('reduceScatter');
    const i = this.floats('reduceScatter', 'input', input);
    const o = this.floats('reduceScatter', 'output', output);
    if (i.constructor !== o.constructor) throw new OptimTypeError('reduceScatter: input and output must have the same dtype');
    if (i.length !== o.length * this.worldSize) {
      throw new OptimRangeError(`reduceScatter: input must hold worldSize × output.length = ${o.length * this.worldSize} elements, got ${i.length}`);
    }
    return this.run('reduceScatter', () => native.pgReduceScatter(this.handle, i, o, this.op('reduceScatter', options.op ?? 'sum')));
  }

  /** Resolves once every rank has called barrier(). */
  barrier(): Promise<void> {
    const native = this.check('barrier');
    return this.run('barrier', () => native.pgBarrier(this.handle));
  }

  /**
   * Leaves the group once every call already made has settled: stops its thread, closes its
   * connections (rank 0 waits, up to timeoutMs, for the other ranks to leave before closing the
   * store). Any later call throws a DistributedError.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const native = addon();
    const keepAlive = setTimeout(() => {}, this.timeoutMs + 1000);
    try {
      await native.pgDestroy(this.handle).catch(() => {});
      this.live?.close();
      if (this.server) {
        if (!this.failure) await this.server.drained(0, this.timeoutMs);
        this.server.close();
      }
    } finally {
      clearTimeout(keepAlive);
    }
  }
}

export { DistributedOptimizer, broadcastParameters, broadcastOptimizerState } from './optimizer.js';
export type { DistributedOptimizerOptions, WrappableOptimizer } from './optimizer.js';
export { DistributedError } from '../errors.js';
export { ZeroRedundancyOptimizer } from './zero.js';
export type { ZeroRedundancyOptimizerOptions } from './zero.js';
