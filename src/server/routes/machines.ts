import { LifelineError, Machine, MachineList, MachineNameParams, SetLabelsRequest } from "../../protocol/index.js";
import type { MachineRecord } from "../../store/index.js";
import type { ServerDeps } from "../deps.js";
import { defineRoute } from "../route-table.js";

export async function requireMachine(deps: Pick<ServerDeps, "store">, name: string): Promise<MachineRecord> {
  const machine = await deps.store.getMachineByName(name);
  if (!machine) throw new LifelineError("MACHINE_NOT_FOUND", `No machine named "${name}"`);
  return machine;
}

export function machineRoutes(deps: ServerDeps) {
  const { store, audit } = deps;
  return [
    defineRoute({
      method: "GET",
      url: "/v1/machines",
      summary: "List machines with their agent status",
      role: "reader",
      action: "list machines",
      response: MachineList,
      handler: async () => ({ machines: await store.listMachines() }),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/machines/:name",
      summary: "Show one machine",
      role: "reader",
      action: "show machines",
      params: MachineNameParams,
      response: Machine,
      handler: async ({ params }) => requireMachine(deps, params.name),
    }),
    defineRoute({
      method: "PATCH",
      url: "/v1/machines/:name/labels",
      summary: "Set or remove labels of a machine",
      role: "operator",
      action: "label machines",
      params: MachineNameParams,
      body: SetLabelsRequest,
      response: Machine,
      handler: async ({ params, body, principal }) => {
        const machine = await requireMachine(deps, params.name);
        if (!Object.keys(body.set).length && !body.remove.length) return machine;
        const labels = { ...machine.labels, ...body.set };
        for (const key of body.remove) delete labels[key];
        if (Object.keys(labels).length > 32) throw new LifelineError("VALIDATION_FAILED", "A machine has at most 32 labels");
        await store.updateMachine(machine.id, { labels });
        await audit.record(principal, "machine.label", machine.name, "ok", JSON.stringify(body));
        return requireMachine(deps, params.name);
      },
    }),
    defineRoute({
      method: "DELETE",
      url: "/v1/machines/:name",
      summary: "Forget a machine (its agent can no longer connect; re-enroll to add it back)",
      role: "admin",
      action: "delete machines",
      params: MachineNameParams,
      handler: async ({ params, principal }) => {
        const machine = await requireMachine(deps, params.name);
        await store.deleteMachine(machine.id);
        deps.gateway.disconnect(machine.id);
        await audit.record(principal, "machine.delete", machine.name, "ok", `machine=${machine.id}`);
        return { deleted: machine.name };
      },
    }),
  ];
}
