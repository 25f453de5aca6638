import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // End-to-end tests load the real model (about 0.2 s) and build real indexes; give them room on a
    // shared 2-core machine.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Each file loads its own ONNX session; two at a time keeps the 2 cores busy without thrashing.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
