import { afterAll, beforeAll } from 'vitest';
import { loadNative } from '../../src/backend/native.js';
import { referenceBackend } from '../../src/backend/reference.js';
import { getBackend, nativeAvailable, setBackend } from '../../src/backend/select.js';
import { loadWasm } from '../../src/backend/wasm.js';
import type { Backend } from '../../src/backend/types.js';

function available(): Backend[] {
  const list: Backend[] = [referenceBackend];
  const native = loadNative();
  if (nativeAvailable() && native.backend) {
    list.push(native.backend);
  } else if (process.env.CI === 'true') {
    throw new Error(`CI requires the native backend, but it cannot load: ${native.error ?? 'unknown reason'}`);
  }
  // OPTIM_TEST_WASM=1 (CI does) runs every test of this table on the wasm backend too.
  if (process.env.OPTIM_TEST_WASM === '1') {
    const wasm = loadWasm();
    if (!wasm.backend) throw new Error(`OPTIM_TEST_WASM=1, but the wasm backend cannot load: ${wasm.error}`);
    list.push(wasm.backend);
  }
  return list;
}

/** The backends every optimizer test runs on: reference, native when the addon loads, and wasm with OPTIM_TEST_WASM=1. */
export const backends: readonly Backend[] = available();

/** `[name, backend]` rows for `describe.each`. */
export const backendRows: ReadonlyArray<[string, Backend]> = backends.map((b) => [b.name, b]);

/**
 * Selects again, when the enclosing `describe` block ends, the backend selected when it began;
 * `cleanup` runs first (resetting the addon's ISA or BLAS the block changed).
 */
export function restoreBackend(cleanup: () => void = () => undefined): void {
  let previous: Backend['name'] = 'reference';
  beforeAll(() => {
    previous = getBackend().name;
  });
  afterAll(() => {
    cleanup();
    setBackend(previous);
  });
}

/** Runs the optimizers of the enclosing `describe` block on `backend`. */
export function useBackend(backend: Backend): void {
  restoreBackend();
  beforeAll(() => setBackend(backend.name));
}
