#!/usr/bin/env node
// The one `lifeline` binary: the CLI, plus the server and agent entry points wired in here so
// that cli/, server/ and agent/ never import each other.
import { registerAgentCommand } from "../agent/command.js";
import { runCli } from "../cli/program.js";
import { registerLabCommand } from "../lab/command.js";
import { registerServerCommand } from "../server/command.js";

// `lifeline ... | head` closes the pipe early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const status = await runCli(process.argv.slice(2), [registerServerCommand, registerAgentCommand, registerLabCommand]);
process.exitCode = status;
