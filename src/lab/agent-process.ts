import { dirname, resolve } from "node:path";
import type { HostProcessSpec } from "./state.js";

export const AGENT_STATE_DIR = "/var/lib/lifeline-agent";

// Like a service manager's "disabled": while /etc/lifeline/agent-disabled exists on the host's
// disk, the agent is not started (offline repair's --repair-agent removes it). A fixed script;
// the real command comes as its arguments, so nothing is spliced into it.
const START_UNLESS_DISABLED = 'if [ -e /etc/lifeline/agent-disabled ]; then exec sleep 2147483647; fi; exec "$@"';

/** The folders a host must see (read-only) to run this lifeline.js with this Node. */
export function agentBinds(binary: string): { source: string }[] {
  const repo = resolve(dirname(binary), "../..");
  const nodePrefix = resolve(dirname(process.execPath), "..");
  const sources = [repo, nodePrefix].filter((dir, i, all) => !all.some((other, j) => j !== i && dir.startsWith(other + "/")));
  return [...new Set(sources)].map((source) => ({ source }));
}

/** The process a lab host runs for its Lifeline agent. The one-time token goes in env, not argv. */
export function agentHostProcess(opts: { binary: string; serverUrl: string; name: string; enrollToken?: string }): HostProcessSpec {
  return {
    argv: ["/bin/sh", "-c", START_UNLESS_DISABLED, "lifeline-agent", process.execPath, opts.binary, "agent", "--server", opts.serverUrl, "--name", opts.name, "--state-dir", AGENT_STATE_DIR, "--log-level", "warn"],
    env: opts.enrollToken ? { LIFELINE_ENROLL_TOKEN: opts.enrollToken } : {},
    binds: agentBinds(opts.binary),
  };
}
