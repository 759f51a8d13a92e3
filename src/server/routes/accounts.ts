import {
  AccountActionRequest,
  AccountParams,
  AccountResult,
  AccountsListResult,
  LIFELINE_VERSION,
  LifelineError,
  MachineNameParams,
  PROTOCOL_VERSION,
  ResetPasswordRequest,
  ServerInfo,
  VerifyRequest,
  VerifyResult,
  type OpSpec,
} from "../../protocol/index.js";
import type { MachineRecord } from "../../store/index.js";
import type { Principal } from "../auth.js";
import type { ServerDeps } from "../deps.js";
import { defineRoute } from "../route-table.js";
import { consumeSealedNonce } from "../jobs-service.js";
import { checkLogin } from "../login-check.js";
import { opData } from "../ops-service.js";
import { requireMachine } from "./machines.js";



/** Runs an account-changing op and audits it (target: machine/user or machine/REALM\\user). */
export function accountAction(deps: Pick<ServerDeps, "ops" | "audit">) {
  return async (principal: Principal, machine: MachineRecord, target: string, spec: OpSpec, opts: { opId?: string; expiresAt?: number } = {}) => {
    try {
      const op = await deps.ops.runAndWait(principal, machine, spec, opts);
      const data = AccountResult.parse(opData(op));
      await deps.audit.record(principal, spec.kind, target, "ok", `op=${op.id} state=${data.account.state}`);
      return data;
    } catch (err) {
      await deps.audit.record(principal, spec.kind, target, "failed", err instanceof LifelineError ? err.code : "INTERNAL");
      throw err;
    }
  };
}

/**
 * The one-attribute account changes (password untouched), for machines' local accounts and for
 * domains' accounts alike: URL verb, op kind, audit action, and what each does in each place.
 */
export const ACCOUNT_FLAG_ACTIONS = [
  { verb: "expire", kind: "accounts.expire", action: "expire accounts", local: "Set the must-change-password flag", domain: "Set pwdLastSet = 0: must change password at next logon" },
  { verb: "clear-flag", kind: "accounts.clear-flag", action: "clear account flags", local: "Clear the must-change / expired state, keeping the password", domain: "Set pwdLastSet = -1: the must-change flag goes, the password stays" },
  { verb: "unlock", kind: "accounts.unlock", action: "unlock accounts", local: "Unlock a locked password (usermod -U)", domain: "Set lockoutTime = 0" },
] as const;

/** The expiry window a client-sealed password may claim. */
export function checkSealExpiry(expiresAt: number): void {
  if (expiresAt <= Date.now() || expiresAt > Date.now() + 10 * 60_000) {
    throw new LifelineError("SECRET_BINDING_INVALID", "The sealed secret's expiry must be within the next 10 minutes");
  }
}

export function accountRoutes(deps: ServerDeps) {
  const { ops, audit, seal, key } = deps;
  const act = accountAction(deps);
  return [
    defineRoute({
      method: "GET",
      url: "/v1/server-info",
      summary: "Server version and public keys (the sealing key is for passwords sent to verify a login)",
      role: "reader",
      action: "read server info",
      response: ServerInfo,
      handler: async () => ({ version: LIFELINE_VERSION, protocolVersion: PROTOCOL_VERSION, signPublicKey: key.publicKey, sealPublicKey: seal.publicKey }),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/machines/:name/accounts",
      summary: "List a machine's local accounts with their diagnosis",
      role: "reader",
      action: "list accounts",
      params: MachineNameParams,
      response: AccountsListResult,
      handler: async ({ params, principal }) => {
        const machine = await requireMachine(deps, params.name);
        return AccountsListResult.parse(opData(await ops.runAndWait(principal, machine, { kind: "accounts.list", args: {} })));
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/machines/:name/accounts/:user",
      summary: "Show and diagnose one account",
      role: "reader",
      action: "show accounts",
      params: AccountParams,
      response: AccountResult,
      handler: async ({ params, principal }) => {
        const machine = await requireMachine(deps, params.name);
        return AccountResult.parse(opData(await ops.runAndWait(principal, machine, { kind: "accounts.inspect", args: { user: params.user } })));
      },
    }),
    ...ACCOUNT_FLAG_ACTIONS.map(({ verb, kind, local: summary, action }) =>
      defineRoute({
        method: "POST",
        url: `/v1/machines/:name/accounts/:user/${verb}`,
        summary,
        role: "operator",
        action,
        params: AccountParams,
        body: AccountActionRequest,
        response: AccountResult,
        handler: async ({ params, body, principal }) =>
          act(principal, await requireMachine(deps, params.name), `${params.name}/${params.user}`, { kind, args: { user: params.user, allowSystem: body.allowSystem } }),
      }),
    ),
    defineRoute({
      method: "POST",
      url: "/v1/machines/:name/accounts/:user/reset-password",
      summary: "Set a new password, sealed by the client to the agent's key (the server only relays ciphertext)",
      role: "operator",
      action: "reset passwords",
      params: AccountParams,
      body: ResetPasswordRequest,
      response: AccountResult,
      handler: async ({ params, body, principal }) => {
        const machine = await requireMachine(deps, params.name);
        const binding = { purpose: "reset-password" as const, machineId: machine.id, opId: body.opId, user: params.user, expiresAt: body.expiresAt };
        checkSealExpiry(body.expiresAt);
        const spec: OpSpec = {
          kind: "accounts.reset-password",
          args: { user: params.user, allowSystem: body.allowSystem, mustChange: body.mustChange, sealed: body.sealed, binding },
        };
        return act(principal, machine, `${machine.name}/${params.user}`, spec, { opId: body.opId, expiresAt: body.expiresAt });
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/machines/:name/accounts/:user/verify",
      summary:
        "Try a real login: SSH from the server (a domain user, binding.realm: an LDAP bind through the domain's agent, plus SSH as NETBIOS\\user if the machine is joined); says ok, must-change, bad-password, denied or unreachable",
      role: "operator",
      action: "verify logins",
      params: AccountParams,
      body: VerifyRequest,
      response: VerifyResult,
      handler: async ({ params, body, principal }) => {
        const machine = await requireMachine(deps, params.name);
        await consumeSealedNonce(deps.store, body.binding);
        const result = await checkLogin(deps, principal, body, machine, params.user);
        const target = body.binding.realm ? `${machine.name}/${body.binding.realm}\\${params.user}` : `${machine.name}/${params.user}`;
        await audit.record(principal, "accounts.verify", target, result.outcome, result.address);
        return result;
      },
    }),
  ];
}
