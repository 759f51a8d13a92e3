import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OpExecutor } from "../../src/agent/executor.js";
import { OpJournal } from "../../src/agent/journal.js";
import { generateKeyPair, privateKeyFromPem, publicKeyFromRaw, signJson } from "../../src/crypto/index.js";
import type { AgentMessage, OpPayload } from "../../src/protocol/index.js";
import { tempDir } from "../helpers/processes.js";
import { waitFor } from "../helpers/processes.js";

// The agent's op executor with real keys, a real journal on disk and real /bin/sh: forged,
// altered, expired, misaddressed and replayed ops must never run.
describe("agent op verification and at-most-once execution", () => {
  const server = generateKeyPair("ed25519");
  const intruder = generateKeyPair("ed25519");
  const machineId = "machine-0001";
  const sealPair = generateKeyPair("x25519");
  const sealKey = { privateKey: privateKeyFromPem(sealPair.privateKeyPem), publicKey: sealPair.publicKey };
  let dir: ReturnType<typeof tempDir>;
  let sent: AgentMessage[];
  let executor: OpExecutor;

  beforeEach(() => {
    dir = tempDir("executor");
    sent = [];
    executor = new OpExecutor(new OpJournal(dir.path), publicKeyFromRaw("ed25519", server.publicKey), machineId, dir.path, pino({ level: "silent" }), sealKey);
    executor.setOutbox((m) => (sent.push(m), true));
  });
  afterEach(() => dir.remove());

  let counter = 0;
  const payload = (overrides: Partial<OpPayload> = {}): OpPayload => {
    const now = Date.now();
    const marker = join(dir.path, "ran");
    return {
      v: 1,
      type: "op",
      id: `op-${String(++counter).padStart(6, "0")}`,
      machineId,
      kind: "run",
      args: { interpreter: "sh", script: `echo ran >> ${marker}`, timeoutMs: 5000, outputCapBytes: 1024 },
      issuedAt: now,
      expiresAt: now + 60_000,
      ...overrides,
    };
  };
  const sign = (p: unknown, key = server.privateKeyPem) => signJson("op", p, privateKeyFromPem(key));
  const ran = () => (existsSync(join(dir.path, "ran")) ? readFileSync(join(dir.path, "ran"), "utf8") : "");
  const finished = (id: string) => waitFor(`op ${id} finished`, () => sent.find((m) => m.type === "op.finished" && m.opId === id));
  const rejection = (id: string) => sent.find((m) => m.type === "op.rejected" && m.opId === id) as Extract<AgentMessage, { type: "op.rejected" }> | undefined;

  it("runs a properly signed op once", async () => {
    const p = payload();
    executor.handleOp(sign(p));
    await finished(p.id);
    expect(ran()).toBe("ran\n");
  });

  it("refuses an op signed by another key", async () => {
    const p = payload();
    executor.handleOp(sign(p, intruder.privateKeyPem));
    expect(rejection(p.id)?.error.code).toBe("OP_SIGNATURE_INVALID");
    expect(ran()).toBe("");
  });

  it("refuses an op whose arguments were altered after signing", async () => {
    const p = payload();
    const envelope = sign(p);
    const altered = { ...p, args: { ...(p.args as object), script: "echo pwned" } };
    executor.handleOp({ payload: Buffer.from(JSON.stringify(altered)).toString("base64url"), signature: envelope.signature });
    expect(rejection(p.id)?.error.code).toBe("OP_SIGNATURE_INVALID");
    expect(ran()).toBe("");
  });

  it("refuses an expired op, one for another machine, and one issued in the future", async () => {
    const expired = payload({ issuedAt: Date.now() - 120_000, expiresAt: Date.now() - 1000 });
    const other = payload({ machineId: "machine-9999" });
    const future = payload({ issuedAt: Date.now() + 3_600_000, expiresAt: Date.now() + 7_200_000 });
    for (const p of [expired, other, future]) executor.handleOp(sign(p));
    expect(rejection(expired.id)?.error.code).toBe("OP_EXPIRED");
    expect(rejection(other.id)?.error.code).toBe("OP_WRONG_MACHINE");
    expect(rejection(future.id)?.error.code).toBe("OP_EXPIRED");
    expect(ran()).toBe("");
  });

  it("answers a replayed op from the journal, even after an agent restart, without running it", async () => {
    const p = payload();
    const envelope = sign(p);
    executor.handleOp(envelope);
    const first = await finished(p.id);
    const restarted = new OpExecutor(new OpJournal(dir.path), publicKeyFromRaw("ed25519", server.publicKey), machineId, dir.path, pino({ level: "silent" }), sealKey);
    const replies: AgentMessage[] = [];
    restarted.setOutbox((m) => (replies.push(m), true));
    restarted.handleOp(envelope);
    expect(replies).toEqual([first]);
    expect(ran()).toBe("ran\n");
  });

  it("answers an op that already ran from its journal even when redelivered after its expiry", async () => {
    const p = payload({ expiresAt: Date.now() + 400 });
    const envelope = sign(p);
    executor.handleOp(envelope);
    const first = await finished(p.id);
    await new Promise((r) => setTimeout(r, 500));
    sent.length = 0;
    executor.handleOp(envelope);
    expect(sent.at(-1)).toEqual(first);
    expect(rejection(p.id)).toBeUndefined();
  });

  it("replays the output of a finished op on redelivery (it may have been lost while disconnected)", async () => {
    const p = payload({ args: { interpreter: "sh", script: "echo hello", timeoutMs: 5000, outputCapBytes: 100 } });
    const envelope = sign(p);
    executor.setOutbox(() => false); // the session is down while the op runs
    executor.handleOp(envelope);
    await new Promise((r) => setTimeout(r, 300));
    executor.setOutbox((m) => (sent.push(m), true));
    executor.handleOp(envelope);
    const output = sent.filter((m) => m.type === "op.output") as Extract<AgentMessage, { type: "op.output" }>[];
    expect(Buffer.concat(output.map((m) => Buffer.from(m.data, "base64url"))).toString()).toBe("hello\n");
    expect(sent.at(-1)).toMatchObject({ type: "op.finished", opId: p.id });
  });

  it("ignores a forged copy of an op it already knows (no rejection that would end the real op)", async () => {
    const p = payload({ args: { interpreter: "sh", script: "sleep 1", timeoutMs: 5000, outputCapBytes: 10 } });
    executor.handleOp(sign(p));
    executor.handleOp(sign(p, intruder.privateKeyPem));
    expect(rejection(p.id)).toBeUndefined();
    await finished(p.id);
  });

  it("refuses an unknown op kind with a clear error", async () => {
    const p = payload({ kind: "format-disk" });
    executor.handleOp(sign(p));
    expect(rejection(p.id)?.error).toMatchObject({ code: "VALIDATION_FAILED", message: expect.stringContaining("format-disk") });
  });
});
