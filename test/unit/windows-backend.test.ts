import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LifelineError } from "../../src/protocol/index.js";
import {
  NET_USER_LOCALES,
  SCRIPTS,
  SpawnRunner,
  WindowsAccounts,
  cleanPowerShellStderr,
  decodePowerShellCommand,
  encodePowerShellCommand,
  parseLocalUsers,
  parseNetDate,
  parseNetUser,
  parsePsDate,
  psQuote,
  windowsRunPlan,
  type CommandResult,
  type CommandRunner,
  type RunOptions,
} from "../../src/agent/platform/windows.js";

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "windows");
/** Fixtures are read the way SpawnRunner decodes them: JSON as UTF-8, net.exe byte for byte. */
const fixture = (name: string) => readFileSync(join(FIXTURES, name), name.endsWith(".json") ? "utf8" : "latin1");

const NOW = Date.UTC(2025, 5, 1, 12); // 2025-06-01
const PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe";
const NET = "C:\\Windows\\System32\\net.exe";
const PS_FLAGS = ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass"];

interface Call {
  file: string;
  args: string[];
  stdin: Buffer | null;
  stdinRef: Buffer | undefined;
  options: RunOptions;
}

const ok = (stdout: string): CommandResult => ({ code: 0, stdout, stderr: "" });
const notFound: CommandResult = { code: 2, stdout: "", stderr: fixture("net-user-en-US-notfound.stderr.txt") };

/**
 * A fake machine: Get-LocalUser answers from the list fixture (kept as data so net user
 * /logonpasswordchg can change it), net user NAME from the named fixtures.
 */
class FakeWindows implements CommandRunner {
  calls: Call[] = [];
  data = JSON.parse(fixture("list-script-ps51.json")) as { users: Record<string, unknown>[]; lockout: unknown[] };
  netLocal: Record<string, string> = { alice: "net-user-en-US-alice.txt", bob: "net-user-en-US-bob.txt", dave: "net-user-en-US-dave.txt" };
  netDomain: Record<string, string> = { zoe: "net-user-en-US-domain-zoe.txt", yuri: "net-user-en-US-domain-yuri.txt" };
  fail: ((file: string, args: readonly string[]) => CommandResult | undefined) | undefined;

  async run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    // Copy stdin now: the backend zeroes its buffer once the command has run.
    this.calls.push({ file, args: [...args], stdin: options.stdin ? Buffer.from(options.stdin) : null, stdinRef: options.stdin, options });
    const failed = this.fail?.(file, args);
    if (failed) return failed;
    if (file === PS) {
      const script = decodePowerShellCommand(args.at(-1)!);
      if (script === SCRIPTS.list) return ok(JSON.stringify(this.data).replace(/\//g, "\\/"));
      if (script === SCRIPTS.reset) return ok("");
      throw new Error(`unexpected script ${script.slice(0, 40)}`);
    }
    if (file === NET && args[0] === "user") {
      const name = args[1]!;
      const change = args.find((a) => a.startsWith("/logonpasswordchg:"));
      if (change) {
        const u = this.data.users.find((x) => String(x.Name).toLowerCase() === name.toLowerCase());
        if (u) u.PasswordLastSet = change.endsWith("yes") ? null : `/Date(${NOW})/`;
        return ok("The command completed successfully.\r\n\r\n");
      }
      const table = args.includes("/domain") ? this.netDomain : this.netLocal;
      const found = Object.entries(table).find(([k]) => k.toLowerCase() === name.toLowerCase());
      return found ? ok(fixture(found[1])) : notFound;
    }
    throw new Error(`unexpected command ${file} ${args.join(" ")}`);
  }
}

const backend = (fake = new FakeWindows(), domain = true) => ({ fake, accounts: new WindowsAccounts({ runner: fake, systemRoot: "C:\\Windows", now: () => NOW, domain }) });

async function lifelineError(p: Promise<unknown> | (() => unknown)): Promise<LifelineError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(LifelineError);
    return err as LifelineError;
  }
  throw new Error("expected a LifelineError");
}

