import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { LIFELINE_VERSION, MAX_SCRIPT_BYTES } from "../protocol/index.js";
import { openStore, type Store } from "../store/index.js";
import { AuditLog } from "./audit.js";
import { bootstrapFirstStart, type BootstrapResult } from "./bootstrap.js";
import { serverDrivers } from "../drivers/index.js";
import { vmRootOf, type ServerConfig } from "./config.js";
import { registerConsole } from "./console.js";
import type { ServerDeps } from "./deps.js";
import { installErrorHandling } from "./error-handler.js";
import { RunEvents } from "./events.js";
import { AGENT_CONNECT_PATH, AgentGateway } from "./gateway.js";
import { Metrics } from "./metrics.js";
import { OpsService } from "./ops-service.js";
import { defineRoute, openApiDocument, registerRoutes, type RouteDef } from "./route-table.js";
import { auditRoutes } from "./routes/audit.js";
import { enrollRoutes } from "./routes/enroll.js";
import { machineRoutes } from "./routes/machines.js";
import { opRoutes } from "./routes/ops.js";
import { runRoutes } from "./routes/runs.js";
import { tokenRoutes } from "./routes/tokens.js";
import { loadOrCreateSealKey, loadOrCreateSigningKey } from "./keys.js";
import { accountRoutes } from "./routes/accounts.js";
import { jobRoutes } from "./routes/jobs.js";
import { snapshotRoutes } from "./routes/snapshots.js";
import { domainRoutes } from "./routes/domains.js";
import { repairRoutes } from "./routes/repair.js";
import { JobsService } from "./jobs-service.js";

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  deps: ServerDeps;
  bootstrap: BootstrapResult;
  close(): Promise<void>;
}

function metaRoutes(deps: ServerDeps, routes: () => readonly RouteDef<any, any, any>[]) {
  return [
    defineRoute({ method: "GET", url: "/healthz", summary: "Liveness (no data)", role: "public", action: "check health", handler: async () => ({ ok: true, version: LIFELINE_VERSION }) }),
    defineRoute({ method: "GET", url: "/v1/openapi.json", summary: "This document", role: "public", action: "read the API document", handler: async () => openApiDocument(routes()) }),
    defineRoute({
      method: "GET",
      url: "/metrics",
      summary: "Prometheus metrics",
      role: "reader",
      action: "read metrics",
      streams: "text/plain",
      handler: async ({ reply }) => {
        const text = await deps.metrics.registry.metrics();
        return reply.type(deps.metrics.registry.contentType).send(text);
      },
    }),
  ];
}

/** Builds and starts the control plane: store, keys, API, agent gateway, sweeper. */
export async function startServer(config: ServerConfig): Promise<RunningServer> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const store: Store = await openStore(config.store ?? `sqlite:${join(config.dataDir, "lifeline.db")}`, { server: true });
  const app = Fastify({
    logger: {
      level: config.logLevel,
      // Logs are JSON on stderr; stdout carries only the start-up lines meant for people.
      stream: process.stderr,
      redact: { paths: ["req.headers.authorization", "req.headers.cookie"], censor: "[redacted]" },
    },
    // Scripts are capped at MAX_SCRIPT_BYTES; the body limit leaves room for JSON escaping so an
    // oversized script gets the specific SCRIPT_TOO_LARGE error, not a generic one.
    bodyLimit: MAX_SCRIPT_BYTES * 7 + 64 * 1024,
  });
  const key = loadOrCreateSigningKey(config.dataDir);
  const metrics = new Metrics(store);
  const audit = new AuditLog(store);
  const events = new RunEvents();
  const ops = new OpsService(store, key, events, audit, metrics, app.log);
  const gateway = new AgentGateway(store, ops, metrics, app.log, config.heartbeatIntervalMs);
  ops.attach(gateway);
  const seal = loadOrCreateSealKey(config.dataDir);
  const drivers = serverDrivers({ vmRoot: vmRootOf(config), vmStopTimeoutMs: config.vmStopTimeoutMs, ...(config.labRoot ? { labRoot: config.labRoot } : {}) });
  const jobs = new JobsService(store, ops, gateway, seal, audit, drivers, app.log);
  jobs.engine.stepDelayMs = config.jobStepDelayMs;
  jobs.bootWaitMs = config.bootWaitMs;
  const deps: ServerDeps = { config, store, audit, events, metrics, ops, jobs, drivers, gateway, key, seal, log: app.log };

  // No agent socket survives a restart: whatever the store says, nobody is connected yet.
  await store.markAllNotReady("disconnected", Date.now());

  installErrorHandling(app);
  app.addHook("onResponse", async (request, reply) => {
    metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? "unmatched", status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  const routes: RouteDef<any, any, any>[] = [];
  routes.push(
    ...metaRoutes(deps, () => routes),
    ...tokenRoutes(deps),
    ...enrollRoutes(deps),
    ...machineRoutes(deps),
    ...runRoutes(deps),
    ...opRoutes(deps),
    ...auditRoutes(deps),
    ...accountRoutes(deps),
    ...jobRoutes(deps),
    ...snapshotRoutes(deps),
    ...repairRoutes(deps),
    ...domainRoutes(deps),
  );
  registerRoutes(app, store, routes);
  await registerConsole(app);

  app.server.on("upgrade", (request, socket, head) => {
    if ((request.url ?? "").split("?")[0] === AGENT_CONNECT_PATH) gateway.handleUpgrade(request, socket, head);
    else socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
  });

  const sweeper = setInterval(() => void ops.sweep().catch((err) => app.log.error({ err }, "sweep failed")), config.sweepIntervalMs);
  sweeper.unref();

  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  const bootstrap = await bootstrapFirstStart(store, config.dataDir, url, config.writeCliConfig);
  // Jobs a previous process left running go on (each step is idempotent given its record).
  const resumed = await jobs.engine.resumeAll();
  if (resumed) app.log.info({ resumed }, "resumed unfinished jobs");

  return {
    app,
    url,
    deps,
    bootstrap,
    async close() {
      clearInterval(sweeper);
      await gateway.close();
      await app.close();
      await store.close();
    },
  };
}
