import { bindingBytes } from "../../crypto/index.js";
import {
  LifelineError,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  type Account,
  type AccountsClearFlagArgs,
  type AccountsExpireArgs,
  type AccountsInspectArgs,
  type AccountsListArgs,
  type AccountsResetArgs,
  type AccountsUnlockArgs,
  type OpResult,
} from "../../protocol/index.js";
import type { z } from "zod";
import type { OpContext } from "../executor.js";
import { loadDomain } from "../domain-settings.js";
import { AdAccounts } from "../platform/ad.js";
import { LinuxAccounts } from "../platform/linux.js";
import { WindowsAccounts } from "../platform/windows.js";
import { dataOp } from "../results.js";


/**
 * One account database, local or a domain's: the ops below do not care which. A domain is
 * reached with the settings this agent keeps for its realm (see domain-settings.ts).
 */
interface AccountBackend {
  list(): Promise<Account[]> | Account[];
  get(user: string): Promise<Account> | Account;
  expire(user: string, allowSystem: boolean): Promise<Account>;
  clearFlag(user: string, allowSystem: boolean): Promise<Account>;
  unlock(user: string, allowSystem: boolean): Promise<Account>;
  resetPassword(user: string, password: Buffer, mustChange: boolean, allowSystem: boolean): Promise<Account>;
}

/** The machine's own accounts: the platform backend, each change refused first for system accounts. */
function localBackendFor(platform: NodeJS.Platform): AccountBackend {
  const local = platform === "win32" ? new WindowsAccounts() : new LinuxAccounts();
  const guarded = async <T>(user: string, allowSystem: boolean, change: () => Promise<T>): Promise<T> => (await local.changeable(user, allowSystem), change());
  return {
    list: () => local.list(),
    get: (user) => local.get(user),
    expire: (user, allowSystem) => guarded(user, allowSystem, () => local.expire(user)),
    clearFlag: (user, allowSystem) => guarded(user, allowSystem, () => local.clearFlag(user)),
    unlock: (user, allowSystem) =>
      guarded(user, allowSystem, () => {
        if (local instanceof LinuxAccounts) return local.unlock(user);
        throw new LifelineError("ACCOUNT_CHANGE_FAILED", "Unlocking a local Windows account is not supported yet (lockout ends after the policy's lockout duration)");
      }),
    resetPassword: (user, password, mustChange, allowSystem) => guarded(user, allowSystem, () => local.resetPassword(user, password, mustChange)),
  };
}

const localBackend = localBackendFor(process.platform);

const backendFor = (realm: string | undefined, ctx: OpContext): AccountBackend => (realm ? new AdAccounts(loadDomain(ctx.stateDir, realm)) : localBackend);

export const listAccounts = (args: z.infer<typeof AccountsListArgs>, ctx: OpContext) => dataOp(async () => ({ accounts: await backendFor(args.realm, ctx).list() }));
export const inspectAccount = (args: z.infer<typeof AccountsInspectArgs>, ctx: OpContext) => dataOp(async () => ({ account: await backendFor(args.realm, ctx).get(args.user) }));
export const expireAccount = (args: z.infer<typeof AccountsExpireArgs>, ctx: OpContext) =>
  dataOp(async () => ({ account: await backendFor(args.realm, ctx).expire(args.user, args.allowSystem) }));
export const clearFlag = (args: z.infer<typeof AccountsClearFlagArgs>, ctx: OpContext) =>
  dataOp(async () => ({ account: await backendFor(args.realm, ctx).clearFlag(args.user, args.allowSystem) }));
export const unlockAccount = (args: z.infer<typeof AccountsUnlockArgs>, ctx: OpContext) =>
  dataOp(async () => ({ account: await backendFor(args.realm, ctx).unlock(args.user, args.allowSystem) }));

export function resetPassword(args: z.infer<typeof AccountsResetArgs>, ctx: OpContext): Promise<OpResult> {
  return dataOp(async () => {
    const b = args.binding;
    // The sealed password must have been made for exactly this op: same machine, op, user, realm, expiry.
    if (b.opId !== ctx.opId || b.machineId !== ctx.machineId || b.user !== args.user || b.expiresAt !== ctx.expiresAt || b.realm !== args.realm) {
      throw new LifelineError("SECRET_BINDING_INVALID", "The sealed password was made for another op, machine, user, domain or expiry");
    }
    const backend = backendFor(args.realm, ctx);
    const password = ctx.openSecret(args.sealed, bindingBytes(b));
    if (!password) throw new LifelineError("SECRET_BINDING_INVALID", "The sealed password cannot be opened with this agent's key");
    try {
      if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH || password.includes(0x0a) || password.includes(0x00)) {
        throw new LifelineError("PASSWORD_POLICY", `The new password must be ${MIN_PASSWORD_LENGTH}-${MAX_PASSWORD_LENGTH} bytes without newlines`);
      }
      return { account: await backend.resetPassword(args.user, password, args.mustChange, args.allowSystem) };
    } finally {
      password.fill(0);
    }
  });
}
