import type { KeyObject } from "node:crypto";
import { openSignedJson } from "../crypto/index.js";
import { CancelPayload, OpPayload, type OpError, type SignedEnvelope } from "../protocol/index.js";

/** How far ahead of our clock an op may claim to be issued (clock skew between hosts). */
const MAX_FUTURE_SKEW_MS = 5 * 60_000;

export type Verified<T> = { ok: true; payload: T } | { ok: false; opId: string | undefined; error: OpError };

function peekId(envelope: SignedEnvelope): string | undefined {
  try {
    const value = JSON.parse(Buffer.from(envelope.payload, "base64url").toString("utf8")) as { id?: unknown; opId?: unknown };
    const id = value.id ?? value.opId;
    return typeof id === "string" && /^[A-Za-z0-9_-]{8,64}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks a signed op: the pinned server key signed these exact bytes, for this machine.
 * (Expiry: expiryProblem; replays are the journal's job: see executor.ts.)
 */
export function verifyOp(envelope: SignedEnvelope, serverKey: KeyObject, machineId: string): Verified<OpPayload> {
  return verifyEnvelope("op", OpPayload, envelope, serverKey, machineId);
}

export function verifyCancel(envelope: SignedEnvelope, serverKey: KeyObject, machineId: string): Verified<CancelPayload> {
  return verifyEnvelope("cancel", CancelPayload, envelope, serverKey, machineId);
}

function verifyEnvelope<T extends { machineId: string; issuedAt: number; expiresAt: number }>(
  domain: "op" | "cancel",
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
  envelope: SignedEnvelope,
  serverKey: KeyObject,
  machineId: string,
): Verified<T> {
  const opId = peekId(envelope);
  const fail = (code: string, message: string): Verified<T> => ({ ok: false, opId, error: { code, message } });
  let value: unknown;
  try {
    value = openSignedJson(domain, envelope, serverKey);
  } catch {
    return fail("OP_SIGNATURE_INVALID", "payload is not valid JSON");
  }
  if (value === undefined) return fail("OP_SIGNATURE_INVALID", `the ${domain} is not signed by the pinned server key`);
  const parsed = schema.safeParse(value);
  if (!parsed.success) return fail("VALIDATION_FAILED", `the ${domain} payload does not match its schema`);
  const payload = parsed.data;
  if (payload.machineId !== machineId) return fail("OP_WRONG_MACHINE", `the ${domain} is for another machine`);
  return { ok: true, payload };
}

/**
 * Whether a verified op may still start. Checked after the journal: an op that already ran
 * is answered with its result even when redelivered after its expiry.
 */
export function expiryProblem(payload: { issuedAt: number; expiresAt: number }, now: number): OpError | undefined {
  if (payload.expiresAt <= now) return { code: "OP_EXPIRED", message: `the op expired at ${new Date(payload.expiresAt).toISOString()}` };
  if (payload.issuedAt > now + MAX_FUTURE_SKEW_MS) return { code: "OP_EXPIRED", message: "the op claims to be issued in the future" };
  return undefined;
}
