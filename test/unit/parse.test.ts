import { describe, expect, it } from "vitest";
import { parseBytes, parseDuration, parseLabels } from "../../src/cli/parse.js";
import { backoffDelay } from "../../src/agent/supervisor.js";

describe("CLI value parsing", () => {
  it("parses durations and refuses nonsense", () => {
    expect(parseDuration("2s", "--t")).toBe(2000);
    expect(parseDuration("500ms", "--t")).toBe(500);
    expect(parseDuration("1.5m", "--t")).toBe(90_000);
    expect(parseDuration("3", "--t")).toBe(3000);
    for (const bad of ["", "s", "-1s", "0", "1y", "1 h 2"]) expect(() => parseDuration(bad, "--t")).toThrow(/Invalid --t/);
  });
  it("parses sizes", () => {
    expect(parseBytes("1MiB", "--c")).toBe(1048576);
    expect(parseBytes("64k", "--c")).toBe(65536);
    expect(parseBytes("10", "--c")).toBe(10);
    for (const bad of ["", "1XB", "-3", "0"]) expect(() => parseBytes(bad, "--c")).toThrow(/Invalid --c/);
  });
  it("parses labels", () => {
    expect(parseLabels(["env=prod", "tier=web"], "--label")).toEqual({ env: "prod", tier: "web" });
    for (const bad of ["env", "=x", "Env=x", "env=a b", "env=$(x)"]) expect(() => parseLabels([bad], "--label")).toThrow(/Invalid --label/);
  });
});

describe("reconnect backoff", () => {
  it("grows exponentially, is capped, and is jittered", () => {
    const b = { minMs: 200, maxMs: 30_000 };
    expect(backoffDelay(0, b, () => 1)).toBe(200);
    expect(backoffDelay(3, b, () => 1)).toBe(1600);
    expect(backoffDelay(20, b, () => 1)).toBe(30_000);
    expect(backoffDelay(20, b, () => 0)).toBe(200);
    expect(backoffDelay(20, b, () => 0.5)).toBe(15_100);
  });
});
