import { z } from "zod";
import { SnapshotInfo, SnapshotName } from "../../drivers/driver.js";
import { DriverHandle, LifelineError, MachineName, MachineNameParams, SetDriverRequest, Machine } from "../../protocol/index.js";
import type { MachineRecord } from "../../store/index.js";
import type { ServerDeps } from "../deps.js";
import { defineRoute } from "../route-table.js";
import { requireMachine } from "./machines.js";

const SnapshotParams = z.object({ name: MachineName, snapshot: SnapshotName });

/** The machine's driver handle, or NO_DRIVER with how to set one. */
export function handleOf(machine: MachineRecord): DriverHandle {
  if (!machine.driver) throw new LifelineError("NO_DRIVER", `"${machine.name}" has no driver: lifeline machines set-driver ${machine.name} --driver lab --ref lab=LAB --ref host=HOST`);
  return machine.driver;
}

export function snapshotRoutes(deps: ServerDeps) {
  const { audit, store } = deps;
  return [
    defineRoute({
      method: "PATCH",
      url: "/v1/machines/:name/driver",
      summary: "Say which driver (and which VM or lab host) a machine is, for snapshots and offline repair",
      role: "admin",
      action: "set drivers",
      params: MachineNameParams,
      body: SetDriverRequest,
      response: Machine,
      handler: async ({ params, body, principal }) => {
        const machine = await requireMachine(deps, params.name);
        if (body.handle) deps.drivers.for(body.handle).validate(body.handle);
        await store.updateMachine(machine.id, { driver: body.handle });
        await audit.record(principal, "machine.set-driver", machine.name, "ok", body.handle ? `${body.handle.driver} ${JSON.stringify(body.handle.ref)}` : "none");
        return requireMachine(deps, params.name);
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/machines/:name/snapshots",
      summary: "List a machine's disk snapshots",
      role: "reader",
      action: "list snapshots",
      params: MachineNameParams,
      response: z.object({ snapshots: z.array(SnapshotInfo) }),
      handler: async ({ params }) => {
        const handle = handleOf(await requireMachine(deps, params.name));
        return { snapshots: await deps.drivers.for(handle).snapshots.list(handle) };
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/machines/:name/snapshots",
      summary: "Snapshot a machine's disk (crash-consistent, O(1))",
      role: "operator",
      action: "create snapshots",
      params: MachineNameParams,
      body: z.object({ snapshot: SnapshotName }),
      response: SnapshotInfo,
      handler: async ({ params, body, principal }) => {
        const machine = await requireMachine(deps, params.name);
        const handle = handleOf(machine);
        const info = await deps.drivers.for(handle).snapshots.create(handle, body.snapshot);
        await audit.record(principal, "snapshot.create", machine.name, "ok", `${info.name} ${info.consistency}`);
        return info;
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/machines/:name/snapshots/:snapshot/revert",
      summary: "Revert a machine's disk to a snapshot (stops and restarts the machine)",
      role: "operator",
      action: "revert snapshots",
      params: SnapshotParams,
      response: SnapshotInfo,
      handler: async ({ params, principal }) => {
        const machine = await requireMachine(deps, params.name);
        const handle = handleOf(machine);
        const info = await deps.drivers.for(handle).snapshots.revert(handle, params.snapshot, { stopIfRunning: true });
        await audit.record(principal, "snapshot.revert", machine.name, "ok", info.name);
        return info;
      },
    }),
    defineRoute({
      method: "DELETE",
      url: "/v1/machines/:name/snapshots/:snapshot",
      summary: "Delete a snapshot",
      role: "operator",
      action: "delete snapshots",
      params: SnapshotParams,
      handler: async ({ params, principal }) => {
        const machine = await requireMachine(deps, params.name);
        const handle = handleOf(machine);
        await deps.drivers.for(handle).snapshots.delete(handle, params.snapshot);
        await audit.record(principal, "snapshot.delete", machine.name, "ok", params.snapshot);
        return { deleted: params.snapshot };
      },
    }),
  ];
}
