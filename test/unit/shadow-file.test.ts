import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { editShadowOnDisk } from "../../src/repair/shadow-file.js";
import { sha512Crypt } from "../../src/repair/sha512-crypt.js";
import { tempDir } from "../helpers/processes.js";

// Offline edits on a real directory tree laid out like a mounted root filesystem.
describe("offline /etc/shadow edit", () => {
  let root: ReturnType<typeof tempDir>;
  const shadowText = "root:*:19000:0:99999:7:::\nalice:$y$j9T$old$hash:0:0:99999:7:::\nbob:!$y$j9T$b$h:19000:0:99999:7:::\n# trailing comment kept\n";
  const shadowPath = () => join(root.path, "etc", "shadow");
  beforeEach(() => {
    root = tempDir("shadowfile");
    mkdirSync(join(root.path, "etc"));
    writeFileSync(join(root.path, "etc", "passwd"), "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\n");
    writeFileSync(shadowPath(), shadowText);
    chmodSync(shadowPath(), 0o640);
    chownSync(shadowPath(), 0, 42);
  });
  afterEach(() => root.remove());

  it("changes only the user's line, keeps mode and owner, and sets a hash the machine can check", async () => {
    const hash = sha512Crypt(Buffer.from("New-Passw0rd"), "abcdefghijklmnop");
    const { before, after } = await editShadowOnDisk(root.path, "alice", { kind: "set-password", hash, mustChange: false });
    expect(before.state).toBe("must-change");
    expect(after.state).toBe("ok");
    const oldLines = shadowText.split("\n");
    const newLines = readFileSync(shadowPath(), "utf8").split("\n");
    expect(newLines.length).toBe(oldLines.length);
    const changed = newLines.map((l, i) => (l === oldLines[i] ? null : i)).filter((i) => i !== null);
    expect(changed).toEqual([1]);
    expect(newLines[1]).toMatch(new RegExp(`^alice:${hash.replace(/[$.]/g, "\\$&")}:\\d+:0:99999:7:::$`));
    const info = statSync(shadowPath());
    expect([info.mode & 0o777, info.uid, info.gid]).toEqual([0o640, 0, 42]);
  });

  it("clear-flag keeps the hash and unlocks a locked one", async () => {
    const { after } = await editShadowOnDisk(root.path, "bob", { kind: "clear-flag" });
    expect(after.state).toBe("ok");
    expect(readFileSync(shadowPath(), "utf8").split("\n")[2]).toMatch(/^bob:\$y\$j9T\$b\$h:\d+:/);
  });

  it("refuses a shadow file that does not parse and writes nothing", async () => {
    writeFileSync(shadowPath(), "alice:x:notanumber:0:99999:7:::\n");
    await expect(editShadowOnDisk(root.path, "alice", { kind: "clear-flag" })).rejects.toMatchObject({ code: "SHADOW_INVALID" });
    expect(readFileSync(shadowPath(), "utf8")).toBe("alice:x:notanumber:0:99999:7:::\n");
  });

  it("refuses an unknown user and a shadow that is a symlink", async () => {
    await expect(editShadowOnDisk(root.path, "mallory", { kind: "clear-flag" })).rejects.toMatchObject({ code: "ACCOUNT_NOT_FOUND" });
    const elsewhere = join(root.path, "elsewhere");
    writeFileSync(elsewhere, shadowText);
    const { rmSync } = await import("node:fs");
    rmSync(shadowPath());
    symlinkSync(elsewhere, shadowPath());
    await expect(editShadowOnDisk(root.path, "alice", { kind: "clear-flag" })).rejects.toMatchObject({ code: "SHADOW_INVALID" });
    expect(readFileSync(elsewhere, "utf8")).toBe(shadowText);
  });
});
