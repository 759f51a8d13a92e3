import { randomBytes } from "node:crypto";
import { bindingBytes, open } from "../../crypto/index.js";
import type { Driver } from "../../drivers/index.js";
import {
  LifelineError,
  MachineNameParams,
  RepairCreateRequest,
  RepairRestoreResult,
  RepairRunRequest,
  RepairRunResult,
  RepairSession,
  type DriverHandle,
} from "../../protocol/index.js";
import { fixAccountOnDisk } from "../../repair/account-on-disk.js";
import type { MachineRecord } from "../../store/index.js";
import type { ServerDeps } from "../deps.js";
import { consumeSealedNonce } from "../jobs-service.js";
import { defineRoute } from "../route-table.js";
import { requireMachine } from "./machines.js";
import { handleOf } from "./snapshots.js";

/** The machine's driver, if it can attach the disk for offline repair. */
function offlineDriver(deps: ServerDeps, machine: MachineRecord): { driver: Driver & { disk: NonNullable<Driver["disk"]> }; handle: DriverHandle } {
  const handle = handleOf(machine);
  const driver = deps.drivers.for(handle);
  if (!driver.disk) throw new LifelineError("NO_DRIVER", `The ${handle.driver} driver cannot attach "${machine.name}"'s disk for offline repair`);
  return { driver: driver as Driver & { disk: NonNullable<Driver["disk"]> }, handle };
}

/**
 * `lifeline repair create|run|restore` (after `az vm repair`): the offline steps of fix-logon,
 * one at a time, for a person who wants to look at the disk or do more than one fix.
 */
export function repairRoutes(deps: ServerDeps) {
  const { audit, seal } = deps;
  return [
    defineRoute({
      method: "POST",
      url: "/v1/machines/:name/repair",
      summary: "Snapshot the machine, stop it and attach its disk for offline repair",
      role: "operator",
      action: "start offline repairs",
      params: MachineNameParams,
      body: RepairCreateRequest,
      response: RepairSession,
      handler: async ({ params, body, principal }) => {
        const machine = await requireMachine(deps, params.name);
        const { driver, handle } = offlineDriver(deps, machine);
        const snapshotName = body.snapshot ? `repair-${new Date().toISOString().replace(/[:.]/g, "-")}` : null;
        if (snapshotName) await driver.snapshots.create(handle, snapshotName);
        await driver.power.stop(handle);
        const { mountPath } = await driver.disk.attach(handle);
        await audit.record(principal, "repair.create", machine.name, "ok", `snapshot=${snapshotName ?? "none"}`);
        return { machineName: machine.name, mountPath, snapshotName };
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/machines/:name/repair/run",
      summary: "Fix an account on the attached disk: a new password (sealed to the server's key) or clear the must-change flag",
      role: "operator",
      action: "run offline repairs",
      params: MachineNameParams,
      body: RepairRunRequest,
      response: RepairRunResult,
      handler: async ({ params, body, principal }) => {
        const machine = await requireMachine(deps, params.name);
        const { driver, handle } = offlineDriver(deps, machine);
        if ((await driver.power.status(handle)) === "running") {
          throw new LifelineError("MACHINE_RUNNING", `"${machine.name}" is running: lifeline repair create ${machine.name} first`);
        }
        const { mountPath } = await driver.disk.attach(handle);
        let result = "failed";
        try {
          if (body.action === "clear-flag") {
            const edited = await fixAccountOnDisk(mountPath, body.user, { kind: "clear-flag" });
            result = `ok ${edited.method}`;
            return edited;
          }
          const b = body.binding;
          if (b.machineId !== machine.id || b.user !== body.user) throw new LifelineError("SECRET_BINDING_INVALID", "The sealed password was made for another machine or user");
          await consumeSealedNonce(deps.store, b);
          const password = open(body.sealed, seal.privateKey, seal.publicKey, bindingBytes(b));
          if (!password) throw new LifelineError("SECRET_BINDING_INVALID", "The sealed password cannot be opened with the server's key");
          try {
            const edited = await fixAccountOnDisk(mountPath, body.user, { kind: "set-password", password, scriptId: `repair${randomBytes(6).toString("hex")}` });
            result = `ok ${edited.method}`;
            return edited;
          } finally {
            password.fill(0);
          }
        } finally {
          await audit.record(principal, `repair.${body.action}`, `${machine.name}/${body.user}`, result);
        }
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/machines/:name/repair/restore",
      summary: "Give the disk back and start the machine",
      role: "operator",
      action: "finish offline repairs",
      params: MachineNameParams,
      response: RepairRestoreResult,
      handler: async ({ params, principal }) => {
        const machine = await requireMachine(deps, params.name);
        const { driver, handle } = offlineDriver(deps, machine);
        await driver.disk.detach(handle);
        await driver.power.start(handle);
        await audit.record(principal, "repair.restore", machine.name, "ok");
        return { machineName: machine.name, started: true };
      },
    }),
  ];
}
