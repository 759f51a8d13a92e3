import { describe, expect, it } from "vitest";
import { bindingBytes, generateKeyPair, open, privateKeyFromPem, seal } from "../../src/crypto/index.js";

describe("sealed secrets", () => {
  const agent = generateKeyPair("x25519");
  const other = generateKeyPair("x25519");
  const binding = { purpose: "reset-password", machineId: "m-00000001", opId: "op-0000001", user: "alice", expiresAt: 1_800_000_000_000 };
  const box = seal(Buffer.from("correct horse"), agent.publicKey, bindingBytes(binding));

  it("opens for the recipient with the same binding", () => {
    expect(open(box, privateKeyFromPem(agent.privateKeyPem), agent.publicKey, bindingBytes({ ...binding }))?.toString()).toBe("correct horse");
  });
  it("does not open with another key, another binding, or altered ciphertext", () => {
    expect(open(box, privateKeyFromPem(other.privateKeyPem), other.publicKey, bindingBytes(binding))).toBeUndefined();
    expect(open(box, privateKeyFromPem(agent.privateKeyPem), agent.publicKey, bindingBytes({ ...binding, opId: "op-0000002" }))).toBeUndefined();
    expect(open(box, privateKeyFromPem(agent.privateKeyPem), agent.publicKey, bindingBytes({ ...binding, user: "bob" }))).toBeUndefined();
    const flipped = Buffer.from(box.ciphertext, "base64url");
    flipped[0]! ^= 1;
    expect(open({ ...box, ciphertext: flipped.toString("base64url") }, privateKeyFromPem(agent.privateKeyPem), agent.publicKey, bindingBytes(binding))).toBeUndefined();
  });
  it("never contains the plaintext and differs every time", () => {
    const again = seal(Buffer.from("correct horse"), agent.publicKey, bindingBytes(binding));
    expect(again.ciphertext).not.toBe(box.ciphertext);
    expect(Buffer.from(box.ciphertext, "base64url").includes(Buffer.from("correct horse"))).toBe(false);
  });
});
