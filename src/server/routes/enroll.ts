import { enrollProofMessage, hashToken, newId, publicKeyFromRaw, verifyBytes } from "../../crypto/index.js";
import { EnrollRequest, EnrollResponse, LifelineError, MIN_AGENT_PROTOCOL_VERSION } from "../../protocol/index.js";
import type { ServerDeps } from "../deps.js";
import { defineRoute } from "../route-table.js";

const WHY: Record<"unknown" | "expired" | "used" | "revoked", { code: "ENROLL_TOKEN_UNKNOWN" | "ENROLL_TOKEN_EXPIRED" | "ENROLL_TOKEN_USED" | "ENROLL_TOKEN_REVOKED"; text: string }> = {
  revoked: { code: "ENROLL_TOKEN_REVOKED", text: "was revoked" },
  unknown: { code: "ENROLL_TOKEN_UNKNOWN", text: "is not known to this server" },
  expired: { code: "ENROLL_TOKEN_EXPIRED", text: "has expired" },
  used: { code: "ENROLL_TOKEN_USED", text: "was already used (enrollment tokens are one-time)" },
};

export function enrollRoutes({ store, audit, key, config }: ServerDeps) {
  return [
    defineRoute({
      method: "POST",
      url: "/v1/agent/enroll",
      summary: "Enroll an agent with a one-time enrollment token (the token is the credential)",
      role: "public",
      action: "enroll",
      body: EnrollRequest,
      response: EnrollResponse,
      handler: async ({ body }) => {
        // Check what costs nothing before spending the one-time token.
        if (body.protocolVersion < MIN_AGENT_PROTOCOL_VERSION) {
          throw new LifelineError("PROTOCOL_VERSION_UNSUPPORTED", `Agent protocol ${body.protocolVersion} is too old; upgrade the agent`);
        }
        let proofOk: boolean;
        try {
          proofOk = verifyBytes("enroll-proof", enrollProofMessage(body.token, body.name), body.proof, publicKeyFromRaw("ed25519", body.signPublicKey));
          publicKeyFromRaw("x25519", body.sealPublicKey);
        } catch {
          proofOk = false;
        }
        if (!proofOk) throw new LifelineError("ENROLL_PROOF_INVALID", "The enrollment proof does not match the agent's signing key");
        if (await store.getMachineByName(body.name)) {
          throw new LifelineError("MACHINE_NAME_TAKEN", `Cannot enroll "${body.name}": a machine with that name exists (delete it first to replace it)`);
        }
        const consumed = await store.consumeEnrollToken(hashToken(body.token), Date.now());
        if (!consumed.ok) {
          await audit.record("agent", "machine.enroll", body.name, "refused", `token ${consumed.why}`);
          throw new LifelineError(WHY[consumed.why].code, `Cannot enroll "${body.name}": the enrollment token ${WHY[consumed.why].text}`);
        }
        const now = Date.now();
        const machineId = newId();
        await store.insertMachine({
          id: machineId,
          name: body.name,
          status: "NotReady",
          reason: "never-connected",
          statusSince: now,
          lastSeenAt: null,
          enrolledAt: now,
          agentVersion: body.agentVersion,
          protocolVersion: body.protocolVersion,
          facts: body.facts,
          labels: body.labels,
          signPublicKey: body.signPublicKey,
          sealPublicKey: body.sealPublicKey,
          driver: null,
        });
        await audit.record(`enroll-token:${consumed.token.id}`, "machine.enroll", body.name, "ok", `machine=${machineId}`);
        return { machineId, serverSignPublicKey: key.publicKey, heartbeatIntervalMs: config.heartbeatIntervalMs };
      },
    }),
  ];
}
