import { AuditList, AuditQuery } from "../../protocol/index.js";
import type { ServerDeps } from "../deps.js";
import { defineRoute } from "../route-table.js";

export function auditRoutes({ store }: ServerDeps) {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/audit",
      summary: "Audit log, newest first",
      role: "admin",
      action: "read the audit log",
      query: AuditQuery,
      response: AuditList,
      handler: async ({ query }) => ({ entries: await store.listAudit(query.limit) }),
    }),
  ];
}
