import { z } from "zod";
import { Id, Timestamp } from "./common.js";

export const Role = z.enum(["admin", "operator", "reader"]);
export type Role = z.infer<typeof Role>;
export const TokenKind = z.enum(["api", "enroll"]);
export type TokenKind = z.infer<typeof TokenKind>;
const MAX_TTL_SECONDS = 365 * 24 * 3600;

export const CreateTokenRequest = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("api"),
    role: Role,
    name: z.string().min(1).max(64),
    ttlSeconds: z.number().int().positive().max(MAX_TTL_SECONDS).optional(),
  }),
  z.object({
    kind: z.literal("enroll"),
    name: z.string().min(1).max(64).optional(),
    ttlSeconds: z.number().int().positive().max(MAX_TTL_SECONDS).default(3600),
  }),
]);
export type CreateTokenRequest = z.infer<typeof CreateTokenRequest>;

export const TokenInfo = z.object({
  id: Id,
  kind: TokenKind,
  name: z.string(),
  role: Role.nullable(),
  createdAt: Timestamp,
  createdBy: z.string().nullable(),
  expiresAt: Timestamp.nullable(),
  usedAt: Timestamp.nullable(),
  revokedAt: Timestamp.nullable(),
});
export type TokenInfo = z.infer<typeof TokenInfo>;

/** The clear token appears once, in this response, and nowhere else. */
export const CreateTokenResponse = z.object({ token: z.string(), info: TokenInfo });
export type CreateTokenResponse = z.infer<typeof CreateTokenResponse>;
export const TokenList = z.object({ tokens: z.array(TokenInfo) });

export const AuditEntry = z.object({
  id: z.number().int(),
  at: Timestamp,
  actor: z.string(),
  action: z.string(),
  target: z.string().nullable(),
  result: z.string(),
  detail: z.string().nullable(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;
export const AuditList = z.object({ entries: z.array(AuditEntry) });
export const AuditQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });
