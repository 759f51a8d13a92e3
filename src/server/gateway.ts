import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyBaseLogger } from "fastify";
import { WebSocketServer, type WebSocket, type RawData } from "ws";
import { agentAuthMessage, fromB64, newNonce, publicKeyFromRaw, verifyBytes } from "../crypto/index.js";
import {
  AgentMessage,
  MAX_AGENT_MESSAGE_BYTES,
  MIN_AGENT_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  type NotReadyReason,
  type ServerMessage,
} from "../protocol/index.js";
import type { Store } from "../store/index.js";
import type { Metrics } from "./metrics.js";
import type { AgentLink, OpsService } from "./ops-service.js";

export const AGENT_CONNECT_PATH = "/v1/agent/connect";
const AUTH_DEADLINE_MS = 10_000;
const MISSED_HEARTBEATS = 3;

interface Session {
  socket: WebSocket;
  machineId: string;
  lastSeen: number;
  /** Why we closed it, when we did (so close() records that reason, not `disconnected`). */
  closeReason?: NotReadyReason;
  /** Agent messages are handled one at a time, in order (output before the op's end). */
  queue: Promise<void>;
}

/**
 * The agent side of the server: WebSocket sessions authenticated by a signed challenge, with
 * heartbeats and Ready/NotReady bookkeeping. It knows nothing of op semantics: it hands agent
 * messages to the OpsService and carries the service's messages to agents.
 */
