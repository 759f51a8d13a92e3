import pino, { type Logger } from "pino";
import { privateKeyFromPem, publicKeyFromRaw, publicKeyOfPrivate } from "../crypto/index.js";
import { LifelineError, MachineName, type Labels } from "../protocol/index.js";
import { runSession } from "./connection.js";
import { enroll } from "./enroll.js";
import { OpExecutor } from "./executor.js";
import { OpJournal } from "./journal.js";
import { ensureStateDir, loadAgentState, saveAgentState, type AgentState } from "./state.js";
import { superviseSessions } from "./supervisor.js";

export interface AgentOptions {
  stateDir: string;
  serverUrl?: string;
  token?: string;
  name?: string;
  labels?: Labels;
  log?: Logger;
  backoff?: { minMs: number; maxMs: number };
}

export interface RunningAgent {
  state: AgentState;
  stop(): Promise<void>;
  done: Promise<void>;
}

/** Enrolls on first start (token + name), then keeps a session with the server until stopped. */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const log = options.log ?? pino({ level: "info" }, pino.destination(2));
  ensureStateDir(options.stateDir);
  let state = loadAgentState(options.stateDir);
  if (!state) {
    if (!options.serverUrl || !options.token || !options.name) {
      throw new LifelineError("USAGE", "This agent is not enrolled yet: give --server, --token and --name");
    }
    const name = MachineName.safeParse(options.name);
    if (!name.success) throw new LifelineError("VALIDATION_FAILED", `Invalid --name "${options.name}": ${name.error.issues[0]!.message}`);
    state = await enroll(options.serverUrl, options.token, name.data, options.labels ?? {});
    saveAgentState(options.stateDir, state);
    log.info({ machineId: state.machineId, name: state.name }, "enrolled");
  } else if (options.token) {
    log.warn({ name: state.name }, "already enrolled; --token ignored (delete the state dir to enroll again)");
  }
  const serverUrl = options.serverUrl ?? state.serverUrl;
  const sealKey = { privateKey: privateKeyFromPem(state.sealPrivateKeyPem), publicKey: publicKeyOfPrivate(state.sealPrivateKeyPem) };
  const executor = new OpExecutor(new OpJournal(options.stateDir), publicKeyFromRaw("ed25519", state.serverSignPublicKey), state.machineId, options.stateDir, log, sealKey);
  executor.recoverInterrupted();
  const signKey = privateKeyFromPem(state.signPrivateKeyPem);
  const controller = new AbortController();
  const done = superviseSessions(
    (signal) => runSession({ url: serverUrl, machineId: state.machineId, signKey, executor, log, signal }),
    log,
    controller.signal,
    options.backoff,
  );
  return {
    state,
    done,
    async stop() {
      controller.abort();
      executor.stop();
      await done;
    },
  };
}
