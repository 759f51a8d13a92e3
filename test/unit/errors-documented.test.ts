import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../src/protocol/index.js";

describe("error registry", () => {
  const doc = readFileSync(resolve(import.meta.dirname, "../../docs/errors.md"), "utf8");
  it.each(Object.entries(ERROR_CODES))("%s is documented with its HTTP status and exit code", (code, { http, exit }) => {
    const row = doc.split("\n").find((line) => line.startsWith(`| \`${code}\` |`));
    expect(row, `docs/errors.md has no row for ${code}`).toBeDefined();
    expect(row).toContain(`| ${http} |`);
    expect(row).toContain(`| ${exit} |`);
  });
});
