'use strict';
// What the numbers were measured on.
const fs = require('node:fs');
const os = require('node:os');

function cpuModel() {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) return line.split(':')[1].trim();
  } catch {
    // Not Linux: fall through to what Node reports.
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/** Cache sizes of cpu0 by level (Linux sysfs), e.g. { L1d: '48K', L2: '1024K', L3: '32768K' }. */
function caches() {
  const out = {};
  const dir = '/sys/devices/system/cpu/cpu0/cache';
  try {
    for (const idx of fs.readdirSync(dir).filter((d) => d.startsWith('index'))) {
      const read = (f) => fs.readFileSync(`${dir}/${idx}/${f}`, 'utf8').trim();
      const type = read('type');
      out[`L${read('level')}${type === 'Data' ? 'd' : type === 'Instruction' ? 'i' : ''}`] = read('size');
    }
  } catch {
    // No sysfs: leave the caches unreported.
  }
  return out;
}

function environment(backendInfo) {
  return {
    date: new Date().toISOString(),
    cpu: cpuModel(),
    cores: os.cpus().length,
    caches: caches(),
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    loadAverage: os.loadavg().map((x) => +x.toFixed(2)),
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
    v8: process.versions.v8,
    backendInfo,
  };
}

module.exports = { environment };
