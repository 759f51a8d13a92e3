import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestFleet } from "../helpers/fleet.js";

describe("agent enrollment", () => {
  const fleet = new TestFleet();
  beforeAll(() => fleet.start());
  afterAll(() => fleet.stop());

  let attempt = 0;
  // Each attempt gets a fresh state dir: an enrolled state would make the agent ignore --token.
  const enroll = (name: string, token: string) =>
    fleet.cli(["agent", "--server", fleet.url, "--token", token, "--name", name, "--state-dir", fleet.agentStateDir(`attempt-${++attempt}`)], {
      env: { LIFELINE_TOKEN: undefined },
    });

  it("enrolls with a one-time token, keeps its keys 0600 and pins the server key", async () => {
    await fleet.startAgent("web1");
    const stateFile = join(fleet.agentStateDir("web1"), "state.json");
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
    expect(statSync(fleet.agentStateDir("web1")).mode & 0o777).toBe(0o700);
    const state = JSON.parse(readFileSync(stateFile, "utf8"));
    const serverKey = (await fleet.api("POST", "/v1/agent/enroll", {})).json; // schema error, nothing spent
    expect(serverKey.code).toBe("VALIDATION_FAILED");
    expect(state.serverSignPublicKey).toHaveLength(43);
    const machine = await fleet.machine("web1");
    expect(machine).toMatchObject({ name: "web1", status: "Ready", reason: null, agentVersion: "0.1.0", protocolVersion: 1 });
    expect(machine.signPublicKey).not.toBe(state.serverSignPublicKey);
  });

  it("refuses a used token", async () => {
    const token = await fleet.enrollToken();
    await fleet.startAgent("web3", [], token);
    const second = await enroll("web4", token);
    expect(second.code).toBe(3);
    expect(second.stderr).toMatch(/enrollment token was already used .*\(ENROLL_TOKEN_USED\)/);
    const names = (await fleet.json<{ name: string }[]>(["machines", "list"])).map((m) => m.name);
    expect(names).not.toContain("web4");
  });

  it("refuses an unknown token and an expired one", async () => {
    const unknown = await enroll("web5", "lle_made-up");
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain("ENROLL_TOKEN_UNKNOWN");
    const short = (await fleet.cli(["token", "create", "--enroll", "--ttl", "1s"])).stdout.trim();
    await new Promise((r) => setTimeout(r, 1200));
    const expired = await enroll("web5", short);
    expect(expired.code).toBe(3);
    expect(expired.stderr).toContain("ENROLL_TOKEN_EXPIRED");
  });

  it("refuses a revoked token with its own code", async () => {
    const created = await fleet.json<{ token: string; info: { id: string } }>(["token", "create", "--enroll"]);
    expect((await fleet.cli(["token", "revoke", created.info.id])).code).toBe(0);
    const revoked = await enroll("web6", created.token);
    expect(revoked.code).toBe(3);
    expect(revoked.stderr).toContain("was revoked (ENROLL_TOKEN_REVOKED)");
  });

  it("deleting a machine ends its agent's session and keeps it out", async () => {
    await fleet.startAgent("gone");
    const deleted = await fleet.json<{ deleted: string }>(["machines", "delete", "gone"]);
    expect(deleted).toEqual({ deleted: "gone" });
    const metrics = async () => String((await fleet.api("GET", "/metrics")).json);
    const before = (await fleet.json<unknown[]>(["machines", "list"])).length;
    await new Promise((r) => setTimeout(r, 500));
    expect(await metrics()).toMatch(new RegExp(`lifeline_agents_connected ${before}\n`));
    expect((await fleet.cli(["machines", "show", "gone"])).code).toBe(4);
  });

  it("refuses a name that is taken without spending the token", async () => {
    const token = await fleet.enrollToken();
    const taken = await enroll("web1", token);
    expect(taken.code).toBe(5);
    expect(taken.stderr).toContain("MACHINE_NAME_TAKEN");
    const tokens = await fleet.json<{ id: string; usedAt: number | null; kind: string }[]>(["token", "list"]);
    expect(tokens.filter((t) => t.kind === "enroll" && t.usedAt === null).length).toBeGreaterThan(0);
  });

  it("refuses a bad name and a proof made with another key", async () => {
    const token = await fleet.enrollToken();
    const badName = await enroll("Web_1", token);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain("Invalid --name");
    const forged = await fleet.api("POST", "/v1/agent/enroll", {
      token,
      name: "web9",
      signPublicKey: "A".repeat(43),
      sealPublicKey: "A".repeat(43),
      proof: "A".repeat(86),
      protocolVersion: 1,
      agentVersion: "x",
      facts: { os: "linux", arch: "x64", kernel: "k", hostname: "h", addresses: [] },
    }, "");
    expect(forged.json.code).toBe("ENROLL_PROOF_INVALID");
  });
});
