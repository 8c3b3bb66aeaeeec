import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The CLI the tests spawn runs dist/: compiled from the sources before any test starts.
    globalSetup: ["test/global-setup.ts"],
    // Every file starts its own nats-server; two at a time suits a 2-core machine.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
