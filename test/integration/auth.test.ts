import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestFleet } from "../helpers/fleet.js";

describe("API tokens and roles", () => {
  const fleet = new TestFleet();
  let reader = "";
  let operator = "";
  beforeAll(async () => {
    await fleet.start();
    await fleet.startAgent("web1");
    reader = (await fleet.cli(["token", "create", "--role", "reader", "--name", "ro"])).stdout.trim();
    operator = (await fleet.cli(["token", "create", "--role", "operator", "--name", "ops"])).stdout.trim();
  });
  afterAll(() => fleet.stop());

  it("refuses a call without a token, with a wrong one, and says so", async () => {
    const none = await fleet.api("GET", "/v1/machines", undefined, "");
    expect(none.status).toBe(401);
    expect(none.json.code).toBe("UNAUTHENTICATED");
    const wrong = await fleet.cli(["machines", "list"], { token: "llt_not-a-real-token" });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/^lifeline: .*unknown, revoked or expired \(UNAUTHENTICATED\)\n$/);
  });

  it("lets a reader read but not run commands or create tokens", async () => {
    expect((await fleet.cli(["machines", "list"], { token: reader })).code).toBe(0);
    const run = await fleet.cli(["run", "web1", "--", "true"], { token: reader });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain("FORBIDDEN");
    expect((await fleet.cli(["token", "create", "--role", "admin"], { token: reader })).code).toBe(3);
  });

  it("lets an operator run commands but not create tokens or read the audit log", async () => {
    expect((await fleet.cli(["run", "web1", "--", "true"], { token: operator })).code).toBe(0);
    const create = await fleet.cli(["token", "create", "--enroll"], { token: operator });
    expect(create.code).toBe(3);
    expect(create.stderr).toContain('Role "operator" cannot create tokens');
    expect((await fleet.cli(["audit", "list"], { token: operator })).code).toBe(3);
  });

  it("revokes a token: it stops working at once", async () => {
    const tokens = await fleet.json<{ id: string; name: string }[]>(["token", "list"]);
    const ro = tokens.find((t) => t.name === "ro")!;
    expect((await fleet.cli(["token", "revoke", ro.id])).code).toBe(0);
    const after = await fleet.cli(["machines", "list"], { token: reader });
    expect(after.code).toBe(3);
    const list = await fleet.cli(["token", "list"]);
    expect(list.stdout).toMatch(new RegExp(`${ro.id}\\s+api\\s+ro\\s+reader\\s+revoked`));
    expect(list.stdout).not.toContain(reader);
  });

  it("writes who did what to the audit log, without secrets", async () => {
    const entries = await fleet.json<{ actor: string; action: string; result: string; detail: string | null }[]>(["audit", "list"]);
    const actions = entries.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["token.create", "token.revoke", "machine.enroll", "run.create"]));
    expect(entries.find((e) => e.action === "run.create")!.actor).toMatch(/^token:/);
    expect(JSON.stringify(entries)).not.toContain(operator);
    expect(JSON.stringify(entries)).not.toContain(reader);
  });

  it("rejects unknown routes and malformed bodies with a code", async () => {
    expect((await fleet.api("GET", "/v1/nope")).json.code).toBe("ROUTE_NOT_FOUND");
    const bad = await fleet.api("POST", "/v1/tokens", "{not json");
    expect(bad.status).toBe(400);
    expect(bad.json.code).toBe("VALIDATION_FAILED");
    const wrongRole = await fleet.api("POST", "/v1/tokens", { kind: "api", role: "root", name: "x" });
    expect(wrongRole.json.code).toBe("VALIDATION_FAILED");
    expect(wrongRole.json.message).toContain("role");
  });
});
