import { readFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { agentAuthMessage, privateKeyFromPem, signBytes } from "../../src/crypto/index.js";
import type { MachineFacts } from "../../src/protocol/index.js";

/**
 * A hand-driven agent session, for what the real agent never does (speak an old protocol, send
 * garbage, stop heartbeating). It uses a real enrolled agent's key from its state dir.
 */
export async function rawAgentSession(serverUrl: string, stateDir: string, opts: { protocolVersion?: number; facts?: Partial<MachineFacts> } = {}) {
  const state = JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as { machineId: string; signPrivateKeyPem: string };
  const url = new URL("/v1/agent/connect", serverUrl);
  url.protocol = "ws:";
  const ws = new WebSocket(url);
  const messages: any[] = [];
  let closed = false;
  ws.on("message", (raw) => {
    const message = JSON.parse(raw.toString());
    messages.push(message);
    if (message.type === "challenge") {
      ws.send(
        JSON.stringify({
          type: "auth",
          machineId: state.machineId,
          signature: signBytes("agent-auth", agentAuthMessage(message.nonce, state.machineId), privateKeyFromPem(state.signPrivateKeyPem)),
          protocolVersion: opts.protocolVersion ?? 1,
          agentVersion: "raw-test",
          facts: { os: "linux", osPretty: "", arch: "x64", kernel: "k", hostname: "raw", addresses: [], ...opts.facts },
        }),
      );
    }
  });
  const closedPromise = new Promise<void>((r) => ws.on("close", () => ((closed = true), r())));
  await new Promise<void>((resolve, reject) => (ws.once("open", () => resolve()), ws.once("error", reject)));
  return { ws, messages, isClosed: () => closed, closed: closedPromise, machineId: state.machineId };
}
