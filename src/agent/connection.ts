import type { KeyObject } from "node:crypto";
import type { Logger } from "pino";
import WebSocket from "ws";
import { agentAuthMessage, signBytes } from "../crypto/index.js";
import { LIFELINE_VERSION, MAX_AGENT_MESSAGE_BYTES, PROTOCOL_VERSION, ServerMessage, type AgentMessage, type MachineFacts } from "../protocol/index.js";
import type { OpExecutor } from "./executor.js";
import { collectFacts } from "./facts.js";

export interface SessionEnd {
  /** The session got as far as `welcome` (backoff resets after a good session). */
  established: boolean;
  /** A refusal the server explained (e.g. AGENT_AUTH_FAILED). */
  refusedWith?: string;
}

/**
 * One WebSocket session: answer the challenge, heartbeat, carry op messages both ways. It does
 * not reconnect; the supervisor does.
 */
export function runSession(opts: {
  url: string;
  machineId: string;
  signKey: KeyObject;
  executor: OpExecutor;
  log: Logger;
  signal: AbortSignal;
}): Promise<SessionEnd> {
  const { machineId, signKey, executor, log } = opts;
  return new Promise((resolve) => {
    const endpoint = new URL("/v1/agent/connect", opts.url);
    endpoint.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(endpoint, { maxPayload: MAX_AGENT_MESSAGE_BYTES, handshakeTimeout: 10_000 });
    const end: SessionEnd = { established: false };
    let heartbeat: NodeJS.Timeout | undefined;
    let reported: MachineFacts | undefined;
    const send = (message: AgentMessage): boolean => {
      if (ws.readyState !== WebSocket.OPEN) return false;
      ws.send(JSON.stringify(message));
      return true;
    };
    const abort = () => ws.terminate();
    opts.signal.addEventListener("abort", abort, { once: true });

    ws.on("message", (raw) => {
      let message: ServerMessage;
      try {
        message = ServerMessage.parse(JSON.parse(raw.toString()));
      } catch {
        log.warn("server message failed its schema; ignored");
        return;
      }
      switch (message.type) {
        case "challenge":
          send({
            type: "auth",
            machineId,
            signature: signBytes("agent-auth", agentAuthMessage(message.nonce, machineId), signKey),
            protocolVersion: PROTOCOL_VERSION,
            agentVersion: LIFELINE_VERSION,
            facts: (reported = collectFacts()),
          });
          return;
        case "welcome":
          end.established = true;
          log.info({ server: opts.url }, "connected");
          executor.setOutbox(send);
          heartbeat = setInterval(() => {
            // Facts are a few small files: re-read them each beat, send them only when they changed.
            const facts = collectFacts();
            const changed = JSON.stringify(facts) !== JSON.stringify(reported);
            if (changed) reported = facts;
            send({ type: "heartbeat", runningOps: executor.running, ...(changed ? { facts } : {}) });
          }, message.heartbeatIntervalMs);
          return;
        case "op":
          return executor.handleOp(message.op);
        case "cancel":
          return executor.handleCancel(message.cancel);
        case "error":
          end.refusedWith = message.code;
          log.error({ code: message.code }, `server refused the session: ${message.message}`);
          return;
      }
    });
    ws.on("error", (err) => log.debug({ err }, "connection error"));
    ws.on("close", () => {
      clearInterval(heartbeat);
      executor.setOutbox(() => false);
      opts.signal.removeEventListener("abort", abort);
      resolve(end);
    });
  });
}
