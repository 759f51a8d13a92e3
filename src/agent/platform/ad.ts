/**
 * Domain accounts in Active Directory (or Samba AD), over LDAPS from the agent: the agent sits
 * next to the DC, the server need not reach it. What `net user NAME * /domain` does, plus the
 * diagnosis: the state of an account comes from pwdLastSet, userAccountControl,
 * msDS-User-Account-Control-Computed, accountExpires and lockoutTime.
 */
import { Attribute, Change, Client, escapeFilter, InsufficientAccessError, InvalidCredentialsError, ResultCodeError } from "ldapts";
import { LifelineError, MAX_PASSWORD_LENGTH, type Account, type AccountState, type DomainInfo, type DomainSettings, type VerifyResult } from "../../protocol/index.js";
import type { StoredDomain } from "../domain-settings.js";
import { resolveSrv } from "./dns-srv.js";

const LDAPS_PORT = 636;
const CONNECT_TIMEOUT_MS = 5_000;
const OP_TIMEOUT_MS = 15_000;
const MAX_LISTED = 5_000;

// userAccountControl and msDS-User-Account-Control-Computed bits ([MS-ADTS] 2.2.16).
const UF_ACCOUNTDISABLE = 0x2;
const UF_LOCKOUT = 0x10;
const UF_DONT_EXPIRE_PASSWD = 0x10000;
const UF_PASSWORD_EXPIRED = 0x800000;
const NEVER = 9223372036854775807n;
const FILETIME_EPOCH_OFFSET_MS = 11_644_473_600_000n;
const DAY_MS = 86_400_000;

const USER_ATTRIBUTES = [
  "sAMAccountName", "objectSid", "primaryGroupID", "homeDirectory", "loginShell", "userAccountControl",
  "msDS-User-Account-Control-Computed", "pwdLastSet", "accountExpires", "lockoutTime", "isCriticalSystemObject",
];

/** The right each change needs, named as Active Directory's delegation wizard names it. */
const RIGHTS = {
  reset: '"Reset password" (extended right User-Force-Change-Password)',
  pwdLastSet: '"Write pwdLastSet"',
  unlock: '"Write lockoutTime" (Read/write account restrictions)',
} as const;

type Entry = Record<string, string | string[] | Buffer | Buffer[]>;

const one = (entry: Entry, name: string): string | undefined => {
  const v = entry[name];
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : first.toString();
};

/** FILETIME (100 ns since 1601) to days since 1970, as shadow counts them. */
const filetimeDay = (ft: bigint) => Math.floor(Number(ft / 10_000n - FILETIME_EPOCH_OFFSET_MS) / DAY_MS);

/** The base DN a realm's naming context has: LAB.LIFELINE.TEST -> DC=lab,DC=lifeline,DC=test. */
export const baseDnOf = (realm: string) => realm.toLowerCase().split(".").map((p) => `DC=${p}`).join(",");

/** The RID: the last sub-authority of a binary SID. */
function ridOf(sid: Buffer | undefined): number {
  return sid && sid.length >= 12 ? sid.readUInt32LE(sid.length - 4) : -1;
}

