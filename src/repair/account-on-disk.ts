/**
 * One account fix on a mounted system disk, whatever the OS on it: the Linux shadow file, or
 * for Windows the SAM (keep the password) or the seed's Group Policy startup script (a new
 * password, set by Windows itself at the next boot). Used by every server path that repairs a
 * machine's disk through its driver (fix-logon's offline path, `lifeline repair run`).
 */
import { detectOs } from "../disk/volumes.js";
import { LifelineError, type Account } from "../protocol/index.js";
import { editShadowOnDisk } from "./shadow-file.js";
import { cryptSalt, sha512Crypt } from "./sha512-crypt.js";
import { fixWindowsAccount } from "./windows-volume.js";

export type OfflineAccountFix =
  | { kind: "clear-flag" }
  /**
   * `saltSeed` makes the Linux hash, and `scriptId` the Windows script, the same for the same
   * request: a resumed job writes the very same bytes. Omitted, both are random.
   */
  | { kind: "set-password"; password: Buffer; saltSeed?: string; scriptId: string };

export interface OfflineAccountResult {
  os: "linux" | "windows";
  method: "shadow" | "sam" | "startup-script";
  before: Account;
  /** As the disk says now; for startup-script, as it says until the next boot runs the script. */
  after: Account;
  /** True when the change happens only at the next boot (the startup script). */
  pendingUntilBoot: boolean;
  /** One line for a job step or a log: where, what, from which state to which. */
  summary: string;
}

export async function fixAccountOnDisk(mount: string, user: string, fix: OfflineAccountFix): Promise<OfflineAccountResult> {
  const os = await detectOs(mount);
  if (!os) throw new LifelineError("DISK_INVALID", "The attached disk holds no Linux (etc/shadow) or Windows (Windows/System32/config/SAM) system");
  if (os.kind === "linux") {
    const edit =
      fix.kind === "clear-flag"
        ? ({ kind: "clear-flag" } as const)
        : ({ kind: "set-password", hash: sha512Crypt(fix.password, cryptSalt(fix.saltSeed)), mustChange: false } as const);
    const { before, after } = await editShadowOnDisk(mount, user, edit);
    const what = fix.kind === "clear-flag" ? "must-change cleared, password kept" : "new password hash written";
    return { os: "linux", method: "shadow", before, after, pendingUntilBoot: false, summary: `etc/shadow on the disk: ${before.state} -> ${after.state} (${what})` };
  }
  if (fix.kind === "clear-flag") {
    const { before, after } = await fixWindowsAccount(mount, user, { kind: "keep-password" });
    return { os: "windows", method: "sam", before, after, pendingUntilBoot: false, summary: `SAM hive on the disk: ${before.state} -> ${after.state} (must-change cleared, password kept)` };
  }
  const { before, after, script } = await fixWindowsAccount(mount, user, {
    kind: "startup-script",
    id: fix.scriptId,
    action: { kind: "reset-password", password: fix.password.toString("utf8") },
  });
  return {
    os: "windows",
    method: "startup-script",
    before,
    after,
    pendingUntilBoot: true,
    summary: `Group Policy startup script ${script?.script ?? ""} written: the next boot sets the new password and clears must-change (account ${before.state} until then)`,
  };
}
