import { dirname } from "node:path";
import { agentHostProcess } from "../src/lab/agent-process.js";
import { Lab } from "../src/lab/index.js";
import { BIN, api, enrollToken, startBenchServer, waitReady } from "./common.js";

/** A one-lab benchmark fleet: a real server on the lab gateway and hosts with real agents. */
export async function startBenchLabFleet(name: string, subnet: string, hosts: string[]) {
  const lab = new Lab({ name, subnet });
  await lab.up({ hosts: [] });
  // The server's HOME is its own temp dir; the lab is in this process's cache dir.
  const server = await startBenchServer({ LIFELINE_HOST: lab.gatewayAddress, LIFELINE_LAB_ROOT: dirname(lab.labDir) });
  try {
    const tokens = new Map<string, string>();
    for (const h of hosts) tokens.set(h, await enrollToken(server.url, server.token));
    await lab.up({ hosts, process: (h) => agentHostProcess({ binary: BIN, serverUrl: server.url, name: h.name, enrollToken: tokens.get(h.name) }) });
    await waitReady(server.url, server.token, hosts.length);
    for (const h of hosts) {
      await api(server.url, server.token, "PATCH", `/v1/machines/${h}/driver`, { handle: { driver: "lab", version: 1, ref: { lab: name, host: h, labDir: lab.labDir } } });
    }
  } catch (err) {
    await server.stop();
    await lab.down({ purge: true });
    throw err;
  }
  return {
    lab,
    server,
    async stop() {
      await server.stop();
      await lab.down({ purge: true });
    },
  };
}