export function adAccount(entry: Entry, realm: string, maxPwdAgeDays: number | null, now = Date.now()): Account {
  const uac = Number(one(entry, "userAccountControl") ?? 0);
  const computed = Number(one(entry, "msDS-User-Account-Control-Computed") ?? 0);
  const pwdLastSet = BigInt(one(entry, "pwdLastSet") ?? "0");
  const accountExpires = BigInt(one(entry, "accountExpires") ?? "0");
  const lockoutTime = BigInt(one(entry, "lockoutTime") ?? "0");
  const sidValue = entry["objectSid"];
  const sid = Buffer.isBuffer(sidValue) ? sidValue : Array.isArray(sidValue) && Buffer.isBuffer(sidValue[0]) ? sidValue[0] : undefined;
  const rid = ridOf(sid);
  const expireDay = accountExpires === 0n || accountExpires === NEVER ? null : filetimeDay(accountExpires);
  const today = Math.floor(now / DAY_MS);
  const problems: AccountState[] = [];
  const evidence: string[] = [];
  if (uac & UF_ACCOUNTDISABLE) {
    problems.push("disabled");
    evidence.push("account is disabled (userAccountControl has ACCOUNTDISABLE)");
  }
  if (expireDay !== null && expireDay <= today) {
    problems.push("disabled");
    evidence.push(`account expired on day ${expireDay} (accountExpires; today is day ${today})`);
  }
  if (computed & UF_LOCKOUT) {
    problems.push("locked");
    evidence.push(`account is locked out (lockoutTime = ${lockoutTime})`);
  }
  if (pwdLastSet === 0n) {
    problems.push("must-change");
    evidence.push("must change password at next logon (pwdLastSet = 0)");
  } else if (computed & UF_PASSWORD_EXPIRED) {
    problems.push("expired");
    evidence.push("password expired (msDS-User-Account-Control-Computed has PASSWORD_EXPIRED)");
  }
  const name = one(entry, "sAMAccountName") ?? "";
  return {
    name,
    uid: rid,
    gid: Number(one(entry, "primaryGroupID") ?? 0),
    home: (one(entry, "homeDirectory") ?? "").slice(0, 4096),
    shell: (one(entry, "loginShell") ?? "").slice(0, 4096),
    kind: "domain",
    realm,
    // Well-known accounts (Administrator, Guest, krbtgt: RIDs below 1000) and those AD marks critical.
    system: (rid >= 0 && rid < 1000) || one(entry, "isCriticalSystemObject") === "TRUE",
    state: problems[0] ?? "ok",
    problems: problems.length ? [...new Set(problems)] : ["ok"],
    lastChangeDay: pwdLastSet === 0n ? 0 : pwdLastSet < 0n ? null : filetimeDay(pwdLastSet),
    maxDays: uac & UF_DONT_EXPIRE_PASSWD ? null : maxPwdAgeDays,
    inactiveDays: null,
    expireDay,
    evidence: evidence.length ? evidence : ["password login is possible"],
  };
}

/** What went wrong talking to a DC, as the error a person can act on. */
function connectionError(server: string, err: unknown): LifelineError {
  const e = err as NodeJS.ErrnoException & { code?: string | number };
  const code = typeof e.code === "string" ? e.code : "";
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code)) {
    return new LifelineError("DOMAIN_UNREACHABLE", `Cannot trust the certificate of ${server} (${code}: ${e.message}); give the domain's CA certificate (--ca-file)`);
  }
  return new LifelineError("DOMAIN_UNREACHABLE", `Cannot reach the domain controller ${server} over LDAPS: ${code ? `${code} ` : ""}${e.message}`);
}

/** The `data XXX` subcode AD puts in a failed bind's diagnostic message. */
const bindSubcode = (err: unknown) => /data ([0-9a-f]{3,4})/i.exec((err as Error).message)?.[1]?.toLowerCase();

const BIND_SUBCODES: Record<string, { outcome: VerifyResult["outcome"]; meaning: string }> = {
  "773": { outcome: "must-change", meaning: "the user must change the password at next logon (data 773)" },
  "532": { outcome: "must-change", meaning: "the password has expired (data 532)" },
  "52e": { outcome: "bad-password", meaning: "wrong password (data 52e)" },
  "525": { outcome: "bad-password", meaning: "no such user (data 525)" },
  "775": { outcome: "denied", meaning: "the account is locked out (data 775)" },
  "533": { outcome: "denied", meaning: "the account is disabled (data 533)" },
  "701": { outcome: "denied", meaning: "the account has expired (data 701)" },
  "530": { outcome: "denied", meaning: "logon not permitted at this time (data 530)" },
  "531": { outcome: "denied", meaning: "logon not permitted from this workstation (data 531)" },
};

interface Session {
  client: Client;
  server: string;
}

/** Domain controllers to try: the configured ones, or the realm's DNS SRV records. */
async function serversOf(settings: DomainSettings): Promise<string[]> {
  if (settings.servers.length) return settings.servers;
  const name = `_ldap._tcp.${settings.realm.toLowerCase()}`;
  try {
    const records = await resolveSrv(name);
    return records.sort((a, b) => a.priority - b.priority || b.weight - a.weight).map((r) => r.name);
  } catch (err) {
    throw new LifelineError("DOMAIN_UNREACHABLE", `No domain controller found for ${settings.realm}: DNS has no ${name} record (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the realm or give --dc`);
  }
}

