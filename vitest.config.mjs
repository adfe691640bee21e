// vitest's defaults, plus one setup file (test/setup/yield.ts: a turn of the event loop between
// tests, so a long file's RPC replies are read in time).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    setupFiles: ['test/setup/yield.ts'],
  },
});
