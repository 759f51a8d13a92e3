import type { MachineRecord } from "../store/index.js";

/** The address a login is verified against: the machine's first routable IPv4 address. */
export function loginAddress(machine: MachineRecord): string | undefined {
  return machine.facts?.addresses.find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a) && !a.startsWith("127.") && !a.startsWith("169.254."));
}
