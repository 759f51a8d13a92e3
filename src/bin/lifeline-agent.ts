// The agent alone, for machines that only run the agent (Windows included): the CLI core and
// `lifeline agent`, bundled into one file by scripts/bundle-agent.mjs. No server, no lab.
import { registerAgentCommand } from "../agent/command.js";
import { runCli } from "../cli/program.js";

void runCli(process.argv.slice(2), [registerAgentCommand]).then((status) => {
  process.exitCode = status;
});
