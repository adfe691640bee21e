#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UBSan (build-asan/) and runs the native fuzzer and
# the boundary, kernel, non-finite, worker-thread and linear-algebra tests against it. Any sanitizer report fails the run.
# See docs/sanitizers.md (also for the LeakSanitizer run, which this script does not do).
#
#   scripts/sanitize.sh              build, then run everything
#   scripts/sanitize.sh --no-build   reuse build-asan/
#
# OPTIM_SANITIZE_FUZZ_CALLS: calls per export for the fuzzer (default 20000).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--no-build" ]; then
  npx cmake-js rebuild --out build-asan --CDCMAKE_BUILD_TYPE=Debug --CDOPTIM_SANITIZE=ON
fi
addon=$(ls build-asan/*/optim.node 2>/dev/null | head -n 1)
if [ -z "$addon" ]; then
  echo "sanitize: no build-asan/*/optim.node; run without --no-build" >&2
  exit 1
fi
# grep reads all of ldd's output: with -q it would stop at the first match, and under pipefail
# ldd's SIGPIPE would fail the check though the library is there (seen once in CI).
if ! ldd "$addon" | grep libasan >/dev/null; then
  echo "sanitize: $addon is not built with AddressSanitizer" >&2
  exit 1
fi

# Node is not instrumented, so the ASan runtime must be loaded before anything else in the process
# (LD_PRELOAD); it reaches every child (vitest workers, the tests' own child processes) through the
# environment. Leak detection is off here: node and V8 keep memory until exit by design.
LD_PRELOAD="$(g++ -print-file-name=libasan.so)"
export LD_PRELOAD
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export OPTIM_ADDON_PATH="$addon"

log=$(mktemp)
trap 'rm -f "$log" "$log.json"' EXIT
# Runs a command with its stderr kept in $log (and shown). A report from a process whose exit
# status nobody checks (a worker that already answered) must fail the run too, so the log is
# searched as well as the exit status checked.
run_checked() {
  local what=$1 status=0
  shift
  "$@" 2>"$log" || status=$?
  cat "$log" >&2
  if grep -qE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$log"; then
    echo "sanitize: a sanitizer report from $what (above)" >&2
    exit 1
  fi
  if [ "$status" -ne 0 ]; then
    echo "sanitize: $what failed (exit $status)" >&2
    exit 1
  fi
}

start=$SECONDS
echo "sanitize: fuzzing every export ($addon)"
run_checked "the fuzzer" sh -c 'exec node --expose-gc test/fixtures/fuzz-native.js --calls "$1" >"$2"' \
  sh "${OPTIM_SANITIZE_FUZZ_CALLS:-20000}" "$log.json"
node -e "
  const r = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
  if (r.bad.length) { console.error('sanitize: fuzzer findings (seed ' + r.seed + ')', JSON.stringify(r.bad, null, 1)); process.exit(1); }
  const calls = Object.values(r.calls);
  console.log('sanitize: fuzzer seed ' + r.seed + ', ' + calls.length + ' exports, ' +
    calls.reduce((a, b) => a + b, 0) + ' calls, ' + (r.ms / 1000).toFixed(1) + ' s');" "$log.json"

echo "sanitize: tests against $addon"
# Less the event-loop timing tests of linalg-async: they measure how the loop shares two cores
# with OpenBLAS, which an instrumented build (and its allocator) shifts; they are not about memory.
run_checked "the tests" npx vitest run test/native-boundary.test.ts test/kernels-property.test.ts \
  test/nonfinite.test.ts test/workers.test.ts test/linalg-errors.test.ts test/linalg-async.test.ts \
  -t '^(?!.*event loop during)'
echo "sanitize: clean ($((SECONDS - start)) s after the build)"
