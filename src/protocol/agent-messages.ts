import { z } from "zod";
import { B64, ShortB64, Id, MachineFacts, Timestamp } from "./common.js";
import { OpError, OpResult, Stream } from "./ops.js";

/** A payload signed by the server's Ed25519 key. `payload` is base64url of UTF-8 JSON bytes. */
export const SignedEnvelope = z.object({ payload: B64.max(2_000_000), signature: ShortB64 });
export type SignedEnvelope = z.infer<typeof SignedEnvelope>;

/** Messages on the agent WebSocket (`/v1/agent/connect`), server to agent. */
export const ServerMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("challenge"), nonce: ShortB64, protocolVersion: z.number().int(), serverTime: Timestamp }),
  z.object({ type: z.literal("welcome"), machineId: Id, heartbeatIntervalMs: z.number().int().positive() }),
  z.object({ type: z.literal("op"), op: SignedEnvelope }),
  z.object({ type: z.literal("cancel"), cancel: SignedEnvelope }),
  z.object({ type: z.literal("error"), code: z.string(), message: z.string() }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;

/** Messages on the agent WebSocket, agent to server. */
export const AgentMessage = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("auth"),
    machineId: Id,
    signature: ShortB64,
    protocolVersion: z.number().int(),
    agentVersion: z.string().max(64),
    facts: MachineFacts,
  }),
  /** `facts` only when they changed since the last report (e.g. the machine joined a domain). */
  z.object({ type: z.literal("heartbeat"), runningOps: z.number().int().nonnegative(), facts: MachineFacts.optional() }),
  z.object({ type: z.literal("op.started"), opId: Id, startedAt: Timestamp }),
  z.object({ type: z.literal("op.output"), opId: Id, stream: Stream, seq: z.number().int().nonnegative(), data: B64.max(1_400_000) }),
  z.object({ type: z.literal("op.finished"), opId: Id, result: OpResult }),
  z.object({ type: z.literal("op.rejected"), opId: Id, error: OpError }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

/** Signed op payload: what exactly the server asked, of which machine, until when. */
export const OpPayload = z.object({
  v: z.literal(1),
  type: z.literal("op"),
  id: Id,
  machineId: Id,
  kind: z.string(),
  args: z.unknown(),
  issuedAt: Timestamp,
  expiresAt: Timestamp,
});
export type OpPayload = z.infer<typeof OpPayload>;

export const CancelPayload = z.object({
  v: z.literal(1),
  type: z.literal("cancel"),
  opId: Id,
  machineId: Id,
  issuedAt: Timestamp,
  expiresAt: Timestamp,
});
export type CancelPayload = z.infer<typeof CancelPayload>;

/** Max WebSocket message size either side accepts. */
export const MAX_AGENT_MESSAGE_BYTES = 4 * 1024 * 1024;
