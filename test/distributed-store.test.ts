/**
 * Issue 11, item 6: the rendezvous store of optim/distributed (src/distributed/store.ts), which
 * rank 0 hosts. Pure TypeScript, so it runs with or without Gloo in the addon. Its operations
 * (set/get/wait/add) and its handshake (token, rank range, duplicate rank, world size), and a
 * fuzz of its wire format: random bytes and malformed frames are refused with an 'E' reply and a
 * closed connection, and the server carries on serving the well-formed clients.
 */
import * as net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameReader, MAX_FRAME, StoreServer, encodeFrame } from '../src/distributed/store.js';

let server: StoreServer;
let port = 0;
const lost: number[] = [];

beforeAll(async () => {
  server = await StoreServer.listen({ host: '127.0.0.1', port: 0, worldSize: 4, token: 'tok', onLost: (r) => lost.push(r) });
  port = server.address.port;
});
afterAll(() => server.close());

/** A connection that sends frames and reads replies as [status, payload]. */
class Client {
  private reader = new FrameReader();
  private replies: Array<[string, Buffer]> = [];
  private waiting: Array<() => void> = [];
  closed = false;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      for (const f of this.reader.push(c) ?? []) this.replies.push([String.fromCharCode(f[0]!), Buffer.from(f.subarray(1))]);
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }
  static connect(): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }
  private wake(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
  }
  send(op: string, fields: string[]): void {
    this.socket.write(encodeFrame(op, fields));
  }
  /** The next reply, or undefined when the connection closed first (or after ms). */
  async next(ms = 2000): Promise<[string, string] | undefined> {
    const end = Date.now() + ms;
    while (this.replies.length === 0 && !this.closed && Date.now() < end) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, end - Date.now()));
        this.waiting.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    const r = this.replies.shift();
    return r ? [r[0], r[1].toString('utf8')] : undefined;
  }
  async closedWithin(ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (!this.closed && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    return this.closed;
  }
  end(): void {
    this.socket.destroy();
  }
}

async function joined(rank: number, live = false): Promise<Client> {
  const c = await Client.connect();
  c.send('H', live ? ['tok', String(rank), '4', 'live'] : ['tok', String(rank), '4']);
  expect(await c.next()).toEqual(['K', '']);
  return c;
}

