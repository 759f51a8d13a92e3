import { enrollProofMessage, generateKeyPair, privateKeyFromPem, signBytes } from "../crypto/index.js";
import {
  EnrollResponse,
  ErrorBody,
  LIFELINE_VERSION,
  LifelineError,
  PROTOCOL_VERSION,
  isErrorCode,
  type EnrollRequest,
  type Labels,
} from "../protocol/index.js";
import { collectFacts } from "./facts.js";
import type { AgentState } from "./state.js";

/** Generates the agent's own key pairs and trades a one-time token for a machine identity. */
export async function enroll(serverUrl: string, token: string, name: string, labels: Labels): Promise<AgentState> {
  const sign = generateKeyPair("ed25519");
  const seal = generateKeyPair("x25519");
  const body: EnrollRequest = {
    token,
    name,
    signPublicKey: sign.publicKey,
    sealPublicKey: seal.publicKey,
    proof: signBytes("enroll-proof", enrollProofMessage(token, name), privateKeyFromPem(sign.privateKeyPem)),
    protocolVersion: PROTOCOL_VERSION,
    agentVersion: LIFELINE_VERSION,
    facts: collectFacts(),
    labels,
  };
  let response: Response;
  try {
    response = await fetch(new URL("/v1/agent/enroll", serverUrl), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new LifelineError("SERVER_UNREACHABLE", `Cannot reach ${serverUrl}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  const json: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    const error = ErrorBody.safeParse(json);
    if (error.success && isErrorCode(error.data.code)) throw new LifelineError(error.data.code, error.data.message);
    throw new LifelineError("INTERNAL", `Enrollment failed with HTTP ${response.status}`);
  }
  const enrolled = EnrollResponse.parse(json);
  return {
    version: 1,
    serverUrl,
    machineId: enrolled.machineId,
    name,
    serverSignPublicKey: enrolled.serverSignPublicKey,
    signPrivateKeyPem: sign.privateKeyPem,
    sealPrivateKeyPem: seal.privateKeyPem,
    enrolledAt: Date.now(),
  };
}