describe("Get-LocalUser JSON", () => {
  it("parses Windows PowerShell 5.1 and PowerShell 7 output to the same records", () => {
    const ps51 = parseLocalUsers(fixture("get-localuser-ps51.json"));
    const ps7 = parseLocalUsers(fixture("get-localuser-ps7.json"));
    expect(ps51).toEqual(ps7);
    const bob = ps51.find((u) => u.name === "bob")!;
    expect(bob).toMatchObject({ rid: 1002, enabled: true, passwordRequired: true, passwordLastSet: Date.UTC(2025, 4, 10, 10), passwordExpires: Date.UTC(2025, 6, 21, 10), accountExpires: null });
    expect(bob.sid).toBe("S-1-5-21-1004336348-1177238915-682003330-1002");
    expect(ps51.find((u) => u.name === "alice")!.passwordLastSet).toBeNull();
  });

  it("handles a single object (one user) as well as an array", () => {
    const users = parseLocalUsers(fixture("get-localuser-single-ps51.json"));
    expect(users.map((u) => u.name)).toEqual(["alice"]);
  });

  it("leaves out accounts whose names the protocol cannot carry", () => {
    const names = parseLocalUsers(fixture("get-localuser-ps51.json")).map((u) => u.name);
    expect(names).not.toContain("José");
    expect(names).toContain("WDAGUtilityAccount");
  });

  it("reads the lockout state from the list script's WMI part", () => {
    const users = parseLocalUsers(fixture("list-script-ps51.json"));
    expect(users.find((u) => u.name === "dave")!.lockout).toBe(true);
    expect(users.find((u) => u.name === "bob")!.lockout).toBe(false);
    expect(parseLocalUsers(fixture("get-localuser-ps51.json"))[0]!.lockout).toBeNull();
  });

  it.each([
    ["/Date(1705310625000)/", 1705310625000],
    ["/Date(1705310625000+0100)/", 1705310625000],
    ["/Date(-1000)/", -1000],
    ["2024-01-15T10:23:45.1234567+01:00", Date.parse("2024-01-15T09:23:45.123Z")],
    ["2024-01-15T10:23:45Z", Date.UTC(2024, 0, 15, 10, 23, 45)],
    [{ value: "/Date(5000)/", DisplayHint: 2, DateTime: "Thursday, January 1, 1970 12:00:05 AM" }, 5000],
    [null, null],
    ["", null],
  ])("reads the date %j", (value, expected) => {
    expect(parsePsDate(value)).toBe(expected);
  });

  it.each(["not json", "Get-LocalUser : Access denied\r\n", '[{"Name":"bob"}]', '[{"Name":"bob","SID":"S-1-5-21-1-2-3-1002","Enabled":"yes"}]', '{"Name":"bob","SID":"x"}', '[{"Name":"bob","SID":"S-1-5-21-1-2-3-1002","Enabled":true,"PasswordLastSet":"yesterday","PasswordRequired":true,"UserMayChangePassword":true}]', "[42]"])(
    "refuses malformed output with a LifelineError: %s",
    async (text) => {
      const err = await lifelineError(() => parseLocalUsers(text));
      expect(err.code).toBe("INTERNAL");
      expect(err.message).toMatch(/^Cannot read the output of Get-LocalUser: /);
    },
  );

  it("reads empty output as no users", () => {
    expect(parseLocalUsers("\r\n")).toEqual([]);
  });
});

