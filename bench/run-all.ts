// Runs the benchmarks and prints their figures. Pick some with arguments: run-all.js roundtrip idle
import { benchAccounts } from "./accounts.bench.js";
import { benchAgentIdle } from "./agent-idle.bench.js";
import { benchDomain } from "./domain.bench.js";
import { benchDisk } from "./disk.bench.js";
import { benchFanout } from "./fanout.bench.js";
import { benchFixLogon } from "./fix-logon.bench.js";
import { benchLabUp } from "./lab-up.bench.js";
import { benchQemu } from "./qemu.bench.js";
import { benchSnapshot } from "./snapshot.bench.js";
import { benchRunRoundTrip, benchRunRoundTripPostgres } from "./run-roundtrip.bench.js";

const BENCHES: Record<string, () => Promise<string[]>> = {
  roundtrip: () => benchRunRoundTrip(),
  "roundtrip-pg": benchRunRoundTripPostgres,
  fanout: benchFanout,
  idle: benchAgentIdle,
  lab: benchLabUp,
  accounts: benchAccounts,
  domain: benchDomain,
  disk: benchDisk,
  snapshot: benchSnapshot,
  "fix-logon": benchFixLogon,
  qemu: benchQemu,
};

const wanted = process.argv.slice(2).filter((a) => a !== "--");
for (const [name, bench] of Object.entries(BENCHES)) {
  if (wanted.length && !wanted.includes(name)) continue;
  process.stdout.write(`== ${name}\n`);
  for (const line of await bench()) process.stdout.write(`   ${line}\n`);
}
