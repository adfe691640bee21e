/**
 * Between tests, one turn of the event loop. vitest chains a file's tests through promises
 * alone, so a file of long synchronous tests (the kernel properties under the sanitizers: over 60
 * s) never lets the worker's event loop read the main process's replies; its RPC timer then
 * fires first ("Timeout calling onTaskUpdate") though the reply had arrived.
 */
import { afterEach } from 'vitest';

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