export class AgentGateway implements AgentLink {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_AGENT_MESSAGE_BYTES });
  private readonly sessions = new Map<string, Session>();
  private readonly sockets = new Set<WebSocket>();
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly ops: OpsService,
    private readonly metrics: Metrics,
    private readonly log: FastifyBaseLogger,
    private readonly heartbeatIntervalMs: number,
  ) {
    this.heartbeatTimer = setInterval(() => void this.checkHeartbeats(), heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  get connectedCount(): number {
    return this.sessions.size;
  }

  isConnected(machineId: string): boolean {
    return this.sessions.has(machineId);
  }

  send(machineId: string, message: ServerMessage): boolean {
    const session = this.sessions.get(machineId);
    if (!session || session.socket.readyState !== session.socket.OPEN) return false;
    session.socket.send(JSON.stringify(message));
    return true;
  }

  /** Ends a machine's session (after the machine is deleted, its agent must not stay in). */
  disconnect(machineId: string): void {
    const session = this.sessions.get(machineId);
    if (session) this.refuse(session.socket, "AGENT_AUTH_FAILED", "this machine was deleted", session);
  }

  /** Handles an HTTP upgrade on the agent path. Browsers (which send Origin) are refused. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (request.headers.origin !== undefined) {
      socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n");
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.onConnection(ws, request.socket.remoteAddress ?? "?"));
  }

  private onConnection(ws: WebSocket, remote: string): void {
    this.sockets.add(ws);
    const nonce = newNonce();
    let session: Session | undefined;
    const deadline = setTimeout(() => this.refuse(ws, "AGENT_AUTH_FAILED", "no auth message in time"), AUTH_DEADLINE_MS);
    ws.send(JSON.stringify({ type: "challenge", nonce, protocolVersion: PROTOCOL_VERSION, serverTime: Date.now() } satisfies ServerMessage));

    ws.on("message", (raw: RawData, isBinary: boolean) => {
      const message = isBinary ? undefined : parseMessage(raw);
      if (!message) {
        this.log.warn({ remote, machineId: session?.machineId }, "agent message failed its schema; closing the connection");
        this.refuse(ws, "VALIDATION_FAILED", "message does not match the protocol schema", session);
        return;
      }
      if (!session) {
        if (message.type !== "auth") return this.refuse(ws, "AGENT_AUTH_FAILED", "first message must be auth");
        clearTimeout(deadline);
        const pending: Session = { socket: ws, machineId: message.machineId, lastSeen: Date.now(), queue: Promise.resolve() };
        session = pending;
        pending.queue = this.authenticate(pending, nonce, message).catch((err) => {
          this.log.error({ err }, "agent auth failed unexpectedly");
          this.refuse(ws, "INTERNAL", "internal error");
        });
        return;
      }
      const current = session;
      current.lastSeen = Date.now();
      current.queue = current.queue.then(() => this.onAgentMessage(current, message)).catch((err) => {
        this.log.error({ err, machineId: current.machineId }, "handling an agent message failed");
      });
    });
    ws.on("close", () => {
      clearTimeout(deadline);
      this.sockets.delete(ws);
      if (session && this.sessions.get(session.machineId) === session) {
        this.sessions.delete(session.machineId);
        this.metrics.agentsConnected.set(this.sessions.size);
        const reason = session.closeReason ?? "disconnected";
        void this.store.updateMachine(session.machineId, { status: "NotReady", reason, statusSince: Date.now() });
        this.log.info({ machineId: session.machineId, reason }, "agent session ended");
      }
    });
    ws.on("error", (err) => this.log.debug({ err, remote }, "agent socket error"));
  }

  private async authenticate(session: Session, nonce: string, auth: Extract<AgentMessage, { type: "auth" }>): Promise<void> {
    const machine = await this.store.getMachineById(auth.machineId);
    const ok =
      machine !== undefined &&
      verifyBytes("agent-auth", agentAuthMessage(nonce, auth.machineId), auth.signature, publicKeyFromRaw("ed25519", machine.signPublicKey));
    if (!machine || !ok) {
      this.log.warn({ machineId: auth.machineId }, "agent authentication failed");
      return this.refuse(session.socket, "AGENT_AUTH_FAILED", "unknown machine or bad signature");
    }
    if (auth.protocolVersion < MIN_AGENT_PROTOCOL_VERSION) {
      await this.store.updateMachine(machine.id, {
        status: "NotReady",
        reason: "version-mismatch",
        statusSince: Date.now(),
        agentVersion: auth.agentVersion,
        protocolVersion: auth.protocolVersion,
      });
      return this.refuse(
        session.socket,
        "PROTOCOL_VERSION_UNSUPPORTED",
        `agent protocol ${auth.protocolVersion} is older than the oldest this server supports (${MIN_AGENT_PROTOCOL_VERSION}); upgrade the agent`,
      );
    }
    const previous = this.sessions.get(machine.id);
    if (previous) {
      // The newest session wins: the old socket is most likely a dead connection not yet noticed.
      this.sessions.delete(machine.id);
      previous.socket.close(4000, "replaced by a new session");
    }
    this.sessions.set(machine.id, session);
    this.metrics.agentsConnected.set(this.sessions.size);
    const now = Date.now();
    await this.store.updateMachine(machine.id, {
      status: "Ready",
      reason: null,
      statusSince: now,
      lastSeenAt: now,
      agentVersion: auth.agentVersion,
      protocolVersion: auth.protocolVersion,
      facts: auth.facts,
    });
    this.send(machine.id, { type: "welcome", machineId: machine.id, heartbeatIntervalMs: this.heartbeatIntervalMs });
    this.log.info({ machineId: machine.id, name: machine.name }, "agent session started");
    await this.ops.onAgentReady(machine.id);
  }

  private async onAgentMessage(session: Session, message: AgentMessage): Promise<void> {
    const id = session.machineId;
    // Messages queued behind a failed or replaced authentication must not act for the machine.
    if (this.sessions.get(id) !== session) return;
    switch (message.type) {
      case "auth":
        return this.refuse(session.socket, "AGENT_AUTH_FAILED", "already authenticated", session);
      case "heartbeat":
        return this.store.updateMachine(id, { lastSeenAt: session.lastSeen, ...(message.facts ? { facts: message.facts } : {}) });
      case "op.started":
        return this.ops.onStarted(id, message.opId, message.startedAt);
      case "op.output":
        return this.ops.onOutput(id, message.opId, message.stream, message.seq, fromB64(message.data));
      case "op.finished":
        return this.ops.onFinished(id, message.opId, message.result);
      case "op.rejected":
        return this.ops.onRejected(id, message.opId, message.error);
    }
  }

  private refuse(ws: WebSocket, code: string, message: string, session?: Session): void {
    if (session && code === "PROTOCOL_VERSION_UNSUPPORTED") session.closeReason = "version-mismatch";
    if (ws.readyState === ws.OPEN) {
      ws.send(JSON.stringify({ type: "error", code, message } satisfies ServerMessage));
      ws.close(4001, code);
    } else {
      ws.terminate();
    }
  }

  private async checkHeartbeats(): Promise<void> {
    const limit = Date.now() - MISSED_HEARTBEATS * this.heartbeatIntervalMs;
    for (const session of this.sessions.values()) {
      if (session.lastSeen < limit) {
        session.closeReason = "heartbeat-timeout";
        this.log.warn({ machineId: session.machineId }, "agent missed its heartbeats; closing the session");
        session.socket.terminate();
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

function parseMessage(raw: RawData): AgentMessage | undefined {
  try {
    const parsed = AgentMessage.safeParse(JSON.parse(raw.toString()));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
