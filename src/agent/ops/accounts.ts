import { bindingBytes } from "../../crypto/index.js";
import {
  LifelineError,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  type AccountsClearFlagArgs,
  type AccountsExpireArgs,
  type AccountsInspectArgs,
  type AccountsResetArgs,
  type OpResult,
} from "../../protocol/index.js";
import type { z } from "zod";
import type { OpContext } from "../executor.js";
import { LinuxAccounts } from "../platform/linux.js";
import { resultWithoutOutput } from "../results.js";

const accounts = new LinuxAccounts();

/** Wraps an account action: its data, or its LifelineError as the op's error. */
async function dataOp(action: () => Promise<unknown> | unknown): Promise<OpResult> {
  const startedAt = Date.now();
  try {
    return resultWithoutOutput(startedAt, { data: await action() });
  } catch (err) {
    const error = err instanceof LifelineError ? { code: err.code, message: err.message } : { code: "INTERNAL", message: (err as Error).message };
    return resultWithoutOutput(startedAt, { error });
  }
}

export const listAccounts = () => dataOp(() => ({ accounts: accounts.list() }));
export const inspectAccount = (args: z.infer<typeof AccountsInspectArgs>) => dataOp(() => ({ account: accounts.get(args.user) }));
export const expireAccount = (args: z.infer<typeof AccountsExpireArgs>) =>
  dataOp(async () => (accounts.changeable(args.user, args.allowSystem), { account: await accounts.expire(args.user) }));
export const clearFlag = (args: z.infer<typeof AccountsClearFlagArgs>) =>
  dataOp(async () => (accounts.changeable(args.user, args.allowSystem), { account: await accounts.clearFlag(args.user) }));

export function resetPassword(args: z.infer<typeof AccountsResetArgs>, ctx: OpContext): Promise<OpResult> {
  return dataOp(async () => {
    const b = args.binding;
    // The sealed password must have been made for exactly this op: same machine, op, user, expiry.
    if (b.opId !== ctx.opId || b.machineId !== ctx.machineId || b.user !== args.user || b.expiresAt !== ctx.expiresAt) {
      throw new LifelineError("SECRET_BINDING_INVALID", "The sealed password was made for another op, machine, user or expiry");
    }
    accounts.changeable(args.user, args.allowSystem);
    const password = ctx.openSecret(args.sealed, bindingBytes(b));
    if (!password) throw new LifelineError("SECRET_BINDING_INVALID", "The sealed password cannot be opened with this agent's key");
    try {
      if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH || password.includes(0x0a) || password.includes(0x00)) {
        throw new LifelineError("PASSWORD_POLICY", `The new password must be ${MIN_PASSWORD_LENGTH}-${MAX_PASSWORD_LENGTH} bytes without newlines`);
      }
      return { account: await accounts.resetPassword(args.user, password, args.mustChange) };
    } finally {
      password.fill(0);
    }
  });
}