describe("net user output", () => {
  it.each([
    ["net-user-en-US-alice.txt", "alice", "en-US", "yes", "never"],
    ["net-user-en-US-dave.txt", "dave", "en-US", "locked", new Date(2025, 4, 1, 10).getTime()],
    ["net-user-de-DE-bob.txt", "bob", "de-DE", "yes", new Date(2025, 4, 10, 10).getTime()],
    ["net-user-fr-FR-alice.txt", "alice", "fr-FR", "yes", "never"],
    ["net-user-es-ES-carol.txt", "carol", "es-ES", "no", new Date(2025, 1, 1, 10).getTime()],
    ["net-user-it-IT-alice.txt", "alice", null, "unknown", "never"],
    ["net-user-en-US-domain-zoe.txt", "zoe", "en-US", "yes", new Date(2025, 1, 1, 9).getTime()],
  ])("%s", (file, user, locale, active, lastSet) => {
    const info = parseNetUser(fixture(file), user);
    expect(info.locale).toBe(locale);
    expect(info.name).toBe(user);
    expect(info.accountActive).toBe(active);
    expect(info.passwordLastSet).toEqual(lastSet);
  });

  it("reads every field by position, also where a long label leaves one space (fr-FR)", () => {
    const fr = parseNetUser(fixture("net-user-fr-FR-alice.txt"), "alice");
    expect(fr.userMayChange).toBe("yes");
    expect(fr.passwordRequired).toBe("yes");
    expect(fr.accountExpires).toBe("never");
    const de = parseNetUser(fixture("net-user-de-DE-bob.txt"), "bob");
    expect(de.passwordExpires).toBe(new Date(2025, 6, 21, 10).getTime());
    expect(de.raw.passwordExpires).toBe("21.07.2025 10:00:00");
  });

  it("finds the account block after /domain's preamble", () => {
    const zoe = parseNetUser(fixture("net-user-en-US-domain-zoe.txt"), "zoe");
    expect(zoe.passwordExpires).toBe(new Date(2025, 2, 15, 9).getTime());
  });

  it("keeps a label table for en-US, de-DE, fr-FR and es-ES", () => {
    expect(NET_USER_LOCALES.map((l) => l.id)).toEqual(["en-US", "de-DE", "fr-FR", "es-ES"]);
  });

  it.each([
    ["1/15/2024 10:23:45 AM", "mdy", new Date(2024, 0, 15, 10, 23, 45).getTime()],
    ["1/15/2024 12:05:00 AM", "mdy", new Date(2024, 0, 15, 0, 5).getTime()],
    ["3/1/2024 1:00:00 PM", "mdy", new Date(2024, 2, 1, 13).getTime()],
    ["15.01.2024 10:23:45", "dmy", new Date(2024, 0, 15, 10, 23, 45).getTime()],
    ["2024-01-15 10:23:45", "dmy", new Date(2024, 0, 15, 10, 23, 45).getTime()],
    ["15/01/2024 10:23", null, new Date(2024, 0, 15, 10, 23).getTime()],
    ["01/02/2024 10:23", null, "unknown"],
    ["Never", "mdy", "never"],
    ["Nie", null, "never"],
  ] as const)("parses the date %s (%s)", (text, order, expected) => {
    expect(parseNetDate(text, order)).toBe(expected);
  });

  it("refuses truncated or foreign output with a LifelineError", async () => {
    expect((await lifelineError(() => parseNetUser(fixture("net-user-truncated.txt"), "bob"))).message).toMatch(/layout/);
    expect((await lifelineError(() => parseNetUser(fixture("net-user-en-US-bob.txt"), "carol"))).message).toMatch(/no line names the account "carol"/);
    expect((await lifelineError(() => parseNetUser("", "bob"))).code).toBe("INTERNAL");
  });
});

