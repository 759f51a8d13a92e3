import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Client } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE, BOB, domainTool, type LabDomain } from "../../src/lab/index.js";
import { startLabFleet } from "../helpers/lab-fleet.js";
import { sshExec } from "../helpers/lab.js";
import { waitFor } from "../helpers/processes.js";

const REALM = "LAB.LIFELINE.TEST";
const MUST_CHANGE = /password has expired|required to change|Password change required/i;

type AccountView = { name: string; kind: string; realm?: string; state: string; problems: string[]; evidence: string[] };
type JobView = { id: string; state: string; realm?: string; verifyOutcome: string | null; steps: { name: string; state: string; detail: string | null }[]; error: { code: string } | null };

// The seed's `net user NAME * /domain` case against a real Samba AD DC in the lab, with lab
// hosts joined to the domain (winbind): LDAP binds and SSH logins as LAB\user are real.
describe("domain accounts (Samba AD)", () => {
  let env: Awaited<ReturnType<typeof startLabFleet>>;
  let domain: LabDomain;
  const cli = (args: string[], input?: string) => env.fleet.cli(args, { input });
  const json = async <T>(args: string[], input?: string): Promise<{ code: number; value: T; stderr: string }> => {
    const r = await cli(["--output", "json", ...args], input);
    return { code: r.code, value: (r.stdout ? JSON.parse(r.stdout) : undefined) as T, stderr: r.stderr };
  };

  /** A real LDAP simple bind as the user: "ok" or AD's data code (773, 52e, 775). */
  async function bind(user: string, password: string): Promise<string> {
    const client = new Client({ url: `ldaps://${domain.address}:636`, tlsOptions: { ca: readFileSync(domain.caFile), servername: domain.dcHost } });
    try {
      await client.bind(`${user}@${REALM.toLowerCase()}`, password);
      return "ok";
    } catch (err) {
      return /data ([0-9a-f]{3})/.exec((err as Error).message)?.[1] ?? (err as Error).message;
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }

  /** What an admin sees of the user: the attributes a change would touch. */
  async function attributes(user: string): Promise<Record<string, unknown>> {
    const client = new Client({ url: `ldaps://${domain.address}:636`, tlsOptions: { ca: readFileSync(domain.caFile), servername: domain.dcHost } });
    await client.bind(`${domain.adminUser}@${REALM.toLowerCase()}`, domain.adminPassword);
    try {
      const { searchEntries } = await client.search(domain.baseDn, {
        filter: `(sAMAccountName=${user})`,
        attributes: ["pwdLastSet", "lockoutTime", "userAccountControl", "badPwdCount", "whenChanged", "uSNChanged"],
      });
      const { dn: _dn, ...attrs } = searchEntries[0]!;
      return attrs;
    } finally {
      await client.unbind();
    }
  }

  const addDomain = (bindUser: string, password: string, dc = domain.dcHost) =>
    cli(["domain", "add", REALM, "--via", "lab-1", "--dc", dc, "--ca-file", domain.caFile, "--bind-user", bindUser, "--password-stdin"], `${password}\n`);

  beforeAll(async () => {
    env = await startLabFleet({ hosts: 2, domain: REALM });
    domain = env.domain!;
    // The agents report the join with their next heartbeat.
    await waitFor("lab-2 to report its domain", async () => (await env.fleet.json<{ facts: { domainRealm: string | null } }>(["machines", "show", "lab-2"])).facts.domainRealm === REALM, 30_000, 500);
  }, 300_000);
  afterAll(() => env?.stop());

  it("adds the domain through an agent with a least-privilege bind account; the server never holds the credential", async () => {
    const added = await addDomain(domain.serviceUser, domain.servicePassword);
    expect(added.stderr).toBe("");
    expect(added.code).toBe(0);
    const { value: domains } = await json<{ realm: string; netbios: string; via: string; bindUser: string; baseDn: string }[]>(["domain", "list"]);
    expect(domains).toEqual([expect.objectContaining({ realm: REALM, netbios: "LAB", via: "lab-1", bindUser: "lifeline-svc", baseDn: "DC=lab,DC=lifeline,DC=test" })]);
    const list = await json<AccountView[]>(["accounts", "list", "lab-2", "--domain"]);
    expect(list.value.map((a) => a.name)).toEqual(expect.arrayContaining(["alice", "bob"]));
    expect(list.value.every((a) => a.kind === "domain" && a.realm === REALM)).toBe(true);
    // Built-in accounts (Administrator, krbtgt, Guest) only with --all.
    expect(list.value.map((a) => a.name)).not.toContain("Administrator");
    // Not in the server's data dir in any form; only in the via agent's state.
    for (const file of filesUnder(env.fleet.dataDir)) expect(readFileSync(file).includes(Buffer.from(domain.servicePassword))).toBe(false);
    const kept = await env.lab.exec("lab-1", ["sh", "-c", "cat /var/lib/lifeline-agent/domains/*.json"]);
    expect(kept.stdout).toContain(domain.servicePassword);
    expect((await env.lab.exec("lab-1", ["stat", "-c", "%a", `/var/lib/lifeline-agent/domains/${REALM}.json`])).stdout.trim()).toBe("600");
  });

  it("finds the DC by DNS SRV records when no --dc is given (Samba's answers included)", async () => {
    const r = await cli(["domain", "add", REALM, "--via", "lab-1", "--ca-file", domain.caFile, "--bind-user", domain.serviceUser, "--password-stdin"], `${domain.servicePassword}\n`);
    expect(r.stderr).toBe("");
    const { value: shown } = await json<{ servers: string[]; server: string }>(["domain", "show", REALM]);
    expect(shown).toMatchObject({ servers: [], server: domain.dcHost });
    expect((await cli(["accounts", "diagnose", "lab-2", "LAB\\bob"])).stdout).toContain(`${REALM}\\bob: ok`);
  });

  it("the seed's domain symptom: pwdLastSet = 0 -> LDAP bind data 773, SSH as LAB\\alice refused; fix-logon -> both work", async () => {
    await domainTool(domain, ["user", "setpassword", "alice", `--newpassword=${ALICE.password}`, "--must-change-at-next-login"]);
    expect(await bind("alice", ALICE.password)).toBe("773");
    const symptom = await sshExec(env.lab.host("lab-2").address, "LAB\\alice", ALICE.password, "id -un");
    expect(symptom.exitCode).not.toBe(0);
    expect(symptom.stdout + symptom.stderr).toMatch(MUST_CHANGE);
    const diag = await cli(["accounts", "diagnose", "lab-2", "alice", "--domain"]);
    expect(diag.stdout).toContain(`${REALM}\\alice: must-change`);
    expect(diag.stdout).toContain("pwdLastSet = 0");

    const fixed = await json<JobView>(["fix-logon", "lab-2", "LAB\\alice", "--password-stdin"], "Domain-Fixed-Passw0rd\n");
    expect(fixed.stderr).toBe("");
    expect(fixed.code).toBe(0);
    expect(fixed.value).toMatchObject({ state: "succeeded", realm: REALM, verifyOutcome: "ok", error: null });
    expect(fixed.value.steps.map((s) => [s.name, s.state])).toEqual([
      ["check-agent", "done"],
      ["diagnose", "done"],
      ["snapshot", "done"],
      ["fix", "done"],
      ["verify", "done"],
    ]);
    expect(fixed.value.steps.find((s) => s.name === "verify")!.detail).toContain("10.231");
    expect(await bind("alice", "Domain-Fixed-Passw0rd")).toBe("ok");
    // (The old password may still bind for a while: Samba's "old password allowed period",
    // 60 minutes by default, as AD's own grace for NTLM. The new one works at once.)
    const login = await sshExec(env.lab.host("lab-2").address, "LAB\\alice", "Domain-Fixed-Passw0rd", "id -un");
    expect(login).toMatchObject({ exitCode: 0 });
    expect(login.stdout.trim().toLowerCase()).toBe("lab\\alice");

    // The audit log has the fix, the server's files never the password.
    const { value: audit } = await json<{ action: string; target: string; result: string }[]>(["audit", "list"]);
    expect(audit).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ action: "accounts.reset-password", target: `lab-2/${REALM}\\alice`, result: "ok" }),
        expect.objectContaining({ action: "fix-logon.end", target: `lab-2/${REALM}\\alice`, result: "succeeded" }),
      ]),
    );
    for (const file of filesUnder(env.fleet.dataDir)) expect(readFileSync(file).includes(Buffer.from("Domain-Fixed-Passw0rd"))).toBe(false);
  });

  it("clear-flag --domain: pwdLastSet = -1 and the old password binds again", async () => {
    await domainTool(domain, ["user", "setpassword", "bob", `--newpassword=${BOB.password}`, "--must-change-at-next-login"]);
    expect(await bind("bob", BOB.password)).toBe("773");
    const r = await json<AccountView>(["accounts", "clear-flag", "lab-2", "bob", "--domain", REALM]);
    expect(r.code).toBe(0);
    expect(r.value).toMatchObject({ name: "bob", kind: "domain", state: "ok" });
    expect(await bind("bob", BOB.password)).toBe("ok");
    const verify = await cli(["accounts", "verify", "lab-2", "bob@lab.lifeline.test", "--password-stdin"], `${BOB.password}\n`);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain("SSH login as LAB\\bob works");
  });

  it("reset-password --domain: like net user bob * /domain", async () => {
    const r = await json<{ account: AccountView; verification: { outcome: string } }>(["reset-password", "lab-2", "LAB\\bob", "--password-stdin"], "Bob-Reset-Passw0rd\n");
    expect(r.stderr).toBe("");
    expect(r.value.account.state).toBe("ok");
    expect(r.value.verification.outcome).toBe("ok");
    expect(await bind("bob", "Bob-Reset-Passw0rd")).toBe("ok");
  });

  it("a locked-out account: bind data 775, diagnosed locked, unlock -> the password binds again", async () => {
    await domainTool(domain, ["domain", "passwordsettings", "set", "--account-lockout-threshold=3", "--account-lockout-duration=30", "--reset-account-lockout-after=30"]);
    try {
      for (let i = 0; i < 3; i++) expect(await bind("bob", "wrong-password")).toBe("52e");
      expect(await bind("bob", "Bob-Reset-Passw0rd")).toBe("775");
      const verify = await json<{ outcome: string; detail: string }>(["accounts", "verify", "lab-2", "LAB\\bob", "--password-stdin"], "Bob-Reset-Passw0rd\n");
      expect(verify.value).toMatchObject({ outcome: "denied" });
      expect(verify.value.detail).toContain("locked out (data 775)");
      const diag = await json<AccountView>(["accounts", "diagnose", "lab-2", "bob", "--domain"]);
      expect(diag.value).toMatchObject({ state: "locked" });
      const unlocked = await json<AccountView>(["accounts", "unlock", "lab-2", "bob", "--domain"]);
      expect(unlocked.code).toBe(0);
      expect(unlocked.value).toMatchObject({ state: "ok", problems: ["ok"] });
      expect(await bind("bob", "Bob-Reset-Passw0rd")).toBe("ok");
    } finally {
      await domainTool(domain, ["domain", "passwordsettings", "set", "--account-lockout-threshold=0"]);
    }
  });

  it("refuses bad input and changes nothing", async () => {
    const before = await attributes("alice");
    // A DN / filter injection attempt in the user name never reaches the agent.
    const injected = await cli(["accounts", "clear-flag", "lab-2", "alice)(cn=*", "--domain"]);
    expect(injected.code).toBe(2);
    expect(injected.stderr).toMatch(/Invalid user name/);
    const raw = await fetch(`${env.fleet.url}/v1/domains/${REALM}/accounts/${encodeURIComponent("alice)(cn=*")}/clear-flag`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.fleet.adminToken}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { code: string }).code).toBe("VALIDATION_FAILED");

    // A password the domain's policy refuses (no complexity): the DC's reason, nothing changed.
    const weak = await cli(["reset-password", "lab-2", "alice", "--domain", "--password-stdin"], "aaaaaaaaaa\n");
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/PASSWORD_POLICY/);
    expect(weak.stderr).toMatch(/refused/);

    // Unknown domain, and a user the domain does not have.
    expect((await cli(["accounts", "diagnose", "lab-2", "OTHER\\alice"])).stderr).toMatch(/DOMAIN_NOT_FOUND/);
    expect((await cli(["accounts", "diagnose", "lab-2", "nosuchuser", "--domain"])).stderr).toMatch(/ACCOUNT_NOT_FOUND/);
    expect(await attributes("alice")).toEqual(before);
    expect(await bind("alice", "Domain-Fixed-Passw0rd")).toBe("ok");
  });

  it("refuses a wrong realm, an unreachable DC, a bad bind password, and names a missing right", async () => {
    const domainsBefore = (await json<unknown[]>(["domain", "list"])).value;
    // The DC serves LAB.LIFELINE.TEST: asked for another realm, it is refused before any credential is sent.
    const wrong = await cli(["domain", "add", "OTHER.LIFELINE.TEST", "--via", "lab-1", "--dc", domain.dcHost, "--ca-file", domain.caFile, "--bind-user", domain.serviceUser, "--password-stdin"], `${domain.servicePassword}\n`);
    expect(wrong.stderr).toMatch(/DOMAIN_REALM_MISMATCH/);
    expect(wrong.stderr).toMatch(/serves DC=lab,DC=lifeline,DC=test/);
    // Nothing listens on port 1 of the DC; a name the lab's DNS does not know.
    expect((await addDomain(domain.serviceUser, domain.servicePassword, `${domain.dcHost}:1`)).stderr).toMatch(/DOMAIN_UNREACHABLE/);
    expect((await addDomain(domain.serviceUser, domain.servicePassword, `nodc.${REALM.toLowerCase()}`)).stderr).toMatch(/DOMAIN_UNREACHABLE/);
    // Without the CA, the self-signed DC certificate is not trusted.
    const noCa = await cli(["domain", "add", REALM, "--via", "lab-1", "--dc", domain.dcHost, "--bind-user", domain.serviceUser, "--password-stdin"], `${domain.servicePassword}\n`);
    expect(noCa.stderr).toMatch(/DOMAIN_UNREACHABLE/);
    expect(noCa.stderr).toMatch(/certificate/);
    const badPassword = await addDomain(domain.serviceUser, "not-the-password");
    expect(badPassword.stderr).toMatch(/DOMAIN_BIND_REJECTED/);
    expect(badPassword.stderr).toMatch(/52e/);
    expect((await json<unknown[]>(["domain", "list"])).value).toEqual(domainsBefore);

    // A bind account with no delegated rights: the domain is usable for reading, changes are refused by name.
    await domainTool(domain, ["user", "create", "norights", "NoRights-Passw0rd-1"]);
    expect((await addDomain("norights", "NoRights-Passw0rd-1")).code).toBe(0);
    const before = await attributes("alice");
    const reset = await cli(["reset-password", "lab-2", "alice", "--domain", "--password-stdin"], "Other-Passw0rd-77\n");
    expect(reset.stderr).toMatch(/DOMAIN_INSUFFICIENT_RIGHTS/);
    expect(reset.stderr).toMatch(/Reset password/);
    const flag = await cli(["accounts", "expire", "lab-2", "alice", "--domain"]);
    expect(flag.stderr).toMatch(/DOMAIN_INSUFFICIENT_RIGHTS/);
    expect(flag.stderr).toMatch(/pwdLastSet/);
    expect(await attributes("alice")).toEqual(before);
    // Back to the helpdesk account for whatever runs next.
    expect((await addDomain(domain.serviceUser, domain.servicePassword)).code).toBe(0);
  });

  it("a domain can be removed: the agent forgets its credential, fix-logon then refuses the domain user", async () => {
    const removed = await cli(["domain", "remove", REALM]);
    expect(removed.code).toBe(0);
    expect((await env.lab.exec("lab-1", ["ls", "/var/lib/lifeline-agent/domains"])).stdout.trim()).toBe("");
    const r = await cli(["fix-logon", "lab-2", "LAB\\alice", "--password-stdin"], "Another-Passw0rd-1\n");
    expect(r.stderr).toMatch(/DOMAIN_NOT_FOUND/);
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}
