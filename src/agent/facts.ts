import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { arch, hostname, networkInterfaces, platform, release } from "node:os";
import { REALM_PATTERN, type MachineFacts } from "../protocol/index.js";

function osPrettyName(): string {
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    const match = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text);
    return (match?.[1] ?? "").slice(0, 256);
  } catch {
    return "";
  }
}

/** Fingerprints of /etc/ssh/ssh_host_*_key.pub, as `ssh-keygen -lf` prints them. */
function sshHostKeys(): string[] {
  try {
    return readdirSync("/etc/ssh")
      .filter((f) => /^ssh_host_.*_key\.pub$/.test(f))
      .flatMap((f) => {
        const blob = readFileSync(`/etc/ssh/${f}`, "utf8").trim().split(/\s+/)[1];
        return blob ? [`SHA256:${createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64").replace(/=+$/, "")}`] : [];
      })
      .slice(0, 16);
  } catch {
    return [];
  }
}

/**
 * The AD realm this machine is a member of, as its Samba configuration says (winbind joins
 * write `security = ads` and `realm = ...`); null when it is not joined.
 */
export function domainRealm(smbConf = "/etc/samba/smb.conf"): string | null {
  let text: string;
  try {
    text = readFileSync(smbConf, "utf8");
  } catch {
    return null;
  }
  const setting = (key: string) => new RegExp(`^\\s*${key}\\s*=\\s*(\\S+)\\s*$`, "im").exec(text)?.[1];
  const realm = setting("realm")?.toUpperCase();
  return setting("security")?.toLowerCase() === "ads" && realm && REALM_PATTERN.test(realm) ? realm : null;
}

export function collectFacts(): MachineFacts {
  const addresses = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal)
    .map((a) => a!.address)
    .slice(0, 64);
  return { os: platform(), osPretty: osPrettyName(), arch: arch(), kernel: release().slice(0, 256), hostname: hostname().slice(0, 255), addresses, sshHostKeys: sshHostKeys(), domainRealm: domainRealm() };
}
