import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE, BOB } from "../../src/lab/index.js";
import { startLabFleet } from "../helpers/lab-fleet.js";
import { sshExec } from "../helpers/lab.js";

// Everything here happens inside lab hosts: real sshd, real PAM, their own /etc/shadow.
describe("accounts: diagnose and fix must-change-password on Linux, online", () => {
  let env: Awaited<ReturnType<typeof startLabFleet>>;
  const host = () => env.lab.host("lab-1").address;
  const shadowOf = async (name = "lab-1") => (await env.lab.exec(name, ["cat", "/etc/shadow"])).stdout;
  const reset = (user: string, password: string, extra: string[] = []) =>
    env.fleet.cli(["reset-password", "lab-1", user, "--password-stdin", ...extra], { input: `${password}\n` });

  beforeAll(async () => {
    env = await startLabFleet({ hosts: 2 });
  }, 180_000);
  afterAll(() => env?.stop());

  it("lists accounts and diagnoses a healthy one", async () => {
    const list = await env.fleet.json<{ name: string; state: string; system: boolean }[]>(["accounts", "list", "lab-1"]);
    expect(list.map((a) => a.name)).toEqual(expect.arrayContaining([ALICE.name, BOB.name]));
    expect(list.every((a) => !a.system)).toBe(true);
    const diag = await env.fleet.cli(["accounts", "diagnose", "lab-1", "alice"]);
    expect(diag.stdout).toBe("alice: ok\n  - password login is possible\n");
  });

  it("reproduces the symptom: after expire, a real SSH login demands a password change", async () => {
    expect((await env.fleet.cli(["accounts", "expire", "lab-1", "alice"])).code).toBe(0);
    const login = await sshExec(host(), ALICE.name, ALICE.password, "id -un");
    expect(login.stdout).not.toContain("alice");
    expect(login.stdout + login.stderr).toMatch(/password has expired|required to change|Password change required/i);
    const diag = await env.fleet.cli(["accounts", "diagnose", "lab-1", "alice"]);
    expect(diag.stdout).toContain("alice: must-change\n  - must change password at next logon (shadow lastchg = 0)");
    const v = await env.fleet.cli(["accounts", "verify", "lab-1", "alice", "--password-stdin"], { input: `${ALICE.password}\n` });
    expect(v.code).toBe(1);
    expect(v.stdout).toContain("must-change");
  });

  it("reset-password: the new password logs in with no change demanded, the old one fails, no reboot", async () => {
    const init = (await env.lab.exec("lab-1", ["cat", "/proc/1/stat"])).stdout.split(" ")[21];
    const r = await reset("alice", "Fresh-Passw0rd-1");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/state\s+ok/);
    expect(r.stdout).toContain("login at 10.231.");
    expect(r.stdout).toContain(": ok (");
    const ok = await sshExec(host(), "alice", "Fresh-Passw0rd-1", "id -un");
    expect(ok).toMatchObject({ connected: true, exitCode: 0, stdout: "alice\n" });
    const old = await sshExec(host(), "alice", ALICE.password, "id -un");
    expect(old.connected).toBe(false);
    expect((await env.lab.exec("lab-1", ["cat", "/proc/1/stat"])).stdout.split(" ")[21]).toBe(init);
  });

  it("clear-flag keeps the password and makes it work again", async () => {
    await env.fleet.cli(["accounts", "expire", "lab-1", "bob"]);
    expect((await sshExec(host(), "bob", BOB.password, "id -un")).stdout).not.toBe("bob\n");
    const cleared = await env.fleet.json<{ state: string }>(["accounts", "clear-flag", "lab-1", "bob"]);
    expect(cleared.state).toBe("ok");
    expect(await sshExec(host(), "bob", BOB.password, "id -un")).toMatchObject({ exitCode: 0, stdout: "bob\n" });
  });

  it("--must-change sets the password and keeps the flag; --generate shows a strong password once", async () => {
    const kept = await reset("alice", "Another-Passw0rd", ["--must-change"]);
    expect(kept.code).toBe(0);
    expect(kept.stdout).toMatch(/state\s+must-change/);
    const gen = await env.fleet.json<{ password: string; verification: { outcome: string } }>(["reset-password", "lab-1", "alice", "--generate"]);
    expect(gen.password).toMatch(/^[A-Za-z2-9._-]{20}$/);
    expect(gen.verification.outcome).toBe("ok");
    expect((await sshExec(host(), "alice", gen.password, "id -un")).stdout).toBe("alice\n");
  });

  it("the password never reaches the database, logs, audit log or any process's argv", async () => {
    const secret = "Sekr3t-" + Math.random().toString(36).slice(2);
    const seen = new Set<string>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
          try {
            seen.add(readFileSync(`/proc/${pid}/cmdline`, "utf8"));
          } catch {
            // gone
          }
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    const r = await reset("alice", secret);
    sampling = false;
    await sampler;
    expect(r.code).toBe(0);
    expect([...seen].some((c) => c.includes("chpasswd") || c.includes("reset-password"))).toBe(true); // the sampler did see the op
    expect([...seen].filter((c) => c.includes(secret))).toEqual([]);
    const dataDir = env.fleet.dataDir;
    for (const file of readdirSync(dataDir)) expect(readFileSync(join(dataDir, file)).includes(Buffer.from(secret)), file).toBe(false);
    expect(env.fleet.server.stdout() + env.fleet.server.stderr()).not.toContain(secret);
    const audit = await env.fleet.cli(["audit", "list"]);
    expect(audit.stdout).toContain("accounts.reset-password");
    expect(audit.stdout).not.toContain(secret);
    const agentFiles = await env.lab.exec("lab-1", ["grep", "-rl", "--", secret, "/var/lib/lifeline-agent", "/var/log"]);
    expect(agentFiles.stdout).toBe("");
  });

  it("refuses bad input and changes nothing", async () => {
    const before = await shadowOf();
    const cases: [string[], string | undefined, number, string][] = [
      [["reset-password", "lab-1", "alice;reboot", "--password-stdin"], "Good-Passw0rd", 2, "Invalid user name"],
      [["reset-password", "lab-1", "$(id)", "--password-stdin"], "Good-Passw0rd", 2, "Invalid user name"],
      [["reset-password", "lab-1", "-rf", "--password-stdin"], "Good-Passw0rd", 2, ""],
      [["accounts", "expire", "lab-1", "alice\nroot"], undefined, 2, "Invalid user name"],
      [["reset-password", "lab-1", "nosuchuser", "--password-stdin"], "Good-Passw0rd", 4, "ACCOUNT_NOT_FOUND"],
      [["reset-password", "lab-1", "root", "--password-stdin"], "Good-Passw0rd", 3, "ACCOUNT_IS_SYSTEM"],
      [["accounts", "expire", "lab-1", "root"], undefined, 3, "ACCOUNT_IS_SYSTEM"],
      [["reset-password", "lab-1", "alice", "--password-stdin"], "short", 2, "PASSWORD_POLICY"],
      [["reset-password", "lab-1", "alice", "--password-stdin"], "", 2, "PASSWORD_POLICY"],
      [["reset-password", "lab-1", "alice", "--password-stdin", "--generate"], "x", 2, "not both"],
      [["accounts", "show", "nosuch-machine", "alice"], undefined, 4, "MACHINE_NOT_FOUND"],
    ];
    for (const [args, input, code, text] of cases) {
      const r = await env.fleet.cli(args, { input: input === undefined ? undefined : `${input}\n` });
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toContain(text);
    }
    // The API refuses what a hand-made request could slip past the CLI.
    const api = await env.fleet.api("POST", "/v1/machines/lab-1/accounts/alice%3Breboot/expire", {});
    expect(api.json.code).toBe("VALIDATION_FAILED");
    expect(await shadowOf()).toBe(before);
  });

  it("a sealed password replayed into another op, or to another machine, is refused", async () => {
    const before = await shadowOf();
    const { sealedReset } = await import("../../src/cli/sealing.js");
    const { ApiClient } = await import("../../src/client/api-client.js");
    const client = new ApiClient(env.fleet.url, env.fleet.adminToken);
    const sealed = await sealedReset(client, "lab-1", "alice", "Replay-Passw0rd");
    const otherOp = await env.fleet.api("POST", "/v1/machines/lab-1/accounts/alice/reset-password", { ...sealed, opId: "anotheropid0001" });
    expect(otherOp.json).toMatchObject({ code: "SECRET_BINDING_INVALID" });
    const otherMachine = await env.fleet.api("POST", "/v1/machines/lab-2/accounts/alice/reset-password", sealed);
    expect(otherMachine.json.code).toBe("SECRET_BINDING_INVALID");
    const again = await env.fleet.api("POST", "/v1/machines/lab-2/accounts/alice/reset-password", sealed);
    expect(again.json.code).toBe("OP_REPLAYED");
    const forAlice = await sealedReset(client, "lab-1", "alice", "Replay-Passw0rd");
    const otherUser = await env.fleet.api("POST", "/v1/machines/lab-1/accounts/bob/reset-password", forAlice);
    expect(otherUser.json.code).toBe("SECRET_BINDING_INVALID");
    expect(await shadowOf()).toBe(before);
  });

  it("verify trusts only the sshd host keys the agent reported, answers for refused accounts, and refuses a replay", async () => {
    const { verifySshLogin } = await import("../../src/server/verify-login.js");
    const machine = await env.fleet.machine("lab-1");
    const keys = (machine.facts as { sshHostKeys: string[] }).sshHostKeys;
    expect(keys.length).toBeGreaterThan(0);
    const good = await verifySshLogin({ host: host(), user: "bob", password: BOB.password, hostKeys: keys });
    expect(good.outcome).toBe("ok");
    const forged = await verifySshLogin({ host: host(), user: "bob", password: BOB.password, hostKeys: [`SHA256:${"A".repeat(43)}`] });
    expect(forged).toMatchObject({ outcome: "unreachable", detail: expect.stringContaining("host key does not match") });
    const unknown = await verifySshLogin({ host: host(), user: "bob", password: BOB.password, hostKeys: [] });
    expect(unknown).toMatchObject({ outcome: "unreachable", detail: expect.stringContaining("reported no host keys") });

    await env.lab.exec("lab-1", ["chage", "-E", "1", "bob"]); // account expired in 1970: PAM refuses it
    const disabled = await env.fleet.cli(["accounts", "verify", "lab-1", "bob", "--password-stdin"], { input: `${BOB.password}\n` });
    expect(disabled.code).toBe(1);
    expect(disabled.stdout).toMatch(/: (denied|must-change) \(/);
    await env.lab.exec("lab-1", ["chage", "-E", "-1", "bob"]);

    const { sealedVerify } = await import("../../src/cli/sealing.js");
    const { ApiClient } = await import("../../src/client/api-client.js");
    const body = await sealedVerify(new ApiClient(env.fleet.url, env.fleet.adminToken), "lab-1", "bob", BOB.password);
    expect((await env.fleet.api("POST", "/v1/machines/lab-1/accounts/bob/verify", body)).json.outcome).toBe("ok");
    expect((await env.fleet.api("POST", "/v1/machines/lab-1/accounts/bob/verify", body)).json.code).toBe("OP_REPLAYED");
    // ...and still after a server restart (the nonce is in the store, not in memory).
    const port = Number(new URL(env.fleet.url).port);
    await env.fleet.server.stop();
    await env.fleet.startServer({ port });
    await env.fleet.waitStatus("lab-1", "Ready", undefined, 30_000);
    expect((await env.fleet.api("POST", "/v1/machines/lab-1/accounts/bob/verify", body)).json.code).toBe("OP_REPLAYED");
  });

  it("says AGENT_NOT_READY with the reason when the machine's agent is down", async () => {
    await env.lab.stop("lab-2");
    await env.fleet.waitStatus("lab-2", "NotReady", "disconnected");
    const r = await env.fleet.cli(["reset-password", "lab-2", "alice", "--password-stdin"], { input: "Good-Passw0rd\n" });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/agent is NotReady \(disconnected \d+s ago\) \(AGENT_NOT_READY\)/);
    await env.lab.start("lab-2");
    await env.fleet.waitStatus("lab-2", "Ready", undefined, 30_000);
  });
});
