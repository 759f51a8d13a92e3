import type { FastifyBaseLogger } from "fastify";
import type { Drivers } from "../drivers/index.js";
import type { Store } from "../store/index.js";
import type { AuditLog } from "./audit.js";
import type { ServerConfig } from "./config.js";
import type { RunEvents } from "./events.js";
import type { AgentGateway } from "./gateway.js";
import type { Metrics } from "./metrics.js";
import type { JobsService } from "./jobs-service.js";
import type { OpsService } from "./ops-service.js";
import type { ServerKey, ServerSigningKey } from "./keys.js";

/** What route modules get: the server's parts, built once in app.ts. */
export interface ServerDeps {
  config: ServerConfig;
  store: Store;
  audit: AuditLog;
  events: RunEvents;
  metrics: Metrics;
  ops: OpsService;
  jobs: JobsService;
  drivers: Drivers;
  gateway: AgentGateway;
  key: ServerSigningKey;
  seal: ServerKey;
  log: FastifyBaseLogger;
}