describe('the rendezvous store', () => {
  it('set, get (waits for the key), wait (for several), add', async () => {
    const a = await joined(0);
    const b = await joined(1);
    b.send('G', ['k1']);
    a.send('S', ['k1', 'v1']);
    expect(await a.next()).toEqual(['K', '']);
    expect(await b.next()).toEqual(['K', 'v1']);
    b.send('W', ['k2', 'k3']);
    a.send('S', ['k2', 'x']);
    await a.next();
    expect(await b.next(100)).toBeUndefined();
    a.send('S', ['k3', 'y']);
    await a.next();
    expect(await b.next()).toEqual(['K', '']);
    a.send('A', ['n', '5']);
    expect(await a.next()).toEqual(['K', '5']);
    b.send('A', ['n', '-7']);
    expect(await b.next()).toEqual(['K', '-2']);
    a.end();
    b.end();
  });

  it('refuses a wrong token, a rank out of range, a rank already joined, another world size, an op before the handshake', async () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['H', ['nope', '2', '4'], /wrong job token/],
      ['H', ['tok', '4', '4'], /rank 4 is out of range for world size 4/],
      ['H', ['tok', '-1', '4'], /out of range/],
      ['H', ['tok', '1.5', '4'], /out of range/],
      ['H', ['tok', '2', '3'], /world size 3 does not match rank 0's world size 4/],
      ['S', ['k', 'v'], /'S' before the handshake/],
    ];
    for (const [op, fields, why] of cases) {
      const c = await Client.connect();
      c.send(op, fields);
      const r = await c.next();
      expect(r?.[0], fields.join(',')).toBe('E');
      expect(r?.[1]).toMatch(why);
      expect(await c.closedWithin(2000)).toBe(true);
    }
    const first = await joined(3);
    const again = await Client.connect();
    again.send('H', ['tok', '3', '4']);
    expect((await again.next())?.[1]).toMatch(/rank 3 has already joined/);
    first.end();
  });

  it('tells the other ranks when a rank\'s liveness connection drops without saying goodbye', async () => {
    const watcher = await joined(2, true);
    const leaving = await joined(1, true);
    leaving.send('B', []);
    expect(await leaving.next()).toEqual(['K', '']);
    leaving.end();
    const dying = await joined(3, true);
    dying.socket.destroy();
    expect(await watcher.next()).toEqual(['L', '3']);
    expect(lost).toEqual([3]);
    watcher.end();
  });

  it('fuzz: random bytes and malformed frames are refused, and the server keeps serving', async () => {
    const malformed: Buffer[] = [
      Buffer.from([0, 0, 0, 0]), // a zero length
      (() => { const b = Buffer.alloc(4); b.writeUInt32BE(MAX_FRAME + 1); return b; })(), // past the cap
      Buffer.from([0, 0, 0, 2, 0x48, 0]), // too short for a field count
      Buffer.from([0, 0, 0, 9, 0x48, 0, 0, 0, 1, 0, 0, 0, 9]), // a field past the frame
      Buffer.from([0, 0, 0, 5, 0x48, 0xff, 0xff, 0xff, 0xff]), // too many fields
      encodeFrame('Z', []), // an unknown op (before the handshake)
      Buffer.concat([encodeFrame('H', ['tok', '0', '4']), encodeFrame('H', ['tok', '0', '4'])]), // two handshakes
      Buffer.concat([encodeFrame('H', ['tok', '1', '4']), encodeFrame('G', [])]), // get without a key
      Buffer.concat([encodeFrame('H', ['tok', '2', '4']), encodeFrame('A', ['n', 'x1'])]), // add of a non-number
      Buffer.concat([encodeFrame('H', ['tok', '3', '4']), encodeFrame('Q', ['k'])]), // an unknown op after it
    ];
    const probe = async (bytes: Buffer): Promise<void> => {
      const c = await Client.connect();
      c.socket.write(bytes);
      // Either nothing yet (an incomplete frame: the server waits for the rest) or replies, the
      // last of which, for a refused input, is an 'E' followed by the connection closing.
      let r: [string, string] | undefined;
      const seen: string[] = [];
      while ((r = await c.next(50)) !== undefined) seen.push(r[0]);
      for (const s of seen) expect(['K', 'E']).toContain(s);
      if (seen.includes('E')) expect(await c.closedWithin(2000)).toBe(true);
      c.end();
    };
    for (const m of malformed) {
      const c = await Client.connect();
      c.socket.write(m);
      let r: [string, string] | undefined;
      let last: [string, string] | undefined;
      while ((r = await c.next(500)) !== undefined) last = r;
      expect(last?.[0], m.toString('hex')).toBe('E');
      expect(await c.closedWithin(2000)).toBe(true);
    }
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), async (bytes) => {
      await probe(Buffer.from(bytes));
    }), { numRuns: 100 });
    await fc.assert(fc.asyncProperty(
      fc.constantFrom('H', 'S', 'G', 'W', 'A', 'B', 'X'),
      fc.array(fc.string({ maxLength: 8 }), { maxLength: 5 }),
      async (op, fields) => {
        await probe(encodeFrame(op, fields));
      },
    ), { numRuns: 100 });
    // Still serving: a well-formed client sets and gets (rank 0's store slot was taken above, so
    // use the liveness role of rank 0).
    const ok = await joined(0, true);
    ok.send('S', ['after-fuzz', 'yes']);
    expect(await ok.next()).toEqual(['K', '']);
    ok.send('G', ['after-fuzz']);
    expect(await ok.next()).toEqual(['K', 'yes']);
    ok.end();
  }, 60_000);
});
