import type { Command } from "commander";
import { LifelineError, type Job } from "../../protocol/index.js";
import type { ApiClient } from "../../client/api-client.js";
import { DOMAIN_OPTION, resolveAccountTarget, type AccountTarget, type DomainOption } from "../account-target.js";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";
import { checkPasswordPolicy, generatePassword, passwordFromStdin, promptHidden, promptNewPassword } from "../password.js";
import { sealedReset, sealedVerify } from "../sealing.js";
import { followJob, jobExitStatus, printJobSteps } from "../job-output.js";

interface Flags {
  keepPassword?: boolean;
  passwordStdin?: boolean;
  generate?: boolean;
  snapshot: boolean;
  rollbackOnFailure?: boolean;
  repairAgent?: boolean;
  dryRun?: boolean;
  domain?: DomainOption;
}

// The job may spend time on a snapshot before it reaches the fix: the sealed password lives longer.
const FIX_SEAL_VALIDITY_MS = 10 * 60_000;

async function passwordFor(flags: Flags, user: string): Promise<string> {
  if (flags.keepPassword) {
    return flags.passwordStdin ? passwordFromStdin() : promptHidden(`Current password of ${user} (to verify the login): `);
  }
  if (flags.generate) return generatePassword();
  const password = flags.passwordStdin ? await passwordFromStdin() : await promptNewPassword();
  checkPasswordPolicy(password);
  return password;
}

async function dryRun(client: ApiClient, machine: string, target: AccountTarget, flags: Flags, format: "json" | "table"): Promise<void> {
  const m = await client.getMachine(machine);
  const fixer = target.realm ? await client.getMachine((await client.getDomain(target.realm)).via) : m;
  const account = fixer.status === "Ready" ? (await client.getAccount(target.realm ? { realm: target.realm } : machine, target.user)).account : undefined;
  const offline = !target.realm && m.status !== "Ready" && m.driver !== null;
  const change = flags.keepPassword ? "clear the must-change flag, keeping the password" : "set the new password and clear must-change";
  const steps = [
    {
      name: "check-agent",
      action: target.realm
        ? `domain ${target.realm}: the fix goes through the agent of ${fixer.name}, which is ${fixer.status}`
        : `agent is ${m.status}${m.reason ? ` (${m.reason})` : ""}${m.status === "Ready" ? ": online fix" : offline ? ": offline repair of the disk" : ""}`,
    },
    { name: "diagnose", action: account ? `${account.state}: ${account.evidence.join("; ")}` : "cannot diagnose: agent NotReady" },
    { name: "snapshot", action: flags.snapshot ? (m.driver ? `would snapshot the disk through the ${m.driver.driver} driver` : "would fail: no driver (set one or use --no-snapshot)") : "skipped (--no-snapshot)" },
    ...(offline
      ? [
          { name: "stop", action: "would stop the machine" },
          { name: "attach", action: "would attach its disk to a rescue host" },
          { name: "edit", action: `would ${change} in the disk's etc/shadow` },
          { name: "repair-agent", action: flags.repairAgent ? "would re-enable the Lifeline agent on the disk" : "skipped (no --repair-agent)" },
          { name: "detach", action: "would give the disk back" },
          { name: "start", action: "would start the machine" },
        ]
      : [{ name: "fix", action: account?.state === "ok" ? "nothing to fix" : `would ${change} through the agent` }]),
    {
      name: "verify",
      action: target.realm
        ? `would bind to LDAP as ${target.label}${m.facts?.domainRealm === target.realm ? ` and log in over SSH to ${machine}` : ""}`
        : "would log in over SSH from the server with the password",
    },
  ];
  if (format === "json") return printJson({ dryRun: true, steps });
  for (const s of steps) process.stdout.write(`${s.name.padEnd(12)} ${s.action}\n`);
}

export function registerFixLogon(program: Command): void {
  program
    .command("fix-logon")
    .description("the whole runbook: check the agent, diagnose, snapshot the disk, fix, verify a real login; roll back on failure")
    .argument("<machine>", "machine name")
    .argument("<user>", "user who cannot log in (LAB\\user or user@realm for a domain account)")
    .option("--keep-password", "clear the must-change flag instead of setting a new password")
    .option("--password-stdin", "read the password (new, or current with --keep-password) from stdin")
    .option("--generate", "generate a strong new password and show it once")
    .option("--no-snapshot", "do not snapshot the disk first (no way back)")
    .option("--rollback-on-failure", "revert to the snapshot automatically if a step fails")
    .option("--repair-agent", "offline path: also re-enable the Lifeline agent on the disk so the machine comes back manageable")
    .option("--dry-run", "say what it would do; change nothing")
    .option(...DOMAIN_OPTION)
    .action(async (machine: string, userArg: string, flags: Flags, command: Command) => {
      const { client, format } = contextOf(command);
      const target = await resolveAccountTarget(client, machine, userArg, flags.domain);
      const { user, realm } = target;
      if (flags.generate && (flags.passwordStdin || flags.keepPassword)) throw new LifelineError("USAGE", "--generate goes with neither --password-stdin nor --keep-password");
      if (!flags.snapshot) process.stderr.write("lifeline: warning: --no-snapshot: if the fix goes wrong there is no snapshot to go back to\n");
      if (flags.dryRun) return dryRun(client, machine, target, flags, format);
      const password = await passwordFor(flags, target.label);
      // Sealed to the agent that makes the fix (the domain's, for a domain account), bound to the op id.
      const fix = await sealedReset(client, machine, user, password, { ...(realm ? { realm } : {}), validityMs: FIX_SEAL_VALIDITY_MS });
      const verify = await sealedVerify(client, machine, user, password, FIX_SEAL_VALIDITY_MS, realm);
      const job = await client.fixLogon(machine, {
        user,
        keepPassword: flags.keepPassword ?? false,
        noSnapshot: !flags.snapshot,
        rollbackOnFailure: flags.rollbackOnFailure ?? false,
        repairAgent: flags.repairAgent ?? false,
        fixOpId: fix.opId,
        fixExpiresAt: fix.expiresAt,
        ...(flags.keepPassword ? {} : { sealed: fix.sealed }),
        verify,
        ...(realm ? { realm } : {}),
      });
      if (format === "table") process.stderr.write(`job ${job.id}: fix-logon ${machine} ${target.label}\n`);
      const final: Job = await followJob(client, job.id, format === "table" && process.stderr.isTTY);
      if (format === "json") printJson({ ...final, ...(flags.generate ? { password } : {}) });
      else {
        printJobSteps(final);
        if (flags.generate && final.state === "succeeded") process.stdout.write(`new password (shown once): ${password}\n`);
      }
      process.exitCode = jobExitStatus(final);
    });
}
