/**
 * The rendezvous store of a process group: a small TCP key-value server that rank 0 hosts, with
 * the operations of Gloo's Store interface (set, get, wait, and add), so no outside service is
 * needed. Each rank's native side (native/bindings/distributed.cc, class TcpStore) connects to
 * it for Gloo's full-mesh rendezvous; each rank's JavaScript side keeps a second connection open
 * for the life of the group, so that when a rank disappears every other rank learns which one
 * (the store pushes a "lost" notice), and a collective that fails can name it.
 *
 * Wire format (both directions): u32 big-endian length of the rest, then the rest.
 * Request: u8 op, u32 field count, each field as u32 length + bytes.
 *   'H' [token, rank, worldSize] or [token, rank, worldSize, 'live']: must come first; refused
 *       unless the token matches and the rank is in range, new and agrees on worldSize.
 *   'S' [key, value]   'G' [key] (answers when the key exists)   'W' [key...] (answers when all
 *       exist)   'A' [key, delta] (adds to a decimal integer, answers the new value)   'B' [] (a
 *       liveness connection that is about to close on purpose).
 * Reply: u8 'K' + payload (the value for G and A), or u8 'E' + a message (then the connection
 * closes). Pushed to liveness connections: u8 'L' + the decimal rank that was lost.
 * Anything malformed (a length past the cap, a field past the frame, an unknown op, an op
 * before the handshake) is answered with 'E' and the connection is closed; the server and the
 * other connections carry on.
 */
import * as net from 'node:net';

/** The largest frame accepted (Gloo's rendezvous values are a few hundred bytes per rank). */
export const MAX_FRAME = 16 << 20;
const MAX_FIELDS = 4096;

export function encodeFrame(op: string, fields: Array<string | Buffer>): Buffer {
  const parts = fields.map((f) => (typeof f === 'string' ? Buffer.from(f, 'utf8') : f));
  const len = 1 + 4 + parts.reduce((s, p) => s + 4 + p.length, 0);
  const out = Buffer.alloc(4 + len);
  out.writeUInt32BE(len, 0);
  out.write(op, 4, 'latin1');
  out.writeUInt32BE(parts.length, 5);
  let at = 9;
  for (const p of parts) {
    out.writeUInt32BE(p.length, at);
    p.copy(out, at + 4);
    at += 4 + p.length;
  }
  return out;
}

function reply(status: 'K' | 'E' | 'L', payload: Buffer | string): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const out = Buffer.alloc(5 + p.length);
  out.writeUInt32BE(1 + p.length, 0);
  out.write(status, 4, 'latin1');
  p.copy(out, 5);
  return out;
}

/** Splits a byte stream into frames (u32 length + body); null when a length is out of bounds. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Buffer[] | null {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames: Buffer[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len < 1 || len > MAX_FRAME) return null;
      if (this.buf.length < 4 + len) break;
      frames.push(this.buf.subarray(4, 4 + len));
      this.buf = this.buf.subarray(4 + len);
    }
    return frames;
  }
}

interface Request {
  op: string;
  fields: Buffer[];
}

function parseRequest(body: Buffer): Request | string {
  if (body.length < 5) return 'a request must hold an op and a field count';
  const op = String.fromCharCode(body[0]!);
  const n = body.readUInt32BE(1);
  if (n > MAX_FIELDS) return `too many fields (${n})`;
  const fields: Buffer[] = [];
  let at = 5;
  for (let i = 0; i < n; i++) {
    if (at + 4 > body.length) return `field ${i} runs past the end of the frame`;
    const len = body.readUInt32BE(at);
    if (at + 4 + len > body.length) return `field ${i} runs past the end of the frame`;
    fields.push(body.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (at !== body.length) return 'trailing bytes after the last field';
  return { op, fields };
}

interface Conn {
  socket: net.Socket;
  rank: number;
  live: boolean;
  bye: boolean;
  queue: Request[];
  waiting: boolean;
}

export interface StoreServerOptions {
  host: string;
  port: number;
  worldSize: number;
  token: string;
  /** Called when a rank's liveness connection closes without saying goodbye. */
  onLost?: (rank: number) => void;
}

export class StoreServer {
  private readonly data = new Map<string, Buffer>();
  private readonly conns = new Set<Conn>();
  private readonly storeRanks = new Set<number>();
  private readonly liveRanks = new Map<number, Conn>();
  private readonly lost = new Set<number>();
  private closed = false;

