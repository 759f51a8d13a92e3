import type { OpResult, OpSpec } from "../../protocol/index.js";
import type { OpContext } from "../executor.js";
import { runScript } from "./run.js";
import { clearFlag, expireAccount, inspectAccount, listAccounts, resetPassword, unlockAccount } from "./accounts.js";
import { configureDomain, forgetDomainOp, verifyBindOp } from "./domain.js";

type Handlers = { [K in OpSpec["kind"]]: (args: Extract<OpSpec, { kind: K }>["args"], ctx: OpContext) => Promise<OpResult> };

/** One handler per op kind; the type makes a missing kind a compile error. */
export const OP_HANDLERS: Handlers = {
  run: runScript,
  "accounts.list": listAccounts,
  "accounts.inspect": inspectAccount,
  "accounts.expire": expireAccount,
  "accounts.clear-flag": clearFlag,
  "accounts.reset-password": resetPassword,
  "accounts.unlock": unlockAccount,
  "accounts.verify-bind": verifyBindOp,
  "domain.configure": configureDomain,
  "domain.forget": forgetDomainOp,
};
