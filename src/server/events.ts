import { EventEmitter } from "node:events";
import type { RunEvent } from "../protocol/index.js";

/**
 * Live events of runs, for streaming to clients. In-process only: with several replicas each
 * client follows the replica it talks to, which reads the store first and then listens here
 * (the replica holding the agent socket is the one that emits).
 */
export class RunEvents {
  private readonly emitter = new EventEmitter();
  constructor() {
    this.emitter.setMaxListeners(0);
  }
  emit(runId: string, event: RunEvent): void {
    this.emitter.emit(runId, event);
  }
  subscribe(runId: string, listener: (event: RunEvent) => void): () => void {
    this.emitter.on(runId, listener);
    return () => this.emitter.off(runId, listener);
  }
}
