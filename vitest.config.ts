import { defineConfig } from 'vitest/config';

// Tests run against TypeScript sources; CLI and worker tests use the built dist/ (npm test builds first).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
