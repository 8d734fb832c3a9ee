import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{frontend,solver,worker,exporter,cli,test}/**/*.test.{ts,tsx}", "bench/src/**/*.test.ts"],
    // Whole-build tests run real runc, overlay mounts and a registry process: give them room,
    // and keep the shared 2-core machine from running too many of them at once.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
    globalSetup: ["test/harness/global-setup.ts"],
  },
});
