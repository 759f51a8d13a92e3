import { agentHostProcess } from "../../src/lab/agent-process.js";
import { joinLabDomain, SEED_USERS, startLabDomain, type LabDomain } from "../../src/lab/index.js";
import { TestFleet } from "./fleet.js";
import { startLab, type TestLab } from "./lab.js";
import { LIFELINE_BIN } from "./processes.js";

/**
 * A real server on a test lab's gateway address and lab hosts whose agents (the real agent,
 * bind-mounted from this checkout) enroll to it: machines with their own sshd, PAM and
 * /etc/shadow that the tests may change freely.
 */
export async function startLabFleet(opts: { hosts: number; domain?: string }): Promise<{ fleet: TestFleet; lab: TestLab; domain: LabDomain | undefined; stop(): Promise<void> }> {
  const lab = await startLab({ hosts: 0 });
  const fleet = new TestFleet();
  let domain: LabDomain | undefined;
  try {
    if (opts.domain) domain = await startLabDomain({ labName: lab.name, labDir: lab.labDir, subnet: lab.lab.subnet, realm: opts.domain, users: SEED_USERS });
    await fleet.start({ host: lab.gatewayAddress });
    const names = Array.from({ length: opts.hosts }, (_, i) => `lab-${i + 1}`);
    const tokens = new Map<string, string>();
    for (const name of names) tokens.set(name, await fleet.enrollToken());
    const status = await lab.lab.up({
      hosts: names,
      process: (h) => agentHostProcess({ binary: LIFELINE_BIN, serverUrl: fleet.url, name: h.name, enrollToken: tokens.get(h.name) }),
    });
    lab.hosts.push(...status.hosts.map(({ name, address, diskPath }) => ({ name, address, diskPath })));
    for (const name of names) {
      await fleet.waitStatus(name, "Ready", undefined, 30_000);
      const set = await fleet.cli(["machines", "set-driver", name, "--driver", "lab", "--ref", `lab=${lab.name}`, "--ref", `host=${name}`, "--ref", `labDir=${lab.labDir}`]);
      if (set.code !== 0) throw new Error(`set-driver ${name}: ${set.stderr}`);
      if (domain) await joinLabDomain(lab.lab, name, domain);
    }
  } catch (err) {
    await fleet.stop();
    await lab.down();
    throw err;
  }
  return {
    fleet,
    lab,
    domain,
    async stop() {
      await fleet.stop();
      await lab.down();
    },
  };
}
