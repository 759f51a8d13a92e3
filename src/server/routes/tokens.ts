import { hashToken, newId, newSecretToken } from "../../crypto/index.js";
import { CreateTokenRequest, CreateTokenResponse, IdParams, LifelineError, TokenInfo, TokenList } from "../../protocol/index.js";
import type { TokenRecord } from "../../store/index.js";
import type { ServerDeps } from "../deps.js";
import { defineRoute } from "../route-table.js";

export const publicToken = ({ hash: _h, ...info }: TokenRecord): TokenInfo => info;

export function tokenRoutes({ store, audit }: ServerDeps) {
  return [
    defineRoute({
      method: "POST",
      url: "/v1/tokens",
      summary: "Create an API token (with a role) or a one-time agent enrollment token",
      role: "admin",
      action: "create tokens",
      body: CreateTokenRequest,
      response: CreateTokenResponse,
      handler: async ({ body, principal }) => {
        const now = Date.now();
        const token = newSecretToken(body.kind);
        const record: TokenRecord = {
          id: newId(8),
          kind: body.kind,
          name: body.name ?? (body.kind === "enroll" ? "enrollment" : "api"),
          role: body.kind === "api" ? body.role : null,
          hash: hashToken(token),
          createdAt: now,
          createdBy: principal.label,
          expiresAt: body.ttlSeconds ? now + body.ttlSeconds * 1000 : null,
          usedAt: null,
          revokedAt: null,
        };
        await store.insertToken(record);
        await audit.record(principal, `token.create`, record.id, "ok", `kind=${record.kind} role=${record.role ?? "-"} name=${record.name}`);
        return { token, info: publicToken(record) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/tokens",
      summary: "List tokens (never their secret values)",
      role: "admin",
      action: "list tokens",
      response: TokenList,
      handler: async () => ({ tokens: (await store.listTokens()).map(publicToken) }),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/tokens/:id/revoke",
      summary: "Revoke a token",
      role: "admin",
      action: "revoke tokens",
      params: IdParams,
      response: TokenInfo,
      handler: async ({ params, principal }) => {
        const existing = await store.getToken(params.id);
        if (!existing) throw new LifelineError("TOKEN_NOT_FOUND", `No token "${params.id}"`);
        await store.revokeToken(params.id, Date.now());
        await audit.record(principal, "token.revoke", params.id, "ok");
        return publicToken((await store.getToken(params.id))!);
      },
    }),
  ];
}