describe("account states", () => {
  it("lists local accounts with their states and evidence", async () => {
    const { accounts, fake } = backend();
    const byName = Object.fromEntries((await accounts.list()).map((a) => [a.name, a]));
    expect(byName.alice).toMatchObject({ state: "must-change", uid: 1001, gid: 513, home: "", shell: "", kind: "local", system: false, lastChangeDay: 0 });
    expect(byName.alice!.evidence).toContain("must change password at next logon (PasswordLastSet is empty)");
    expect(byName.bob).toMatchObject({ state: "ok", problems: [], maxDays: 72, lastChangeDay: Math.floor(Date.UTC(2025, 4, 10, 10) / 86_400_000) });
    expect(byName.carol).toMatchObject({ state: "disabled" });
    expect(byName.carol!.evidence).toContain("account is disabled (Enabled = False)");
    expect(byName.dave).toMatchObject({ state: "locked" });
    expect(byName.dave!.evidence).toContain("account is locked out (Win32_UserAccount.Lockout = True)");
    expect(byName.erin).toMatchObject({ state: "expired" });
    expect(byName.erin!.evidence).toContain("password expired on 2025-04-01 (PasswordExpires)");
    expect(byName.frank).toMatchObject({ state: "disabled", expireDay: Math.floor(Date.UTC(2025, 0, 31) / 86_400_000) });
    expect(byName.frank!.evidence).toContain("account expired on 2025-01-31 (AccountExpires)");
    for (const builtin of ["Administrator", "Guest", "DefaultAccount", "WDAGUtilityAccount"]) expect(byName[builtin]!.system).toBe(true);
    expect(byName.Guest!.problems).toEqual(["disabled"]); // no password required: not "must-change"
    // One PowerShell process, with the fixed list script; no net user per account.
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.file).toBe(PS);
    expect(fake.calls[0]!.args.slice(0, 5)).toEqual([...PS_FLAGS, "-EncodedCommand"]);
    expect(decodePowerShellCommand(fake.calls[0]!.args[5]!)).toContain("Get-LocalUser | Select-Object Name,");
  });

  it("get() adds net user's view (argv: net.exe user NAME)", async () => {
    const { accounts, fake } = backend();
    const dave = await accounts.get("DAVE");
    expect(dave.state).toBe("locked");
    expect(fake.calls[1]).toMatchObject({ file: NET, args: ["user", "dave"], stdin: null });
    expect(fake.calls[1]!.options.encoding).toBe("latin1");
  });

  it("uses net user's lockout word when WMI gave no answer", async () => {
    const fake = new FakeWindows();
    fake.data.lockout = [];
    const dave = await backend(fake).accounts.get("dave");
    expect(dave.state).toBe("locked");
    expect(dave.evidence).toContain('account is locked out (net user: "Locked")');
  });

  it("falls back to the PowerShell data when net user speaks an unknown language", async () => {
    const fake = new FakeWindows();
    fake.netLocal = { alice: "net-user-it-IT-alice.txt", bob: "net-user-it-IT-alice.txt" };
    const { accounts } = backend(fake);
    const alice = await accounts.get("alice");
    expect(alice.state).toBe("must-change");
    expect(alice.evidence).toContain("net user output is in a language Lifeline does not know; used the PowerShell data");
    // The PowerShell data decides: once PasswordLastSet is filled, net user's "Mai" does not matter.
    (fake.data.users.find((u) => u.Name === "alice")!).PasswordLastSet = `/Date(${NOW})/`;
    expect((await accounts.get("alice")).state).toBe("ok");
  });

  it("reads domain accounts with net user NAME /domain", async () => {
    const { accounts, fake } = backend();
    const zoe = await accounts.get("zoe");
    expect(zoe).toMatchObject({ kind: "domain", state: "expired", uid: -1, gid: 0, system: false });
    expect(fake.calls.at(-1)).toMatchObject({ file: NET, args: ["user", "zoe", "/domain"] });
    const yuri = await accounts.get("yuri");
    expect(yuri).toMatchObject({ kind: "domain", state: "must-change", lastChangeDay: 0 });
  });

  it("reports an unknown account as ACCOUNT_NOT_FOUND (NET HELPMSG 2221)", async () => {
    expect((await lifelineError(backend().accounts.get("nobody"))).code).toBe("ACCOUNT_NOT_FOUND");
    const local = backend(new FakeWindows(), false);
    expect((await lifelineError(local.accounts.get("zoe"))).message).toBe('No local account "zoe"');
    expect(local.fake.calls.every((c) => !c.args.includes("/domain"))).toBe(true);
  });

  it("refuses system accounts without allowSystem", async () => {
    const { accounts } = backend();
    expect((await lifelineError(accounts.changeable("Administrator", false))).code).toBe("ACCOUNT_IS_SYSTEM");
    expect((await accounts.changeable("Administrator", true)).uid).toBe(500);
  });

  it("turns a failing PowerShell (CLIXML on stderr) into a LifelineError", async () => {
    const fake = new FakeWindows();
    fake.fail = (file) =>
      file === PS ? { code: 1, stdout: "", stderr: '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">Get-LocalUser : Access is denied._x000D__x000A_</S></Objs>' } : undefined;
    const err = await lifelineError(backend(fake).accounts.list());
    expect(err.code).toBe("INTERNAL");
    expect(err.message).toBe("Get-LocalUser failed: Get-LocalUser : Access is denied.");
  });

  it("turns garbage from PowerShell into a LifelineError, not a crash", async () => {
    const fake = new FakeWindows();
    fake.fail = (file) => (file === PS ? ok("WARNING: something odd\r\n{") : undefined);
    expect((await lifelineError(backend(fake).accounts.list())).code).toBe("INTERNAL");
  });
});

