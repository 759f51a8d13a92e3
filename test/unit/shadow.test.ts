import { describe, expect, it } from "vitest";
import { diagnoseAll, parseShadow, ShadowParseError } from "../../src/repair/shadow.js";
import { Username } from "../../src/protocol/index.js";

const DAY = 86_400_000;
const today = 20_000;
const now = today * DAY + 3600_000;
const passwd = [
  "root:x:0:0:root:/root:/bin/bash",
  "alice:x:1000:1000::/home/alice:/bin/bash",
  "bob:x:1001:1001::/home/bob:/bin/bash",
  "carol:x:1002:1002::/home/carol:/bin/bash",
  "dave:x:1003:1003::/home/dave:/bin/bash",
  "erin:x:1004:1004::/home/erin:/usr/sbin/nologin",
  "frank:x:1005:1005::/home/frank:/bin/bash",
  "grace:x:1006:1006::/home/grace:/bin/bash",
  "heidi:x:1007:1007::/home/heidi:/bin/bash",
].join("\n") + "\n";
const shadow = [
  `root:$y$j9T$a$b:${today - 10}:0:99999:7:::`,
  "alice:$y$j9T$a$b:0:0:99999:7:::",
  `bob:$y$j9T$a$b:${today - 100}:0:90:7:::`,
  `carol:$y$j9T$a$b:${today - 100}:0:90:7:5::`,
  `dave:!$y$j9T$a$b:${today}:0:99999:7:::`,
  `erin:$y$j9T$a$b:${today}:0:99999:7:::`,
  `frank:$y$j9T$a$b:${today}:0:99999:7::${today - 1}:`,
  `grace:*:${today}:0:99999:7:::`,
  `heidi:$y$j9T$a$b:${today - 5}:0:99999:7:::`,
].join("\n") + "\n";

describe("account diagnosis from passwd + shadow", () => {
  const byName = Object.fromEntries(diagnoseAll(passwd, shadow, now).map((a) => [a.name, a]));
  it.each([
    ["alice", "must-change", "must change password at next logon (shadow lastchg = 0)"],
    ["bob", "expired", "password expired on day"],
    ["carol", "inactive", "grace ended"],
    ["dave", "locked", "locked"],
    ["erin", "disabled", "login shell is /usr/sbin/nologin"],
    ["frank", "disabled", "account expired on day"],
    ["grace", "no-password", "no password is set"],
    ["heidi", "ok", "password login is possible"],
  ])("%s is %s", (name, state, evidence) => {
    expect(byName[name]!.state).toBe(state);
    expect(byName[name]!.evidence.join(" | ")).toContain(evidence);
  });
  it("marks root and uid < 1000 as system accounts", () => {
    expect(byName.root!.system).toBe(true);
    expect(byName.alice!.system).toBe(false);
  });
  it("refuses a shadow file that does not parse, naming the line", () => {
    expect(() => parseShadow("alice:x:0:0\n")).toThrow(ShadowParseError);
    expect(() => parseShadow("ok:x:1:0:99999:7:::\nbad:x:notanumber:0:99999:7:::\n")).toThrow(/line 2: last change/);
  });
});

describe("username grammar", () => {
  it.each(["alice", "bob.smith", "_svc", "user-1", "machine$"])("accepts %s", (u) => expect(Username.safeParse(u).success).toBe(true));
  it.each(["-rf", "alice;reboot", "$(id)", "a:b", "alice\nroot", "a/b", "", "x".repeat(33), "alice bob", "`id`"])("refuses %j", (u) =>
    expect(Username.safeParse(u).success).toBe(false),
  );
});
