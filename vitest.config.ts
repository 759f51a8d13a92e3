import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Integration tests start real servers, agents and lab hosts: run files one at a time on
    // a 2-core CI machine so they do not starve each other.
    fileParallelism: false,
  },
});