describe("changes: exact argv and stdin", () => {
  it("expire: net.exe user NAME /logonpasswordchg:yes", async () => {
    const { accounts, fake } = backend();
    const bob = await accounts.expire("bob");
    expect(bob.state).toBe("must-change");
    const change = fake.calls.filter((c) => c.args.some((a) => a.startsWith("/logonpasswordchg")));
    expect(change).toEqual([expect.objectContaining({ file: NET, args: ["user", "bob", "/logonpasswordchg:yes"], stdin: null })]);
  });

  it("expire fails clearly when the flag does not take (password never expires)", async () => {
    const fake = new FakeWindows();
    const run = fake.run.bind(fake);
    fake.run = async (file, args, options) => (args.includes("/logonpasswordchg:yes") ? ok("The command completed successfully.\r\n") : run(file, args, options));
    const err = await lifelineError(backend(fake).accounts.expire("bob"));
    expect(err.code).toBe("ACCOUNT_CHANGE_FAILED");
    expect(err.message).toMatch(/Password never expires/);
  });

  it("clearFlag: net.exe user NAME /logonpasswordchg:no (and /domain for domain accounts)", async () => {
    const { accounts, fake } = backend();
    expect((await accounts.clearFlag("alice")).state).toBe("ok");
    await accounts.clearFlag("yuri");
    const changes = fake.calls.filter((c) => c.args.some((a) => a.startsWith("/logonpasswordchg"))).map((c) => [c.file, ...c.args]);
    expect(changes).toEqual([
      [NET, "user", "alice", "/logonpasswordchg:no"],
      [NET, "user", "yuri", "/logonpasswordchg:no", "/domain"],
    ]);
  });

  it("clearFlag reports net.exe's failure as ACCOUNT_CHANGE_FAILED", async () => {
    const fake = new FakeWindows();
    fake.fail = (_f, args) => (args.includes("/logonpasswordchg:no") ? { code: 2, stdout: "", stderr: "System error 5 has occurred.\r\n\r\nAccess is denied.\r\n" } : undefined);
    const err = await lifelineError(backend(fake).accounts.clearFlag("alice"));
    expect(err.code).toBe("ACCOUNT_CHANGE_FAILED");
    expect(err.message).toMatch(/Access is denied/);
  });

  const password = "N3w'Pass\"word$(calc)ü";

  it.each([
    [false, "/logonpasswordchg:no"],
    [true, "/logonpasswordchg:yes"],
  ])("resetPassword (mustChange %s): the password goes only to stdin", async (mustChange, flag) => {
    const { accounts, fake } = backend();
    const secret = Buffer.from(password, "utf8");
    await accounts.resetPassword("bob", secret, mustChange);
    const reset = fake.calls.find((c) => c.stdin !== null)!;
    expect(reset.file).toBe(PS);
    expect(reset.args).toEqual([...PS_FLAGS, "-EncodedCommand", encodePowerShellCommand(SCRIPTS.reset)]);
    expect(reset.stdin!.toString("utf8")).toBe(`{"user":"bob","domain":false}\n${password}\n`);
    // The backend's copy of the secret is wiped once the command has run.
    expect(reset.stdinRef!.every((b) => b === 0)).toBe(true);
    // Never in argv (decoded script included) or in options such as env.
    for (const c of fake.calls) {
      const visible = [c.file, ...c.args, decodePowerShellCommand(c.args.at(-1) ?? ""), JSON.stringify({ ...c.options, stdin: undefined })].join("\n");
      expect(visible).not.toContain("N3w");
      expect(c.options).not.toHaveProperty("env");
    }
    const after = fake.calls.slice(fake.calls.indexOf(reset) + 1).find((c) => c.file === NET && c.args.length === 3);
    expect(after!.args).toEqual(["user", "bob", flag]);
  });

  it("resetPassword of a domain account uses the AD cmdlet path and /domain", async () => {
    const { accounts, fake } = backend();
    await accounts.resetPassword("zoe", Buffer.from(password), false);
    const reset = fake.calls.find((c) => c.stdin !== null)!;
    expect(reset.stdin!.toString().split("\n")[0]).toBe('{"user":"zoe","domain":true}');
    expect(SCRIPTS.reset).toContain("Set-ADAccountPassword -Identity $name -Reset -NewPassword $secure");
    expect(fake.calls.find((c) => c.args.includes("/logonpasswordchg:no"))!.args).toEqual(["user", "zoe", "/logonpasswordchg:no", "/domain"]);
  });

  it("reports a failed Set-LocalUser (password policy) as ACCOUNT_CHANGE_FAILED", async () => {
    const fake = new FakeWindows();
    fake.fail = (file, args) =>
      file === PS && decodePowerShellCommand(args.at(-1)!) === SCRIPTS.reset ? { code: 1, stdout: "", stderr: "The password does not meet the password policy requirements.\r\n" } : undefined;
    const err = await lifelineError(backend(fake).accounts.resetPassword("bob", Buffer.from(password), false));
    expect(err.code).toBe("ACCOUNT_CHANGE_FAILED");
    expect(err.message).toBe('Setting the password of "bob" failed: The password does not meet the password policy requirements.');
  });

  it("the reset script reads the secret from stdin and splices nothing", () => {
    expect(SCRIPTS.reset).toContain("[Console]::OpenStandardInput()");
    expect(SCRIPTS.reset).toContain("Set-LocalUser -Name $name -Password $secure");
    expect(SCRIPTS.reset).not.toMatch(/ConvertTo-SecureString|Invoke-Expression|iex /);
  });
});

