import { defineConfig } from "vitest/config";

/** The harness's own unit tests (not part of `npm test`): `npx vitest run --config bench/vitest.config.ts`. */
export default defineConfig({
  test: { root: import.meta.dirname, include: ["src/**/*.test.ts"] },
});