function clientFor(server: string, settings: DomainSettings): Client {
  const [host, port] = server.split(":");
  return new Client({
    url: `ldaps://${host}:${port ?? LDAPS_PORT}`,
    timeout: OP_TIMEOUT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // The certificate is checked against the host name we dialled, never skipped.
    tlsOptions: { servername: host, ...(settings.caPem ? { ca: settings.caPem } : {}), minVersion: "TLSv1.2" },
  });
}

/**
 * Connects to the first DC that answers and checks that it serves this realm (an anonymous
 * read of the rootDSE, before any credential is sent), then binds if given a credential.
 */
async function openSession(settings: DomainSettings, bind?: { user: string; password: string }): Promise<Session> {
  let lastError: LifelineError | undefined;
  for (const server of await serversOf(settings)) {
    const client = clientFor(server, settings);
    try {
      const { searchEntries } = await client.search("", { scope: "base", filter: "(objectClass=*)", attributes: ["defaultNamingContext"] });
      const naming = searchEntries[0] ? one(searchEntries[0] as Entry, "defaultNamingContext") : undefined;
      if (naming?.toLowerCase() !== baseDnOf(settings.realm).toLowerCase()) {
        await client.unbind().catch(() => undefined);
        throw new LifelineError("DOMAIN_REALM_MISMATCH", `${server} serves ${naming ?? "no domain"}, not the realm ${settings.realm} (${baseDnOf(settings.realm)})`);
      }
    } catch (err) {
      await client.unbind().catch(() => undefined);
      if (err instanceof LifelineError) throw err;
      lastError = connectionError(server, err);
      continue;
    }
    if (bind) {
      try {
        await client.bind(`${bind.user}@${settings.realm.toLowerCase()}`, bind.password);
      } catch (err) {
        await client.unbind().catch(() => undefined);
        if (err instanceof InvalidCredentialsError) {
          const sub = bindSubcode(err);
          const meaning = (sub && BIND_SUBCODES[sub]?.meaning) ?? err.message;
          throw new LifelineError("DOMAIN_BIND_REJECTED", `${server} refused the bind account ${bind.user}@${settings.realm}: ${meaning}`);
        }
        throw connectionError(server, err);
      }
    }
    return { client, server };
  }
  throw lastError ?? new LifelineError("DOMAIN_UNREACHABLE", `No domain controller to try for ${settings.realm}`);
}

async function withSession<T>(settings: DomainSettings, bind: { user: string; password: string } | undefined, fn: (s: Session) => Promise<T>): Promise<T> {
  const session = await openSession(settings, bind);
  try {
    return await fn(session);
  } finally {
    await session.client.unbind().catch(() => undefined);
  }
}

/** Connects, checks the realm and the bind account, and reads what the agent keeps about the domain. */
export async function probeDomain(settings: DomainSettings, bindPassword: string): Promise<DomainInfo> {
  return withSession(settings, { user: settings.bindUser, password: bindPassword }, async ({ client, server }) => {
    const baseDn = baseDnOf(settings.realm);
    const { searchEntries } = await client.search(`CN=Partitions,CN=Configuration,${baseDn}`, {
      filter: escapeFilter`(&(objectClass=crossRef)(nCName=${baseDn}))`,
      attributes: ["nETBIOSName"],
    });
    const netbios = searchEntries[0] ? one(searchEntries[0] as Entry, "nETBIOSName") : undefined;
    const self = await client.search(baseDn, { filter: escapeFilter`(&(objectClass=user)(sAMAccountName=${settings.bindUser}))`, attributes: ["distinguishedName"] });
    return {
      realm: settings.realm,
      netbios: (netbios ?? settings.realm.split(".")[0]!).slice(0, 15).toUpperCase(),
      baseDn,
      server,
      bindDn: self.searchEntries[0]?.dn ?? `${settings.bindUser}@${settings.realm.toLowerCase()}`,
    };
  });
}