describe("user names: injection attempts are refused before anything runs", () => {
  const attempts = ["alice'; Remove-Item C:\\ -Recurse", "alice$(calc)", 'alice" & calc', "alice & calc", "alice|calc", "-alice", "/delete", "alice\nbob", "alice;calc", "..\\alice", "alice`calc", "a".repeat(40), "", "alice bob"];

  it.each(attempts)("%j", async (name) => {
    const { accounts, fake } = backend();
    for (const action of [() => accounts.get(name), () => accounts.expire(name), () => accounts.clearFlag(name), () => accounts.resetPassword(name, Buffer.from("Secret123!"), false)]) {
      expect((await lifelineError(action())).code).toBe("VALIDATION_FAILED");
    }
    expect(fake.calls).toEqual([]);
  });

  it("an allowed name with $ stays data: argv element to net.exe, JSON on stdin", async () => {
    const fake = new FakeWindows();
    fake.data.users.push({ ...fake.data.users.find((u) => u.Name === "bob")!, Name: "svc$", SID: "S-1-5-21-1004336348-1177238915-682003330-1010" });
    const { accounts } = backend(fake);
    await accounts.resetPassword("svc$", Buffer.from("Secret123!"), true);
    const reset = fake.calls.find((c) => c.stdin !== null)!;
    expect(reset.args.at(-1)).toBe(encodePowerShellCommand(SCRIPTS.reset)); // same script for every user
    expect(reset.stdin!.toString().split("\n")[0]).toBe('{"user":"svc$","domain":false}');
    expect(fake.calls.find((c) => c.args.includes("/logonpasswordchg:yes"))!.args).toEqual(["user", "svc$", "/logonpasswordchg:yes"]);
  });

  it("psQuote makes a single-quoted literal with quotes doubled", () => {
    expect(psQuote("alice'; Remove-Item C:\\")).toBe("'alice''; Remove-Item C:\\'");
    expect(psQuote("alice$(calc)")).toBe("'alice$(calc)'");
    expect(psQuote("a\u2019b")).toBe("'a\u2019\u2019b'");
  });
});

describe("PowerShell -EncodedCommand", () => {
  it("is base64 of UTF-16LE and round-trips", () => {
    expect(encodePowerShellCommand("dir")).toBe("ZABpAHIA");
    for (const s of [SCRIPTS.list, SCRIPTS.reset, "Write-Output 'Grüße ✓ 日本'", ""]) expect(decodePowerShellCommand(encodePowerShellCommand(s))).toBe(s);
  });

  it("reads CLIXML error text", () => {
    expect(cleanPowerShellStderr('#< CLIXML\r\n<Objs><S S="Error">a &lt;b&gt; &amp; c_x000D__x000A_</S><S S="Error">d</S></Objs>')).toBe("a <b> & c\nd");
    expect(cleanPowerShellStderr("  plain error \r\n")).toBe("plain error");
  });
});

