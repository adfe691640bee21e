/**
 * The native boundary never crashes: test/fixtures/fuzz-native.js makes at least 100 000 calls to
 * every export of the addon (found at run time, so a new export is fuzzed without a change here)
 * with random argument lists — wrong types and counts, detached, shared, resizable and offset
 * buffers, length mismatches and huge dimensions, NaN and infinite scalars, getters that detach
 * or re-enter mid-call, buffers transferred away while an async call runs — in child processes.
 *
 * Passes when each child exits 0 with no signal, every export got its calls, and everything
 * thrown or rejected was a TypeError or RangeError, an error our own getters threw (passed
 * through), or a plain Error with an ERR_OPTIM_* code for a failure of the data (not positive
 * definite, no convergence, out of memory). OPTIM_FUZZ_SEED replays a seed; the seed is printed.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNative } from '../src/backend/native.js';
import { WIDEST_CASE } from './helpers/kernels.js';

const native = loadNative();
if (process.env.CI === 'true' && !native.addon) {
  throw new Error(`CI requires the native addon, which did not load: ${native.error}`);
}

const FIXTURE = path.join(__dirname, 'fixtures', 'fuzz-native.js');
const CALLS = Number(process.env.OPTIM_FUZZ_CALLS ?? 100_000);
/** Two children at once: one per core; async work adds libuv pool threads to each. */
const SHARDS = 2;

interface Stat {
  calls: number;
  returned: number;
  thrown: Record<string, number>;
  rejected: Record<string, number>;
}
interface Report {
  seed: number;
  ms: number;
  calls: Record<string, number>;
  stats: Record<string, Stat>;
  bad: unknown[];
}
interface Child {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runShard(seed: number, shard: number): Promise<Child> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath,
      ['--expose-gc', FIXTURE, '--seed', String(seed), '--calls', String(CALLS), '--shard', `${shard}/${SHARDS}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 170_000,
        // glibc raises its mmap threshold after freeing a large block, and freed memory then stays
        // mapped; a fixed threshold returns every large buffer to the OS, so a write into one
        // freed under an async call faults instead of corrupting the heap quietly.
        env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '65536' },
      });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const ACCEPTED = new Set([
  'TypeError', 'RangeError', 'propagated',
  'ERR_OPTIM_NOT_POSITIVE_DEFINITE', 'ERR_OPTIM_NO_CONVERGENCE', 'ERR_OPTIM_OUT_OF_MEMORY',
  'ERR_OPTIM_ASYNC', 'ERR_OPTIM_CANCELLED', 'ERR_OPTIM_NONFINITE',
]);

describe.runIf(native.addon !== undefined)('native fuzz', () => {
  it(`every export survives ${CALLS} random calls`, async () => {
    const seed = Number(process.env.OPTIM_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
    console.log(`native fuzz: seed ${seed} (replay: OPTIM_FUZZ_SEED=${seed})`);
    const t0 = performance.now();
    const children = await Promise.all(Array.from({ length: SHARDS }, (_, i) => runShard(seed, i)));
    const wall = performance.now() - t0;

    const reports: Report[] = [];
    children.forEach((c, i) => {
      const where = `shard ${i}/${SHARDS}, seed ${seed}`;
      expect(c.signal, `${where} died: ${c.stderr.slice(-4000)}`).toBeNull();
      expect(c.code, `${where} exit code: ${c.stderr.slice(-4000)}`).toBe(0);
      reports.push(JSON.parse(c.stdout.trim().split('\n').pop()!) as Report);
    });

    const calls: Record<string, number> = {};
    const outcomes: Record<string, Record<string, number>> = {};
    for (const r of reports) {
      for (const [name, s] of Object.entries(r.stats)) {
        calls[name] = (calls[name] ?? 0) + s.calls;
        const o = (outcomes[name] ??= {});
        o.returned = (o.returned ?? 0) + s.returned;
        for (const [k, n] of Object.entries(s.thrown)) o[`throw ${k}`] = (o[`throw ${k}`] ?? 0) + n;
        for (const [k, n] of Object.entries(s.rejected)) o[`reject ${k}`] = (o[`reject ${k}`] ?? 0) + n;
      }
    }
    console.log(`native fuzz: ${(wall / 1000).toFixed(1)} s wall; children ${reports.map((r) => `${(r.ms / 1000).toFixed(1)} s`).join(', ')}`);
    console.log(`native fuzz: calls and outcomes per export ${JSON.stringify(outcomes, null, 1)}`);

    expect(reports.flatMap((r) => r.bad), `seed ${seed}`).toEqual([]);
    for (const name of Object.keys(native.addon!)) {
      expect(calls[name] ?? 0, `calls to ${name}`).toBeGreaterThanOrEqual(CALLS);
    }
    for (const [name, o] of Object.entries(outcomes)) {
      for (const key of Object.keys(o)) {
        if (key === 'returned') continue;
        expect(ACCEPTED.has(key.replace(/^(throw|reject) /, '')), `${name}: ${key}`).toBe(true);
      }
    }
  }, 180_000);
});

/** A valid kernel call's layout for the crashers below, and a sparse list of length 2³²−1. */
const { kernel: K, flags: F, stride: S } = WIDEST_CASE;
const SPARSE = 'const l = []; l.length = 2 ** 32 - 1; l[0] = new Float32Array(1);';

/**
 * Inputs that once crashed the addon, each in a child of its own, with the file that was fixed.
 */
const FORMER_CRASHERS: Array<{ name: string; where: string; code: string }> = [
  {
    // unpack() sized its scratch to the list's length before reading any element: a sparse list
    // of length 2³²−1 asked for 34 GB (std::bad_alloc, abort), smaller ones stalled for seconds.
    name: 'a sparse list with a huge length',
    where: 'native/bindings/addon.cc',
    code: `${SPARSE} addon.${K.exportName}(l, new Float64Array(${K.nScalars}), ${F});`,
  },
  {
    name: 'a sparse list with a huge length, prepared',
    where: 'native/bindings/addon.cc',
    code: `${SPARSE} addon.prepare(l, ${S});`,
  },
];

describe.runIf(native.addon !== undefined)('native fuzz: former crashers', () => {
  it.each(FORMER_CRASHERS)('$name ($where) is refused, not a crash', ({ code }) => {
    const root = path.resolve(__dirname, '..');
    const explicit = process.env.OPTIM_ADDON_PATH;
    const body = `const addon = ${explicit
      ? `require(${JSON.stringify(path.resolve(explicit))})`
      : `require(require.resolve('node-gyp-build', { paths: [${JSON.stringify(root)}] }))(${JSON.stringify(root)})`};\n`;
    const r = spawnSync(process.execPath,
      ['-e', `${body}try { ${code} } catch (e) { if (!(e instanceof TypeError || e instanceof RangeError)) throw e; }`],
      { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
  });
});
