// Bundles the agent (src/bin/lifeline-agent.ts) into one CommonJS file, the input Node's single
// executable applications take; with --sea, also injects it into a copy of this Node binary:
// dist-bundle/lifeline-agent, one file that runs the agent with nothing installed. For Windows,
// the same steps run with node.exe (docs/windows.md).
import { execFileSync } from "node:child_process";
import process from "node:process";
import { copyFileSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

const OUT = "dist-bundle";
await build({
  entryPoints: ["src/bin/lifeline-agent.ts"],
  outfile: `${OUT}/lifeline-agent.cjs`,
  bundle: true,
  platform: "node",
  target: "node24",
  format: "cjs",
  // ssh2 (reachable from the CLI code, never run by the agent) probes optional native addons.
  external: ["cpu-features", "*.node"],
  legalComments: "none",
  logLevel: "warning",
});

if (process.argv.includes("--sea")) {
  writeFileSync(`${OUT}/sea-config.json`, JSON.stringify({ main: `${OUT}/lifeline-agent.cjs`, output: `${OUT}/sea-prep.blob`, disableExperimentalSEAWarning: true }));
  execFileSync(process.execPath, ["--experimental-sea-config", `${OUT}/sea-config.json`], { stdio: "inherit" });
  copyFileSync(process.execPath, `${OUT}/lifeline-agent`);
  // The fuse is the sentinel string Node's docs name for single executable applications.
  execFileSync(process.execPath, ["node_modules/postject/dist/cli.js", `${OUT}/lifeline-agent`, "NODE_SEA_BLOB", `${OUT}/sea-prep.blob`, "--sentinel-fuse", "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2"], { stdio: "inherit" });
}