/** A real LDAP simple bind as the user: the domain's own answer to "can this password log in". */
export async function verifyBind(settings: DomainSettings, user: string, password: string): Promise<VerifyResult> {
  const started = Date.now();
  const done = (outcome: VerifyResult["outcome"], detail: string, address: string | null): VerifyResult => ({ outcome, detail, address, durationMs: Date.now() - started });
  let session: Session;
  try {
    session = await openSession(settings);
  } catch (err) {
    if (err instanceof LifelineError && err.code === "DOMAIN_UNREACHABLE") return done("unreachable", err.message, null);
    throw err;
  }
  const { client, server } = session;
  try {
    await client.bind(`${user}@${settings.realm.toLowerCase()}`, password);
    // Samba has no "whoami" extended operation: a search proves the bound session works.
    await client.search(baseDnOf(settings.realm), { scope: "base", filter: "(objectClass=*)", attributes: ["distinguishedName"] });
    return done("ok", `LDAP bind as ${user}@${settings.realm} succeeded`, server);
  } catch (err) {
    if (err instanceof InvalidCredentialsError) {
      const sub = bindSubcode(err);
      const known = sub ? BIND_SUBCODES[sub] : undefined;
      return done(known?.outcome ?? "bad-password", `LDAP bind refused: ${known?.meaning ?? err.message}`, server);
    }
    if (err instanceof ResultCodeError) return done("denied", `LDAP bind refused: ${err.message}`, server);
    return done("unreachable", connectionError(server, err).message, server);
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

/** The domain's accounts through the stored bind account. */
export class AdAccounts {
  constructor(private readonly domain: StoredDomain) {}

  private get realm(): string {
    return this.domain.settings.realm;
  }

  private session<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    return withSession(this.domain.settings, { user: this.domain.settings.bindUser, password: this.domain.bindPassword }, fn);
  }

  /** The domain's maximum password age in days (domain object maxPwdAge, a negative interval), null for never. */
  private async maxPwdAgeDays(client: Client): Promise<number | null> {
    const { searchEntries } = await client.search(this.domain.info.baseDn, { scope: "base", filter: "(objectClass=*)", attributes: ["maxPwdAge"] });
    const raw = searchEntries[0] ? one(searchEntries[0] as Entry, "maxPwdAge") : undefined;
    if (!raw) return null;
    const interval = -BigInt(raw);
    return interval <= 0n || interval >= NEVER ? null : Number(interval / 864_000_000_000n);
  }

  private async find(client: Client, user: string): Promise<{ dn: string; entry: Entry }> {
    // The username grammar already excludes ( ) * \ and NUL; escapeFilter is the second fence.
    const { searchEntries } = await client.search(this.domain.info.baseDn, {
      filter: escapeFilter`(&(objectCategory=person)(objectClass=user)(sAMAccountName=${user}))`,
      attributes: USER_ATTRIBUTES,
      explicitBufferAttributes: ["objectSid"],
      sizeLimit: 2,
    });
    if (!searchEntries.length) throw new LifelineError("ACCOUNT_NOT_FOUND", `No account "${user}" in the domain ${this.realm}`);
    const entry = searchEntries[0]!;
    return { dn: entry.dn, entry: entry as unknown as Entry };
  }

  async list(now = Date.now()): Promise<Account[]> {
    return this.session(async ({ client }) => {
      const maxAge = await this.maxPwdAgeDays(client);
      const { searchEntries } = await client.search(this.domain.info.baseDn, {
        filter: "(&(objectCategory=person)(objectClass=user))",
        attributes: USER_ATTRIBUTES,
        explicitBufferAttributes: ["objectSid"],
        paged: { pageSize: 500 },
        sizeLimit: MAX_LISTED,
      });
      return searchEntries
        .map((e) => adAccount(e as unknown as Entry, this.realm, maxAge, now))
        .filter((a) => /^[a-z_][a-z0-9_.-]{0,30}[a-z0-9_.$-]?$/i.test(a.name))
        .sort((a, b) => a.name.localeCompare(b.name));
    });
  }

  async get(user: string, now = Date.now()): Promise<Account> {
    return this.session(async ({ client }) => adAccount((await this.find(client, user)).entry, this.realm, await this.maxPwdAgeDays(client), now));
  }

  /** Applies changes to the user's entry, then reads it back: the result is what the DC now says. */
  private async change(user: string, allowSystem: boolean, right: string, build: (current: Account) => Change[]): Promise<Account> {
    return this.session(async ({ client }) => {
      const maxAge = await this.maxPwdAgeDays(client);
      const { dn, entry } = await this.find(client, user);
      const current = adAccount(entry, this.realm, maxAge);
      if (current.system && !allowSystem) {
        throw new LifelineError("ACCOUNT_IS_SYSTEM", `"${user}" is a built-in domain account (RID ${current.uid}); pass --allow-system to change it anyway`);
      }
      try {
        await client.modify(dn, build(current));
      } catch (err) {
        throw this.changeError(err, user, dn, right);
      }
      return adAccount((await this.find(client, user)).entry, this.realm, maxAge);
    });
  }

  private changeError(err: unknown, user: string, dn: string, right: string): LifelineError {
    if (err instanceof InsufficientAccessError) {
      return new LifelineError(
        "DOMAIN_INSUFFICIENT_RIGHTS",
        `The bind account ${this.domain.settings.bindUser} lacks the ${right} right on ${dn}: delegate it on the users' OU (see docs/domain.md)`,
      );
    }
    if (err instanceof ResultCodeError) {
      // AD reports a refused password as constraint violation (19) or unwilling to perform (53), 0000052D.
      if (err.code === 19 || err.code === 53 || /052D/i.test(err.message)) {
        return new LifelineError("PASSWORD_POLICY", `The domain refused the change for "${user}": ${err.message.trim()}`);
      }
      return new LifelineError("ACCOUNT_CHANGE_FAILED", `The domain refused the change for "${user}": ${err.message.trim()}`);
    }
    return new LifelineError("DOMAIN_UNREACHABLE", `The change for "${user}" did not complete: ${(err as Error).message}`);
  }

  private static pwdLastSet(value: "0" | "-1"): Change {
    return new Change({ operation: "replace", modification: new Attribute({ type: "pwdLastSet", values: [value] }) });
  }

  /** pwdLastSet = 0: "User must change password at next logon". */
  expire(user: string, allowSystem: boolean): Promise<Account> {
    return this.change(user, allowSystem, RIGHTS.pwdLastSet, () => [AdAccounts.pwdLastSet("0")]);
  }

  /** pwdLastSet = -1: the DC stamps the current time, so the password counts as just set; the password is kept. */
  clearFlag(user: string, allowSystem: boolean): Promise<Account> {
    return this.change(user, allowSystem, RIGHTS.pwdLastSet, () => [AdAccounts.pwdLastSet("-1")]);
  }

  unlock(user: string, allowSystem: boolean): Promise<Account> {
    return this.change(user, allowSystem, RIGHTS.unlock, () => [new Change({ operation: "replace", modification: new Attribute({ type: "lockoutTime", values: ["0"] }) })]);
  }

  /**
   * `net user NAME * /domain`: an administrative reset (replace unicodePwd, the password in
   * double quotes as UTF-16LE), pwdLastSet as asked, and the lockout cleared if the account is
   * locked, all in one modify so the DC applies all or nothing.
   */
  async resetPassword(user: string, password: Buffer, mustChange: boolean, allowSystem: boolean): Promise<Account> {
    if (password.length > MAX_PASSWORD_LENGTH) throw new LifelineError("PASSWORD_POLICY", "The new password is too long");
    const text = password.toString("utf8");
    const encoded = Buffer.from(`"${text}"`, "utf16le");
    try {
      const needs = `${RIGHTS.reset} and ${RIGHTS.pwdLastSet}`;
      return await this.change(user, allowSystem, needs, (current) => [
        new Change({ operation: "replace", modification: new Attribute({ type: "unicodePwd", values: [encoded] }) }),
        AdAccounts.pwdLastSet(mustChange ? "0" : "-1"),
        ...(current.problems.includes("locked") ? [new Change({ operation: "replace", modification: new Attribute({ type: "lockoutTime", values: ["0"] }) })] : []),
      ]);
    } finally {
      encoded.fill(0);
    }
  }
}
