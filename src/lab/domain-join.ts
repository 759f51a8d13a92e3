/**
 * Joins a running lab host to the lab's domain as a Linux member server does: smb.conf for
 * winbind (security = ads, idmap rid), Kerberos and DNS pointing at the DC, `net ads join`,
 * then winbindd. SSH logins as NETBIOS\user then go through PAM -> winbind -> the DC, so a
 * domain user who must change the password cannot log in, as on a real member.
 */
import type { LabDomain } from "./domain.js";
import { LabError } from "./errors.js";
import type { Lab } from "./lab.js";
import { sleep } from "./procs.js";

const WINBIND_WAIT_MS = 20_000;

const smbConf = (d: LabDomain) => `# Written by the Lifeline lab: a member of ${d.realm}.
[global]
   workgroup = ${d.netbios}
   realm = ${d.realm}
   security = ads
   kerberos method = secrets and keytab
   idmap config * : backend = tdb
   idmap config * : range = 3000-7999
   idmap config ${d.netbios} : backend = rid
   idmap config ${d.netbios} : range = 100000-999999
   template homedir = /home/%D/%U
   template shell = /bin/bash
   # A changed password must count at once: no cached logons.
   winbind offline logon = no
   disable netbios = yes
`;

const krb5Conf = (d: LabDomain) => `[libdefaults]
   default_realm = ${d.realm}
   dns_lookup_kdc = true
   dns_lookup_realm = false
   rdns = false
`;

/**
 * Debian's pam-auth-update puts pam_unix first in the account stack, and pam_unix accepts any
 * user NSS knows: the DC's "must change password" answer would never be asked for. As Samba
 * recommends for members, winbind decides for domain users (user_unknown: not ours, go on).
 */
const COMMON_ACCOUNT = `# Written by the Lifeline lab (domain member): winbind first for domain users.
account\t[success=ok new_authtok_reqd=done user_unknown=ignore default=bad]\tpam_winbind.so
account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so
account\trequisite\tpam_deny.so
account\trequired\tpam_permit.so
`;

async function writeInHost(lab: Lab, host: string, path: string, content: string): Promise<void> {
  // The path travels as "$1", the content on stdin: nothing is spliced into the script.
  const r = await lab.exec(host, ["sh", "-c", 'cat > "$1.lifeline-tmp" && mv "$1.lifeline-tmp" "$1"', "sh", path], { input: content });
  if (r.exitCode !== 0) throw new LabError("LAB_COMMAND_FAILED", `Cannot write ${path} on "${host}": ${r.stderr.trim()}`);
}

async function inHost(lab: Lab, host: string, argv: string[], what: string, input?: string): Promise<string> {
  const r = await lab.exec(host, argv, { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
  if (r.exitCode !== 0) throw new LabError("LAB_COMMAND_FAILED", `${what} failed on "${host}": ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Joins the host (idempotent: a joined host is only checked) and starts winbindd in it. */
export async function joinLabDomain(lab: Lab, host: string, domain: LabDomain): Promise<void> {
  await writeInHost(lab, host, "/etc/samba/smb.conf", smbConf(domain));
  await writeInHost(lab, host, "/etc/krb5.conf", krb5Conf(domain));
  await writeInHost(lab, host, "/etc/resolv.conf", `nameserver ${domain.address}\nsearch ${domain.realm.toLowerCase()}\n`);
  await writeInHost(lab, host, "/etc/pam.d/common-account", COMMON_ACCOUNT);
  const joined = await lab.exec(host, ["net", "ads", "testjoin"], { timeoutMs: 30_000 });
  if (joined.exitCode !== 0) {
    // The lab-only admin password goes in on stdin and reaches net through its PASSWD variable.
    await inHost(lab, host, ["sh", "-c", 'read -r PASSWD; export PASSWD; exec net ads join -U "$1" --no-dns-updates', "sh", domain.adminUser], "net ads join", `${domain.adminPassword}\n`);
  }
  // lifeline-init supervises winbindd from the next boot on (it starts it on joined hosts); now, start it once.
  const ping = await lab.exec(host, ["wbinfo", "-p"]);
  if (ping.exitCode !== 0) await inHost(lab, host, ["winbindd", "-D"], "winbindd");
  const deadline = Date.now() + WINBIND_WAIT_MS;
  for (;;) {
    const probe = await lab.exec(host, ["getent", "passwd", `${domain.netbios}\\${domain.adminUser}`]);
    if (probe.exitCode === 0) return;
    if (Date.now() > deadline) throw new LabError("LAB_COMMAND_FAILED", `winbind on "${host}" does not resolve domain users after the join`);
    await sleep(200);
  }
}
