import { execFileSync } from "node:child_process";
import { Client } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE, BOB, domainTool, startLabDomain, type LabDomain } from "../../src/lab/index.js";
import { startLab, type TestLab } from "../helpers/lab.js";

// A real Samba AD DC in the lab (its own namespace on the lab bridge), reached over LDAPS.
describe("lab domain controller (Samba AD)", () => {
  let lab: TestLab;
  let domain: LabDomain;

  beforeAll(async () => {
    lab = await startLab({ hosts: 0 });
    domain = await startLabDomain({ labName: lab.name, labDir: lab.labDir, subnet: lab.lab.subnet, realm: "LAB.LIFELINE.TEST", users: [ALICE, BOB] });
  }, 180_000);
  afterAll(() => lab?.down());

  /** An LDAP simple bind as the user: the domain's own answer to "can this password log in". */
  async function bind(user: string, password: string): Promise<string> {
    const client = new Client({ url: `ldaps://${domain.address}:636`, tlsOptions: { rejectUnauthorized: false }, timeout: 5000, connectTimeout: 5000 });
    try {
      await client.bind(`${user}@${domain.realm.toLowerCase()}`, password);
      return "ok";
    } catch (err) {
      return /data ([0-9a-f]{3})/.exec((err as Error).message)?.[1] ?? (err as Error).message;
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }

  it("serves the seed users; a bad password is data 52e", async () => {
    expect(domain).toMatchObject({ realm: "LAB.LIFELINE.TEST", netbios: "LAB", baseDn: "DC=lab,DC=lifeline,DC=test" });
    expect(await bind("alice", ALICE.password)).toBe("ok");
    expect(await bind("alice", "wrong-password")).toBe("52e");
  });

  it("reproduces the domain symptom: must change password at next logon is data 773", async () => {
    await domainTool(domain, ["user", "setpassword", "bob", `--newpassword=${BOB.password}`, "--must-change-at-next-login"]);
    expect(await bind("bob", BOB.password)).toBe("773");
    const admin = new Client({ url: `ldaps://${domain.address}:636`, tlsOptions: { rejectUnauthorized: false } });
    await admin.bind(`${domain.adminUser}@${domain.realm.toLowerCase()}`, domain.adminPassword);
    const { searchEntries } = await admin.search(domain.baseDn, { filter: "(sAMAccountName=bob)", attributes: ["pwdLastSet"] });
    await admin.unbind();
    expect(searchEntries[0]!.pwdLastSet).toBe("0");
  });

  it("goes away with the lab: no namespace, no samba process", async () => {
    await lab.down();
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toContain(`lifeline-${lab.name}-dc`);
    const samba = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(`${lab.labDir}/domain`));
    expect(samba).toEqual([]);
  });
});
