import { bindingBytes } from "../../crypto/index.js";
import { LifelineError, type AccountsVerifyBindArgs, type DomainConfigureArgs, type DomainForgetArgs } from "../../protocol/index.js";
import type { z } from "zod";
import type { OpContext } from "../executor.js";
import { forgetDomain, loadDomain, saveDomain } from "../domain-settings.js";
import { probeDomain, verifyBind } from "../platform/ad.js";
import { dataOp } from "../results.js";

/** Opens a secret sealed to this agent for exactly this op; the caller wipes it. */
function openForOp(ctx: OpContext, args: { sealed: Parameters<OpContext["openSecret"]>[0] }, binding: { machineId: string; opId: string; expiresAt: number }): Buffer {
  if (binding.opId !== ctx.opId || binding.machineId !== ctx.machineId || binding.expiresAt !== ctx.expiresAt) {
    throw new LifelineError("SECRET_BINDING_INVALID", "The sealed secret was made for another op, machine or expiry");
  }
  const secret = ctx.openSecret(args.sealed, bindingBytes(binding));
  if (!secret) throw new LifelineError("SECRET_BINDING_INVALID", "The sealed secret cannot be opened with this agent's key");
  return secret;
}

/** Checks the settings and the bind credential against the DC, then keeps them (only here). */
export const configureDomain = (args: z.infer<typeof DomainConfigureArgs>, ctx: OpContext) =>
  dataOp(async () => {
    const { settings, binding } = args;
    if (binding.realm !== settings.realm || binding.bindUser !== settings.bindUser) {
      throw new LifelineError("SECRET_BINDING_INVALID", "The sealed credential was made for another realm or bind account");
    }
    const secret = openForOp(ctx, args, binding);
    try {
      const bindPassword = secret.toString("utf8");
      const info = await probeDomain(settings, bindPassword);
      saveDomain(ctx.stateDir, { version: 1, settings, info, bindPassword });
      return { domain: info };
    } finally {
      secret.fill(0);
    }
  });

export const forgetDomainOp = (args: z.infer<typeof DomainForgetArgs>, ctx: OpContext) => dataOp(async () => ({ forgotten: forgetDomain(ctx.stateDir, args.realm) }));

export const verifyBindOp = (args: z.infer<typeof AccountsVerifyBindArgs>, ctx: OpContext) =>
  dataOp(async () => {
    if (args.binding.realm !== args.realm || args.binding.user !== args.user) {
      throw new LifelineError("SECRET_BINDING_INVALID", "The sealed password was made for another realm or user");
    }
    const { settings } = loadDomain(ctx.stateDir, args.realm);
    const secret = openForOp(ctx, args, args.binding);
    try {
      return { verify: await verifyBind(settings, args.user, secret.toString("utf8")) };
    } finally {
      secret.fill(0);
    }
  });
