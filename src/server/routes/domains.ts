import {
  AccountActionRequest,
  AccountResult,
  AccountsListResult,
  AddDomainRequest,
  Domain,
  DomainAccountParams,
  DomainInfoResult,
  DomainList,
  LifelineError,
  RealmParams,
  ResetPasswordRequest,
  type OpSpec,
} from "../../protocol/index.js";
import type { ServerDeps } from "../deps.js";
import { requireDomain, toApiDomain, viaMachine } from "../domains.js";
import { opData } from "../ops-service.js";
import { defineRoute } from "../route-table.js";
import { ACCOUNT_FLAG_ACTIONS, accountAction, checkSealExpiry } from "./accounts.js";
import { requireMachine } from "./machines.js";

/**
 * AD domains and their accounts. Every domain op runs on the domain's agent (`via`), which alone
 * holds the bind credential; the server keeps the domain's settings and what the DC said, never
 * the credential (it relays it once, sealed to that agent).
 */
export function domainRoutes(deps: ServerDeps) {
  const { store, ops, audit } = deps;
  const act = accountAction(deps);
  const via = async (realm: string) => {
    const domain = await requireDomain(store, realm);
    return { domain, machine: await viaMachine(store, domain) };
  };
  return [
    defineRoute({
      method: "POST",
      url: "/v1/domains",
      summary: "Add (or replace) a domain: the agent of `via` checks the realm and the bind credential against a DC, then keeps the credential",
      role: "admin",
      action: "add domains",
      body: AddDomainRequest,
      response: Domain,
      handler: async ({ body, principal }) => {
        const machine = await requireMachine(deps, body.via);
        checkSealExpiry(body.expiresAt);
        const { settings } = body;
        const binding = { purpose: "domain-credential" as const, machineId: machine.id, opId: body.opId, realm: settings.realm, bindUser: settings.bindUser, expiresAt: body.expiresAt };
        const spec: OpSpec = { kind: "domain.configure", args: { settings, sealed: body.sealed, binding } };
        try {
          const op = await ops.runAndWait(principal, machine, spec, { opId: body.opId, expiresAt: body.expiresAt });
          const { domain: info } = DomainInfoResult.parse(opData(op));
          const record = { realm: settings.realm, viaMachineId: machine.id, bindUser: settings.bindUser, servers: settings.servers, caPem: settings.caPem ?? null, info, createdAt: Date.now(), createdBy: principal.label };
          await store.putDomain(record);
          await audit.record(principal, "domain.add", settings.realm, "ok", `via=${machine.name} bindUser=${settings.bindUser} server=${info.server}`);
          return toApiDomain(store, record);
        } catch (err) {
          await audit.record(principal, "domain.add", settings.realm, "failed", err instanceof LifelineError ? err.code : "INTERNAL");
          throw err;
        }
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/domains",
      summary: "List the configured domains",
      role: "reader",
      action: "list domains",
      response: DomainList,
      handler: async () => ({ domains: await Promise.all((await store.listDomains()).map((d) => toApiDomain(store, d))) }),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/domains/:realm",
      summary: "Show one domain",
      role: "reader",
      action: "show domains",
      params: RealmParams,
      response: Domain,
      handler: async ({ params }) => toApiDomain(store, await requireDomain(store, params.realm)),
    }),
    defineRoute({
      method: "DELETE",
      url: "/v1/domains/:realm",
      summary: "Remove a domain: its agent forgets the bind credential first",
      role: "admin",
      action: "remove domains",
      params: RealmParams,
      handler: async ({ params, principal }) => {
        const { domain, machine } = await via(params.realm);
        await ops.runAndWait(principal, machine, { kind: "domain.forget", args: { realm: domain.realm } });
        await store.deleteDomain(domain.realm);
        await audit.record(principal, "domain.remove", domain.realm, "ok", `via=${machine.name}`);
        return { removed: domain.realm };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/domains/:realm/accounts",
      summary: "List the domain's user accounts with their diagnosis",
      role: "reader",
      action: "list accounts",
      params: RealmParams,
      response: AccountsListResult,
      handler: async ({ params, principal }) => {
        const { domain, machine } = await via(params.realm);
        return AccountsListResult.parse(opData(await ops.runAndWait(principal, machine, { kind: "accounts.list", args: { realm: domain.realm } })));
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/domains/:realm/accounts/:user",
      summary: "Show and diagnose one domain account",
      role: "reader",
      action: "show accounts",
      params: DomainAccountParams,
      response: AccountResult,
      handler: async ({ params, principal }) => {
        const { domain, machine } = await via(params.realm);
        return AccountResult.parse(opData(await ops.runAndWait(principal, machine, { kind: "accounts.inspect", args: { user: params.user, realm: domain.realm } })));
      },
    }),
    ...ACCOUNT_FLAG_ACTIONS.map(({ verb, kind, domain: summary, action }) =>
      defineRoute({
        method: "POST",
        url: `/v1/domains/:realm/accounts/:user/${verb}`,
        summary,
        role: "operator",
        action,
        params: DomainAccountParams,
        body: AccountActionRequest,
        response: AccountResult,
        handler: async ({ params, body, principal }) => {
          const { domain, machine } = await via(params.realm);
          return act(principal, machine, `${domain.realm}\\${params.user}`, { kind, args: { user: params.user, allowSystem: body.allowSystem, realm: domain.realm } });
        },
      }),
    ),
    defineRoute({
      method: "POST",
      url: "/v1/domains/:realm/accounts/:user/reset-password",
      summary: "Like `net user NAME * /domain`: a new password, sealed by the client to the domain agent's key",
      role: "operator",
      action: "reset passwords",
      params: DomainAccountParams,
      body: ResetPasswordRequest,
      response: AccountResult,
      handler: async ({ params, body, principal }) => {
        const { domain, machine } = await via(params.realm);
        checkSealExpiry(body.expiresAt);
        const binding = { purpose: "reset-password" as const, machineId: machine.id, opId: body.opId, user: params.user, expiresAt: body.expiresAt, realm: domain.realm };
        const spec: OpSpec = {
          kind: "accounts.reset-password",
          args: { user: params.user, allowSystem: body.allowSystem, mustChange: body.mustChange, sealed: body.sealed, binding, realm: domain.realm },
        };
        return act(principal, machine, `${domain.realm}\\${params.user}`, spec, { opId: body.opId, expiresAt: body.expiresAt });
      },
    }),
  ];
}
