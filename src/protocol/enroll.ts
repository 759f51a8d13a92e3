import { z } from "zod";
import { ShortB64, Id, Labels, MachineFacts, MachineName } from "./common.js";

export const EnrollRequest = z.object({
  token: z.string().min(1).max(256),
  name: MachineName,
  signPublicKey: ShortB64.length(43),
  sealPublicKey: ShortB64.length(43),
  /** Ed25519 signature, by signPublicKey, of enrollProofMessage(token, name): proves the agent holds the key. */
  proof: ShortB64,
  protocolVersion: z.number().int().positive(),
  agentVersion: z.string().max(64),
  facts: MachineFacts,
  labels: Labels.default({}),
});
export type EnrollRequest = z.input<typeof EnrollRequest>;

export const EnrollResponse = z.object({
  machineId: Id,
  serverSignPublicKey: ShortB64,
  heartbeatIntervalMs: z.number().int().positive(),
});
export type EnrollResponse = z.infer<typeof EnrollResponse>;