  private constructor(private readonly server: net.Server, private readonly opts: StoreServerOptions) {}

  /** Listens on host:port (the address given, never all interfaces unless asked). */
  static listen(opts: StoreServerOptions): Promise<StoreServer> {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      const store = new StoreServer(server, opts);
      server.on('connection', (s) => store.accept(s));
      server.once('error', reject);
      server.listen({ host: opts.host, port: opts.port, exclusive: true }, () => {
        server.removeListener('error', reject);
        server.on('error', () => {});
        server.unref();
        resolve(store);
      });
    });
  }

  get address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  /** The ranks whose liveness connection is open. */
  liveRankList(): number[] {
    return [...this.liveRanks.keys()].sort((a, b) => a - b);
  }

  /** Resolves once no rank but `except` holds a liveness connection, or after `ms`. */
  async drained(except: number, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end && [...this.liveRanks.keys()].some((r) => r !== except)) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    for (const c of this.conns) c.socket.destroy();
  }

  private accept(socket: net.Socket): void {
    socket.unref();
    socket.setNoDelay(true);
    const conn: Conn = { socket, rank: -1, live: false, bye: false, queue: [], waiting: false };
    this.conns.add(conn);
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      const frames = reader.push(chunk);
      if (frames === null) return this.refuse(conn, 'malformed frame length');
      for (const body of frames) {
        const req = parseRequest(body);
        if (typeof req === 'string') return this.refuse(conn, `malformed request: ${req}`);
        conn.queue.push(req);
      }
      this.pump(conn);
    });
    socket.on('error', () => {});
    socket.on('close', () => this.dropped(conn));
  }

  private refuse(conn: Conn, message: string): void {
    if (conn.socket.destroyed) return;
    conn.socket.end(reply('E', `optim store: ${message}`));
    conn.socket.destroySoon();
    conn.queue = [];
  }

  private dropped(conn: Conn): void {
    this.conns.delete(conn);
    if (conn.live && this.liveRanks.get(conn.rank) === conn) {
      this.liveRanks.delete(conn.rank);
      if (!conn.bye && !this.closed) this.markLost(conn.rank);
    }
  }

  private markLost(rank: number): void {
    if (this.lost.has(rank)) return;
    this.lost.add(rank);
    for (const c of this.liveRanks.values()) {
      if (!c.socket.destroyed) c.socket.write(reply('L', String(rank)));
    }
    this.opts.onLost?.(rank);
  }

  /** Serves `conn`'s requests in order; a get or wait holds the ones behind it. */
  private pump(conn: Conn): void {
    while (!conn.waiting && conn.queue.length > 0 && !conn.socket.destroyed) {
      const req = conn.queue.shift()!;
      const error = this.serve(conn, req);
      if (error !== undefined) return this.refuse(conn, error);
    }
  }

  private serve(conn: Conn, { op, fields }: Request): string | undefined {
    const text = (i: number): string => fields[i]!.toString('utf8');
    if (conn.rank < 0 && op !== 'H') return `'${op}' before the handshake`;
    switch (op) {
      case 'H': {
        if (conn.rank >= 0) return 'a second handshake';
        if (fields.length !== 3 && fields.length !== 4) return 'a handshake holds 3 or 4 fields';
        if (text(0) !== this.opts.token) return 'wrong job token (set OPTIM_DIST_TOKEN, or the token option, the same on every rank)';
        const rank = Number(text(1));
        const size = Number(text(2));
        if (size !== this.opts.worldSize) {
          return `world size ${text(2)} does not match rank 0's world size ${this.opts.worldSize}`;
        }
        if (!Number.isInteger(rank) || rank < 0 || rank >= size) {
          return `rank ${text(1)} is out of range for world size ${this.opts.worldSize} (ranks are 0 to ${this.opts.worldSize - 1})`;
        }
        const live = fields.length === 4;
        if (live && text(3) !== 'live') return 'unknown connection role';
        const taken = live ? this.liveRanks.has(rank) : this.storeRanks.has(rank);
        if (taken) return `rank ${rank} has already joined (two processes were given the same rank)`;
        conn.rank = rank;
        conn.live = live;
        if (live) this.liveRanks.set(rank, conn);
        else this.storeRanks.add(rank);
        conn.socket.write(reply('K', ''));
        return undefined;
      }
      case 'S': {
        if (fields.length !== 2) return "'S' holds a key and a value";
        this.data.set(text(0), Buffer.from(fields[1]!));
        conn.socket.write(reply('K', ''));
        this.wake();
        return undefined;
      }
      case 'A': {
        if (fields.length !== 2) return "'A' holds a key and a delta";
        let delta: bigint;
        let current: bigint;
        try {
          delta = BigInt(text(1));
          current = BigInt(this.data.get(text(0))?.toString('utf8') ?? '0');
        } catch {
          return "'A' needs decimal integers";
        }
        const next = String(current + delta);
        this.data.set(text(0), Buffer.from(next));
        conn.socket.write(reply('K', next));
        this.wake();
        return undefined;
      }
      case 'G':
      case 'W': {
        if (op === 'G' && fields.length !== 1) return "'G' holds one key";
        const keys = fields.map((_, i) => text(i));
        const ready = (): boolean => keys.every((k) => this.data.has(k));
        const answer = (): void => {
          conn.socket.write(reply('K', op === 'G' ? this.data.get(keys[0]!)! : ''));
        };
        if (ready()) {
          answer();
          return undefined;
        }
        conn.waiting = true;
        this.waiters.push({
          conn,
          ready,
          answer: () => {
            answer();
            conn.waiting = false;
            this.pump(conn);
          },
        });
        return undefined;
      }
      case 'B':
        conn.bye = true;
        conn.socket.write(reply('K', ''));
        return undefined;
      default:
        return `unknown op 0x${op.charCodeAt(0).toString(16)}`;
    }
  }

  private waiters: Array<{ conn: Conn; ready: () => boolean; answer: () => void }> = [];

  private wake(): void {
    const still: typeof this.waiters = [];
    const due: Array<() => void> = [];
    for (const w of this.waiters) {
      if (w.conn.socket.destroyed) continue;
      if (w.ready()) due.push(w.answer);
      else still.push(w);
    }
    this.waiters = still;
    for (const f of due) f();
  }
}

