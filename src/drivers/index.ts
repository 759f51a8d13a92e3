/**
 * The drivers Lifeline knows, by name. A machine's stored DriverHandle names its driver;
 * driverFor() finds it (and checks the handle) or throws DRIVER_HANDLE_INVALID.
 */
import { LifelineError } from "../protocol/errors.js";
import type { Driver, DriverHandle } from "./driver.js";
import { LabDriver } from "./lab.js";

export * from "./driver.js";
export { LabDriver } from "./lab.js";

export const DRIVERS: Record<string, Driver> = {
  lab: new LabDriver(),
};

/** The driver of a handle, after the driver validated the handle's ref. */
export function driverFor(handle: DriverHandle): Driver {
  const driver = Object.hasOwn(DRIVERS, handle.driver) ? DRIVERS[handle.driver] : undefined;
  if (!driver) {
    throw new LifelineError("DRIVER_HANDLE_INVALID", `Unknown driver "${handle.driver}" (known: ${Object.keys(DRIVERS).join(", ")})`);
  }
  driver.validate(handle);
  return driver;
}
