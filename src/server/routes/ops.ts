import { IdParams, LifelineError, Op, OpList, OpQuery } from "../../protocol/index.js";
import type { ServerDeps } from "../deps.js";
import { toApiOp } from "../ops-service.js";
import { defineRoute } from "../route-table.js";
import { requireMachine } from "./machines.js";

export function opRoutes(deps: ServerDeps) {
  const { store, ops } = deps;
  return [
    defineRoute({
      method: "GET",
      url: "/v1/ops",
      summary: "List ops, newest first",
      role: "reader",
      action: "list ops",
      query: OpQuery,
      response: OpList,
      handler: async ({ query }) => {
        const machineId = query.machine ? (await requireMachine(deps, query.machine)).id : undefined;
        const list = await store.listOps({ machineId, state: query.state, runId: query.run, limit: query.limit });
        return { ops: list.map(toApiOp) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/ops/:id",
      summary: "Show one op",
      role: "reader",
      action: "show ops",
      params: IdParams,
      response: Op,
      handler: async ({ params }) => {
        const op = await store.getOp(params.id);
        if (!op) throw new LifelineError("OP_NOT_FOUND", `No op "${params.id}"`);
        return toApiOp(op);
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/ops/:id/cancel",
      summary: "Cancel an op: a queued op ends at once, a running one is stopped by its agent",
      role: "operator",
      action: "cancel ops",
      params: IdParams,
      response: Op,
      handler: async ({ params, principal }) => ops.cancel(principal, params.id),
    }),
  ];
}
