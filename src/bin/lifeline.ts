#!/usr/bin/env node
// The one `lifeline` binary: the CLI, plus the server and agent entry points wired in here so
// that cli/, server/ and agent/ never import each other.
import { registerAgentCommand } from "../agent/command.js";
import { runCli } from "../cli/program.js";
import { registerServerCommand } from "../server/command.js";

const status = await runCli(process.argv.slice(2), [registerServerCommand, registerAgentCommand]);
process.exitCode = status;
