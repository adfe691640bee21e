#!/usr/bin/env node
// optim-run: starts N ranks of a script on this machine, like torchrun --standalone.
//
//   npx optim-run --nproc N [--master-port P] [--master-addr A] [--restarts K] script.js [args...]
//
// Each rank is `node script.js args...` with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR (default 127.0.0.1), MASTER_PORT (default: a free port) and OPTIM_DIST_TOKEN (a
// fresh random token per job, which the store demands of every rank) set. Output lines are
// prefixed with `[rank]`. SIGINT/SIGTERM are forwarded to every rank. When a rank fails, the
// others are stopped (SIGTERM, then SIGKILL after 5 s) and the launcher exits with the first
// failure's code (128 + signal number for a signal); with --restarts K the whole job is started
// again, up to K times (the script is expected to resume from its last checkpoint).
'use strict';
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const net = require('node:net');
const os = require('node:os');
const readline = require('node:readline');

function usage(msg) {
  if (msg) console.error(`optim-run: ${msg}`);
  console.error('usage: optim-run --nproc N [--master-addr A] [--master-port P] [--restarts K] script.js [args...]');
  process.exit(2);
}

function parse(argv) {
  const o = { nproc: undefined, addr: '127.0.0.1', port: undefined, restarts: 0, script: undefined, args: [] };
  let i = 0;
  const int = (name, v, min) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) usage(`${name} must be an integer >= ${min}, got ${v}`);
    return n;
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (flag === '--nproc' || flag === '--nproc-per-node' || flag === '--nproc_per_node') o.nproc = int('--nproc', value(), 1);
    else if (flag === '--master-addr' || flag === '--master_addr') o.addr = value();
    else if (flag === '--master-port' || flag === '--master_port') o.port = int('--master-port', value(), 1);
    else if (flag === '--restarts' || flag === '--max-restarts' || flag === '--max_restarts') o.restarts = int('--restarts', value(), 0);
    else if (flag === '-h' || flag === '--help') usage();
    else if (flag.startsWith('--')) usage(`unknown option ${flag}`);
    else break;
  }
  o.script = argv[i];
  o.args = argv.slice(i + 1);
  if (o.nproc === undefined) usage('--nproc is required');
  if (!o.script) usage('no script given');
  return o;
}

function freePort(host) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function runJob(o, port, attempt) {
  return new Promise((resolve) => {
    const token = crypto.randomBytes(16).toString('hex');
    const children = [];
    let first; // { rank, code }
    let alive = o.nproc;
    let killTimer;
    const stopAll = (signal) => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
    };
    const onSignal = (sig) => {
      if (!first) first = { rank: -1, code: 128 + (os.constants.signals[sig] || 15), signal: sig };
      stopAll(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    for (let rank = 0; rank < o.nproc; rank++) {
      const child = spawn(process.execPath, [o.script, ...o.args], {
        stdio: ['inherit', 'pipe', 'pipe'],
        env: {
          ...process.env, RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(o.nproc),
          LOCAL_WORLD_SIZE: String(o.nproc), MASTER_ADDR: o.addr, MASTER_PORT: String(port),
          OPTIM_DIST_TOKEN: token, OPTIM_RESTART_COUNT: String(attempt),
        },
      });
      children.push(child);
      for (const [stream, sink] of [[child.stdout, process.stdout], [child.stderr, process.stderr]]) {
        readline.createInterface({ input: stream }).on('line', (line) => sink.write(`[${rank}] ${line}\n`));
      }
      child.on('exit', (code, signal) => {
        alive--;
        const failed = code !== 0;
        if (failed && !first) {
          first = { rank, code: code ?? 128 + (os.constants.signals[signal] || 0), signal };
          console.error(`optim-run: rank ${rank} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; stopping the others`);
          stopAll('SIGTERM');
          killTimer = setTimeout(() => stopAll('SIGKILL'), 5000);
          killTimer.unref();
        }
        if (alive === 0) {
          clearTimeout(killTimer);
          process.removeListener('SIGINT', onSignal);
          process.removeListener('SIGTERM', onSignal);
          resolve(first);
        }
      });
    }
  });
}

async function main() {
  const o = parse(process.argv.slice(2));
  for (let attempt = 0; ; attempt++) {
    const port = o.port ?? await freePort(o.addr);
    const failure = await runJob(o, port, attempt);
    if (!failure) return 0;
    if (failure.rank < 0 || attempt >= o.restarts) return failure.code;
    console.error(`optim-run: restarting every rank (restart ${attempt + 1} of ${o.restarts})`);
  }
}

main().then((code) => {
  process.exitCode = code;
});
