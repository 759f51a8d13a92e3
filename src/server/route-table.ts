import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z, type ZodType } from "zod";
import { isErrorCode, LifelineError, LIFELINE_VERSION, type Role } from "../protocol/index.js";
import { authenticate, authorize, type Principal } from "./auth.js";
import type { Store } from "../store/index.js";

/**
 * One table of API routes: each declares its schemas and the role it needs. The same table
 * registers the Fastify handlers (validating with zod) and generates the OpenAPI document, so
 * the two cannot drift.
 */
export interface RouteContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  principal: Principal;
  request: FastifyRequest;
  reply: FastifyReply;
}

export interface RouteDef<P = unknown, Q = unknown, B = unknown> {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  url: string;
  summary: string;
  /** Minimum role, or "public" for the few routes that carry no data. */
  role: Role | "public";
  /** What the audit log and error messages call this action. */
  action: string;
  params?: ZodType<P>;
  query?: ZodType<Q>;
  body?: ZodType<B>;
  response?: ZodType;
  /** Content type of a streaming response (the handler writes to reply.raw). */
  streams?: string;
  handler: (ctx: RouteContext<P, Q, B>) => Promise<unknown>;
}

export function defineRoute<P, Q, B>(def: RouteDef<P, Q, B>): RouteDef<P, Q, B> {
  return def;
}

function parseWith<T>(schema: ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return undefined as T;
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.length ? `${issue.path.join(".")}: ` : "";
  // A schema can name a more specific error code through a custom issue's params.
  const specific = issue.code === "custom" ? (issue.params as { lifelineCode?: unknown } | undefined)?.lifelineCode : undefined;
  throw new LifelineError(isErrorCode(specific) ? specific : "VALIDATION_FAILED", `Invalid ${where}: ${path}${issue.message}`);
}

const PUBLIC: Principal = { tokenId: "-", role: "reader", label: "public" };

export function registerRoutes(app: FastifyInstance, store: Store, routes: readonly RouteDef<any, any, any>[]): void {
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      handler: async (request, reply) => {
        const principal = route.role === "public" ? PUBLIC : await authenticate(store, request);
        if (route.role !== "public") authorize(principal, route.role, route.action);
        const ctx = {
          params: parseWith(route.params, request.params, "path"),
          query: parseWith(route.query, request.query, "query"),
          body: parseWith(route.body, request.body, "request body"),
          principal,
          request,
          reply,
        };
        return route.handler(ctx);
      },
    });
  }
}

function jsonSchema(schema: ZodType, io: "input" | "output"): unknown {
  return z.toJSONSchema(schema, { io, unrepresentable: "any" });
}

/** OpenAPI 3.1 document generated from the route table. */
export function openApiDocument(routes: readonly RouteDef<any, any, any>[]): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const url = r.url.replace(/:([A-Za-z]+)/g, "{$1}");
    const parameters: unknown[] = [];
    for (const [where, schema] of [["path", r.params], ["query", r.query]] as const) {
      if (!schema) continue;
      const js = jsonSchema(schema, "input") as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, s] of Object.entries(js.properties ?? {})) {
        parameters.push({ name, in: where, required: where === "path" || (js.required ?? []).includes(name), schema: s });
      }
    }
    const responses: Record<string, unknown> = {
      "200": r.streams
        ? { description: "stream", content: { [r.streams]: {} } }
        : { description: "ok", content: r.response ? { "application/json": { schema: jsonSchema(r.response, "output") } } : {} },
      default: { description: "error", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
    };
    (paths[url] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      operationId: r.action,
      "x-lifeline-role": r.role,
      security: r.role === "public" ? [] : [{ bearer: [] }],
      parameters,
      ...(r.body ? { requestBody: { required: true, content: { "application/json": { schema: jsonSchema(r.body, "input") } } } } : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "Lifeline API", version: LIFELINE_VERSION },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: { Error: { type: "object", required: ["code", "message"], properties: { code: { type: "string" }, message: { type: "string" } } } },
    },
    paths,
  };
}
