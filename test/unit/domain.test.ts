import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { domainRealm } from "../../src/agent/facts.js";
import { adAccount, baseDnOf } from "../../src/agent/platform/ad.js";
import { parseQualifiedUser, Realm } from "../../src/protocol/index.js";

const DAY = 86_400_000;
// FILETIME of a day number (days since 1970).
const filetime = (day: number) => String((BigInt(day) * BigInt(DAY) + 11_644_473_600_000n) * 10_000n);
const sid = (rid: number) => {
  const b = Buffer.alloc(28);
  b.writeUInt8(1, 0);
  b.writeUInt8(5, 1);
  b.writeUInt32LE(rid, 24);
  return b;
};
const today = 20_000;
const now = today * DAY + 3_600_000;
const entry = (over: Record<string, unknown>) => ({
  sAMAccountName: "alice",
  objectSid: sid(1103),
  primaryGroupID: "513",
  userAccountControl: "512",
  "msDS-User-Account-Control-Computed": "0",
  pwdLastSet: filetime(today - 3),
  accountExpires: "9223372036854775807",
  lockoutTime: "0",
  ...over,
}) as never;

describe("domain accounts: diagnosis from AD attributes", () => {
  it("an account that can log in", () => {
    const a = adAccount(entry({}), "LAB.TEST", 42, now);
    expect(a).toMatchObject({ name: "alice", uid: 1103, gid: 513, kind: "domain", realm: "LAB.TEST", system: false, state: "ok", problems: ["ok"], lastChangeDay: today - 3, maxDays: 42, expireDay: null });
  });
  it("pwdLastSet = 0 is must-change; PASSWORD_EXPIRED with a set date is expired", () => {
    expect(adAccount(entry({ pwdLastSet: "0", "msDS-User-Account-Control-Computed": String(0x800000) }), "LAB.TEST", null, now)).toMatchObject({
      state: "must-change",
      lastChangeDay: 0,
      evidence: ["must change password at next logon (pwdLastSet = 0)"],
    });
    expect(adAccount(entry({ "msDS-User-Account-Control-Computed": String(0x800000) }), "LAB.TEST", 42, now).state).toBe("expired");
  });
  it("disabled, expired account, locked out; every problem listed, the first one blocks", () => {
    const a = adAccount(entry({ userAccountControl: String(512 | 2), "msDS-User-Account-Control-Computed": String(0x10), lockoutTime: "133000000000000000", pwdLastSet: "0" }), "LAB.TEST", null, now);
    expect(a.state).toBe("disabled");
    expect(a.problems).toEqual(["disabled", "locked", "must-change"]);
    const expired = adAccount(entry({ accountExpires: filetime(today - 1) }), "LAB.TEST", null, now);
    expect(expired).toMatchObject({ state: "disabled", expireDay: today - 1 });
  });
  it("built-in accounts (RID < 1000) are system; DONT_EXPIRE_PASSWD has no max age", () => {
    expect(adAccount(entry({ sAMAccountName: "Administrator", objectSid: sid(500) }), "LAB.TEST", 42, now).system).toBe(true);
    expect(adAccount(entry({ userAccountControl: String(512 | 0x10000) }), "LAB.TEST", 42, now).maxDays).toBeNull();
  });
  it("the base DN of a realm", () => {
    expect(baseDnOf("LAB.LIFELINE.TEST")).toBe("DC=lab,DC=lifeline,DC=test");
  });
});

describe("realms and qualified user names", () => {
  it("accepts realms case-insensitively and refuses what is not a DNS domain", () => {
    expect(Realm.parse("lab.lifeline.test")).toBe("LAB.LIFELINE.TEST");
    for (const bad of ["LAB", "LAB..TEST", "-LAB.TEST", "LAB.TEST/x", "LAB TEST.X", "A".repeat(16) + ".TEST", "lab.test)(cn=*"]) {
      expect(Realm.safeParse(bad).success, bad).toBe(false);
    }
  });
  it("reads NETBIOS\\user and user@realm; a plain name is not qualified", () => {
    expect(parseQualifiedUser("LAB\\alice")).toEqual({ user: "alice", domain: "LAB", form: "netbios" });
    expect(parseQualifiedUser("alice@lab.lifeline.test")).toEqual({ user: "alice", domain: "LAB.LIFELINE.TEST", form: "upn" });
    expect(parseQualifiedUser("alice")).toBeUndefined();
    // The user part is still checked against the username grammar by the caller.
    expect(parseQualifiedUser("LAB\\alice)(cn=*")?.user).toBe("alice)(cn=*");
  });
});

describe("the machine's domain (agent facts)", () => {
  const conf = (text: string) => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-smb-"));
    writeFileSync(join(dir, "smb.conf"), text);
    return join(dir, "smb.conf");
  };
  it("is the realm of an ADS member's smb.conf, else null", () => {
    expect(domainRealm(conf("[global]\n   workgroup = LAB\n   realm = lab.lifeline.test\n   security = ADS\n"))).toBe("LAB.LIFELINE.TEST");
    expect(domainRealm(conf("[global]\n   realm = LAB.LIFELINE.TEST\n   security = user\n"))).toBeNull();
    expect(domainRealm(conf("[global]\n   security = ads\n   realm = not a realm\n"))).toBeNull();
    expect(domainRealm("/nonexistent/smb.conf")).toBeNull();
  });
});