describe("Run Command on Windows", () => {
  const dir = "C:\\ProgramData\\Lifeline\\run";
  const opId = "op_12345678";

  it("runs a small PowerShell script with -EncodedCommand", () => {
    const plan = windowsRunPlan("powershell", "Get-Date\nexit 3", { dir, opId, systemRoot: "C:\\Windows" });
    expect(plan.file).toBe(PS);
    expect(plan.args.slice(0, 5)).toEqual([...PS_FLAGS, "-EncodedCommand"]);
    expect(decodePowerShellCommand(plan.args[5]!)).toBe("Get-Date\nexit 3");
    expect(plan.scriptFile).toBeNull();
  });

  it("puts a big PowerShell script in a temporary .ps1 (32,767-character command line)", () => {
    const script = `# ${"x".repeat(20_000)}\nWrite-Output 'ü'`;
    const plan = windowsRunPlan("powershell", script, { dir, opId, systemRoot: "C:\\Windows" });
    expect(plan.args).toEqual([...PS_FLAGS, "-File", `${dir}\\${opId}.ps1`]);
    expect(plan.scriptFile!.path).toBe(`${dir}\\${opId}.ps1`);
    expect([...plan.scriptFile!.content.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(plan.scriptFile!.content.subarray(3).toString("utf8")).toBe(script);
    expect([plan.file, ...plan.args].join(" ").length).toBeLessThan(32_767);
  });

  it("runs cmd scripts from a temporary .cmd with CRLF line ends", () => {
    const plan = windowsRunPlan("cmd", "echo one\nexit /b 4\n", { dir, opId, systemRoot: "C:\\Windows" });
    expect(plan.file).toBe("C:\\Windows\\System32\\cmd.exe");
    expect(plan.args).toEqual(["/d", "/v:off", "/s", "/c", `""${dir}\\${opId}.cmd""`]);
    expect(plan.windowsVerbatimArguments).toBe(true);
    expect(plan.scriptFile!.content.toString()).toBe("echo one\r\nexit /b 4\r\n");
  });

  it("refuses op ids and directories that would not be plain file names", async () => {
    expect((await lifelineError(() => windowsRunPlan("cmd", "echo", { dir, opId: "..\\..\\x" }))).code).toBe("VALIDATION_FAILED");
    expect((await lifelineError(() => windowsRunPlan("cmd", "echo", { dir: "C:\\%TEMP%", opId }))).code).toBe("VALIDATION_FAILED");
  });
});

describe("SpawnRunner (exercised with POSIX programs here)", () => {
  it("pipes stdin and hides the agent's LIFELINE_* environment", async () => {
    const runner = new SpawnRunner();
    expect(await runner.run("/bin/cat", [], { stdin: Buffer.from("secret\n") })).toEqual({ code: 0, stdout: "secret\n", stderr: "" });
    process.env.LIFELINE_TEST_PRIVATE = "do-not-leak";
    try {
      expect((await runner.run("/usr/bin/env", [])).stdout).not.toContain("do-not-leak");
    } finally {
      delete process.env.LIFELINE_TEST_PRIVATE;
    }
    expect((await runner.run("/nonexistent/program", [])).code).toBe(127);
  });
});

describe("run plans per platform (the run op)", () => {
  const args = (interpreter: "sh" | "powershell" | "cmd", script = "echo hi") => ({ interpreter, script, timeoutMs: 1000, outputCapBytes: 1024 });
  it("Linux: sh from a private file; powershell and cmd refused", async () => {
    const { launchPlan } = await import("../../src/agent/ops/run.js");
    expect(launchPlan("linux", args("sh"), "/state/run", "op12345678")).toEqual({
      file: "/bin/sh",
      args: ["/state/run/op12345678.sh"],
      windowsVerbatimArguments: false,
      scriptFile: { path: "/state/run/op12345678.sh", content: "echo hi" },
    });
    expect(() => launchPlan("linux", args("powershell"), "/state/run", "op12345678")).toThrow(/needs a Windows agent/);
    expect(() => launchPlan("linux", args("cmd"), "/state/run", "op12345678")).toThrow(/needs a Windows agent/);
  });
  it("Windows: PowerShell by -EncodedCommand, cmd from a .cmd file; sh refused", async () => {
    const { launchPlan } = await import("../../src/agent/ops/run.js");
    const ps = launchPlan("win32", args("powershell", "Get-Date"), "C:\\ProgramData\\Lifeline\\run", "op12345678");
    expect(ps.file).toMatch(/powershell\.exe$/);
    expect(ps.args).toContain("-EncodedCommand");
    expect(ps.scriptFile).toBeNull();
    const cmd = launchPlan("win32", args("cmd", "echo a\necho b"), "C:\\ProgramData\\Lifeline\\run", "op12345678");
    expect(cmd.file).toMatch(/cmd\.exe$/);
    expect(cmd.windowsVerbatimArguments).toBe(true);
    expect(cmd.scriptFile!.content.toString()).toBe("echo a\r\necho b");
    expect(() => launchPlan("win32", args("sh"), "C:\\x", "op12345678")).toThrow(/needs a Linux agent/);
  });
});
