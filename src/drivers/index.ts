/**
 * The drivers one server knows, by name. A machine's stored DriverHandle names its driver;
 * Drivers.for() finds it (and checks the handle) or throws DRIVER_HANDLE_INVALID. Built once
 * per server from its settings (the qemu driver's VM root), so two servers in one process
 * (tests) never share a VM root.
 */
import { LifelineError } from "../protocol/errors.js";
import type { Driver, DriverHandle } from "./driver.js";
import { LabDriver } from "./lab.js";
import { QemuDriver } from "./qemu.js";

export * from "./driver.js";
export { LabDriver } from "./lab.js";
export { QemuDriver } from "./qemu.js";

export class Drivers {
  private readonly byName: ReadonlyMap<string, Driver>;

  constructor(drivers: readonly Driver[]) {
    this.byName = new Map(drivers.map((d) => [d.name, d]));
  }

  get names(): string[] {
    return [...this.byName.keys()];
  }

  named(name: string): Driver | undefined {
    return this.byName.get(name);
  }

  /** The driver of a handle, after the driver validated the handle's ref. */
  for(handle: DriverHandle): Driver {
    const driver = this.byName.get(handle.driver);
    if (!driver) throw new LifelineError("DRIVER_HANDLE_INVALID", `Unknown driver "${handle.driver}" (known: ${this.names.join(", ")})`);
    driver.validate(handle);
    return driver;
  }
}

export function serverDrivers(settings: { vmRoot: string; vmStopTimeoutMs?: number; labRoot?: string }): Drivers {
  return new Drivers([
    new LabDriver(settings.labRoot !== undefined ? { labRoot: settings.labRoot } : {}),
    new QemuDriver({ vmRoot: settings.vmRoot, ...(settings.vmStopTimeoutMs !== undefined ? { shutdownTimeoutMs: settings.vmStopTimeoutMs } : {}) }),
  ]);
}
