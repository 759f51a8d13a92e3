import { CreateRunRequest, IdParams, LifelineError, Run, RunEventsQuery, isTerminal, type Op, type RunEvent } from "../../protocol/index.js";
import type { ServerDeps } from "../deps.js";
import { toApiOp } from "../ops-service.js";
import { defineRoute } from "../route-table.js";

export function runRoutes({ store, ops, events }: ServerDeps) {
  return [
    defineRoute({
      method: "POST",
      url: "/v1/runs",
      summary: "Run a script on one or many machines (one op per machine)",
      role: "operator",
      action: "run commands",
      body: CreateRunRequest,
      response: Run,
      handler: async ({ body, principal }) => ops.createRun(principal, body),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/runs/:id/events",
      summary: "Stream a run's output and state changes as NDJSON until every op has ended",
      role: "reader",
      action: "follow runs",
      params: IdParams,
      query: RunEventsQuery,
      streams: "application/x-ndjson",
      handler: async ({ params, query, reply, request }) => {
        const wanted = (opId: string) => !query.op || query.op === opId;
        // Subscribe before reading the store, then drop live events the replay already sent.
        const live: RunEvent[] = [];
        let forward: ((event: RunEvent) => void) | undefined;
        const unsubscribe = events.subscribe(params.id, (event) => (forward ? forward(event) : live.push(event)));
        try {
          const runOps = (await store.listOps({ runId: params.id, limit: 100_000 })).filter((op) => wanted(op.id));
          if (!runOps.length) throw new LifelineError(query.op ? "OP_NOT_FOUND" : "RUN_NOT_FOUND", `No run "${params.id}"${query.op ? ` with op "${query.op}"` : ""}`);
          reply.hijack();
          const out = reply.raw;
          out.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
          const write = (event: RunEvent) => out.write(JSON.stringify(event) + "\n");
          const states = new Map<string, Op["state"]>();
          const seen = new Set<string>();
          for (const op of runOps.reverse()) {
            for (const chunk of await store.readOutput(op.id)) {
              seen.add(`${op.id}/${chunk.seq}`);
              write({ type: "output", opId: op.id, stream: chunk.stream, seq: chunk.seq, data: chunk.data.toString("base64") });
            }
          }
          for (const op of runOps) {
            const fresh = (await store.getOp(op.id))!;
            states.set(op.id, fresh.state);
            write({ type: "state", op: toApiOp(fresh) });
          }
          await new Promise<void>((resolve) => {
            const allDone = () => [...states.values()].every(isTerminal);
            const handle = (event: RunEvent) => {
              if (event.type === "output") {
                const key = `${event.opId}/${event.seq}`;
                if (!wanted(event.opId) || seen.has(key)) return;
                seen.add(key);
              } else if (event.type === "state") {
                if (!wanted(event.op.id)) return;
                states.set(event.op.id, event.op.state);
              }
              write(event);
              if (allDone()) resolve();
            };
            for (const event of live.splice(0)) handle(event);
            forward = handle;
            request.raw.on("close", () => resolve());
            if (allDone()) resolve();
          });
          write({ type: "end" });
          out.end();
        } finally {
          unsubscribe();
        }
      },
    }),
  ];
}
