// Domain accounts on a real Samba AD DC in the lab: lab domain start (provision + samba up +
// seed users + delegated service account, cold), the join of one host, then `reset-password
// --domain` (seal to the domain's agent, API, agent, LDAPS modify, read back) and a domain
// login check (LDAP bind through the agent + SSH as LAB\alice on the joined host), p50 over 30
// runs each. Needs root.
import { ApiClient } from "../src/client/api-client.js";
import { sealedDomainCredential, sealedReset, sealedVerify } from "../src/cli/sealing.js";
import { joinLabDomain, SEED_USERS, startLabDomain } from "../src/lab/index.js";
import { readFileSync } from "node:fs";
import { ms, summary, verdict } from "./common.js";
import { startBenchLabFleet } from "./lab-fleet.js";

const RUNS = 30;
const REALM = "BENCH.LIFELINE.TEST";

export async function benchDomain(): Promise<string[]> {
  const fleet = await startBenchLabFleet("benchdom", "10.231.91.0/24", ["lab-1"]);
  const { server, lab } = fleet;
  try {
    const t0 = performance.now();
    const domain = await startLabDomain({ labName: lab.name, labDir: lab.labDir, subnet: lab.subnet, realm: REALM, users: SEED_USERS });
    const startMs = performance.now() - t0;
    const t1 = performance.now();
    await joinLabDomain(lab, "lab-1", domain);
    const joinMs = performance.now() - t1;
    const client = new ApiClient(server.url, server.token);
    const credential = await sealedDomainCredential(client, "lab-1", REALM, domain.serviceUser, domain.servicePassword);
    await client.addDomain({ via: "lab-1", settings: { realm: REALM, bindUser: domain.serviceUser, servers: [domain.dcHost], caPem: readFileSync(domain.caFile, "utf8") }, ...credential });
    // The agent reports the join on its next heartbeat; the SSH half of the check needs it.
    for (let i = 0; i < 300 && (await client.getMachine("lab-1")).facts?.domainRealm !== REALM; i++) await new Promise((r) => setTimeout(r, 100));
    const resets: number[] = [];
    const verifies: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const password = `Bench-Dom-Passw0rd-${i}`;
      const a = performance.now();
      const sealed = await sealedReset(client, "lab-1", "alice", password, { realm: REALM });
      const { account } = await client.resetPassword({ realm: REALM }, "alice", { ...sealed, mustChange: false, allowSystem: false });
      resets.push(performance.now() - a);
      if (account.state !== "ok") throw new Error(`reset left alice ${account.state}`);
      const b = performance.now();
      const v = await client.verifyLogin("lab-1", "alice", await sealedVerify(client, "lab-1", "alice", password, undefined, REALM));
      verifies.push(performance.now() - b);
      if (v.outcome !== "ok" || !v.detail.includes("SSH login")) throw new Error(`verify said ${v.outcome}: ${v.detail}`);
    }
    const r = summary(resets);
    const v = summary(verifies);
    return [
      `lab domain start (provision, samba up, seed users, delegated service account): ${ms(startMs)}; join of one host: ${ms(joinMs)}`,
      `reset-password --domain end to end over ${RUNS} runs: p50 ${ms(r.p50)}, p99 ${ms(r.p99)}`,
      `domain login check (LDAP bind via agent + SSH as LAB\\alice) over ${RUNS} runs: p50 ${ms(v.p50)}, p99 ${ms(v.p99)}`,
      verdict("reset-password --domain p50", r.p50, 500, "ms"),
    ];
  } finally {
    await fleet.stop();
  }
}