/**
 * A rank's liveness connection to the store: registers the rank, then reports the ranks the
 * store says were lost, and rank 0 itself when the store's connection drops unexpectedly.
 */
export class LivenessClient {
  private bye = false;
  private constructor(private readonly socket: net.Socket) {}

  static async connect(
    host: string, port: number, token: string, rank: number, worldSize: number, timeoutMs: number,
    onLost: (rank: number, why: string) => void,
  ): Promise<LivenessClient> {
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host, port });
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        socket.setNoDelay(true);
        const client = new LivenessClient(socket);
        await client.handshake(token, rank, worldSize, deadline, onLost);
        return client;
      } catch (e) {
        if ((e as { refused?: boolean }).refused) throw e;
        lastError = (e as Error).message;
        if (Date.now() >= deadline) {
          throw new Error(`could not reach the store of rank 0 at ${host}:${port} within ${timeoutMs} ms (${lastError})`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  private handshake(
    token: string, rank: number, worldSize: number, deadline: number, onLost: (rank: number, why: string) => void,
  ): Promise<void> {
    const reader = new FrameReader();
    return new Promise((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        this.socket.destroy();
        reject(new Error('the store did not answer the handshake'));
      }, Math.max(1, deadline - Date.now()));
      this.socket.on('data', (chunk: Buffer) => {
        const frames = reader.push(chunk) ?? [];
        for (const f of frames) {
          const status = String.fromCharCode(f[0]!);
          const payload = f.subarray(1).toString('utf8');
          if (!ready) {
            clearTimeout(timer);
            if (status === 'K') {
              ready = true;
              this.socket.unref();
              resolve();
            } else {
              const err = new Error(payload) as Error & { refused: boolean };
              err.refused = true;
              reject(err);
            }
          } else if (status === 'L') {
            onLost(Number(payload), 'its connection to the store closed');
          }
        }
      });
      this.socket.on('error', () => {});
      this.socket.on('close', () => {
        clearTimeout(timer);
        if (!ready) reject(new Error('the store closed the connection during the handshake'));
        else if (!this.bye) onLost(0, 'the store it hosts stopped answering');
      });
      this.socket.write(encodeFrame('H', [token, String(rank), String(worldSize), 'live']));
    });
  }

  /** Says goodbye (this rank leaves on purpose) and closes. */
  close(): void {
    if (this.bye) return;
    this.bye = true;
    if (!this.socket.destroyed) this.socket.end(encodeFrame('B', []));
  }

  /** Stops keeping the process alive (after a failure). */
  unref(): void {
    this.socket.unref();
  }
}
