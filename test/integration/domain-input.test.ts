import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestFleet } from "../helpers/fleet.js";

// Bad input to the domain entry points (CLI flags, API bodies, roles), refused before anything
// reaches an agent or a DC; the store keeps no domain. No lab needed: nothing here may get far.
describe("domain commands refuse bad input", () => {
  const fleet = new TestFleet();
  let reader = "";
  const sealed = { ephemeralPublicKey: "A".repeat(43), nonce: "B".repeat(16), ciphertext: "C".repeat(40) };
  const body = (over: Record<string, unknown> = {}) => ({
    via: "web1",
    settings: { realm: "LAB.LIFELINE.TEST", bindUser: "lifeline-svc", servers: [] },
    opId: "opopopopopop1234",
    expiresAt: Date.now() + 60_000,
    sealed,
    ...over,
  });

  beforeAll(async () => {
    await fleet.start();
    await fleet.startAgent("web1");
    reader = (await fleet.cli(["token", "create", "--role", "reader", "--name", "ro"])).stdout.trim();
  });
  afterAll(() => fleet.stop());

  it("the CLI refuses a bad realm, DC, CA file and bind user with one line each", async () => {
    const add = (args: string[]) => fleet.cli(["domain", "add", ...args, "--password-stdin"], { input: "pw\n" });
    const cases: [string[], RegExp][] = [
      [["LAB", "--via", "web1", "--bind-user", "svc"], /Invalid realm "LAB"/],
      [["LAB.TEST)(cn=*", "--via", "web1", "--bind-user", "svc"], /Invalid realm/],
      [["LAB.TEST", "--via", "web1", "--bind-user", "svc", "--dc", "dc.lab.test;rm -rf /"], /Invalid --dc/],
      [["LAB.TEST", "--via", "web1", "--bind-user", "-svc"], /Invalid user name/],
      [["LAB.TEST", "--via", "web1", "--bind-user", "svc", "--ca-file", "/nonexistent/ca.pem"], /Cannot read --ca-file .*ENOENT/],
    ];
    const notPem = join(fleet.dataDir, "..", "not-a-cert.txt");
    writeFileSync(notPem, "hello\n");
    cases.push([["LAB.TEST", "--via", "web1", "--bind-user", "svc", "--ca-file", notPem], /is not a PEM certificate/]);
    for (const [args, message] of cases) {
      const r = await add(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    expect((await fleet.cli(["accounts", "diagnose", "web1", "alice", "--domain", "not a realm"])).stderr).toMatch(/Invalid realm/);
    expect((await fleet.cli(["accounts", "diagnose", "web1", "alice", "--domain"])).stderr).toMatch(/No domain is configured/);
    expect(await fleet.json(["domain", "list"])).toEqual([]);
  });

  it("the API refuses bad bodies, unknown machines, long-lived seals and readers; nothing is stored", async () => {
    const post = (b: unknown, token?: string) => fleet.api("POST", "/v1/domains", b, token);
    expect((await post(body({ settings: { realm: "LAB", bindUser: "svc", servers: [] } }))).json.code).toBe("VALIDATION_FAILED");
    expect((await post(body({ settings: { realm: "LAB.TEST", bindUser: "alice)(cn=*", servers: [] } }))).json.code).toBe("VALIDATION_FAILED");
    expect((await post(body({ settings: { realm: "LAB.TEST", bindUser: "svc", servers: [], caPem: "not a certificate" } }))).json.code).toBe("VALIDATION_FAILED");
    expect((await post(body({ sealed: { ...sealed, nonce: "short" } }))).json.code).toBe("VALIDATION_FAILED");
    expect((await post(body({ via: "nosuchmachine" }))).json.code).toBe("MACHINE_NOT_FOUND");
    expect((await post(body({ expiresAt: Date.now() + 3600_000 }))).json.code).toBe("SECRET_BINDING_INVALID");
    const asReader = await post(body(), reader);
    expect(asReader.status).toBe(403);
    expect((await fleet.api("GET", "/v1/domains/LAB.TEST")).json.code).toBe("DOMAIN_NOT_FOUND");
    expect((await fleet.api("GET", "/v1/domains/LAB.TEST/accounts/alice)(cn=*")).json.code).toBe("VALIDATION_FAILED");
    expect((await fleet.api("GET", "/v1/domains")).json).toEqual({ domains: [] });
  });

  it("an agent refuses a credential sealed for another op: the op fails, nothing is kept", async () => {
    // A well-formed request whose sealed box was not made for this op: the agent cannot open it.
    const r = await fleet.api("POST", "/v1/domains", body());
    expect(r.json.code).toBe("SECRET_BINDING_INVALID");
    expect((await fleet.api("GET", "/v1/domains")).json).toEqual({ domains: [] });
  });
});
