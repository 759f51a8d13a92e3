import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import type { Command } from "commander";
import { QemuDriver, VmName } from "../drivers/qemu.js";
import { createVmDir, sshPortOf } from "../drivers/qemu-vm.js";
import { LifelineError } from "../protocol/index.js";
import { vmRootOf } from "../data-dir.js";
import { buildVmImage } from "./vm-image.js";

/**
 * `lifeline lab vm create|start|stop|delete`: QEMU VMs from the lab's VM image, in the VM root
 * the server's qemu driver uses (the same setting: --vm-root, LIFELINE_VM_ROOT, or the data
 * dir's vms/), so `machines set-driver M --driver qemu --ref name=NAME` finds them.
 */
export function registerLabVmCommand(lab: Command): void {
  const vm = lab.command("vm").description("QEMU VMs (TCG) from the lab's VM image, for the qemu driver (root)");
  const withDriver = (name: string, opts: { vmRoot?: string }) => {
    const parsed = VmName.safeParse(name);
    if (!parsed.success) throw new LifelineError("USAGE", `Invalid VM name "${name}": ${parsed.error.issues[0]!.message}`);
    const vmRoot = vmRootOf({ vmRoot: opts.vmRoot ?? process.env["LIFELINE_VM_ROOT"], dataDir: process.env["LIFELINE_DATA_DIR"] });
    const driver = new QemuDriver({ vmRoot });
    return { driver, dir: driver.vmDir(name), handle: { driver: "qemu", version: 1 as const, ref: { name } } };
  };
  const rootOption = ["--vm-root <dir>", "the VM root (default: the server's, LIFELINE_VM_ROOT or <data dir>/vms)"] as const;

  vm.command("create")
    .description("a new VM: a qcow2 overlay on the cached VM image (built once, about a minute), with its kernel")
    .argument("<name>", "VM name: lowercase letters, digits and -")
    .option(...rootOption)
    .action(async (name: string, opts: { vmRoot?: string }) => {
      const { dir } = withDriver(name, opts);
      if (existsSync(dir)) throw new LifelineError("USAGE", `VM "${name}" already exists (${dir})`);
      const image = await buildVmImage({ onProgress: (m) => process.stderr.isTTY && process.stderr.write(`${m}\n`) });
      await createVmDir(dir, image);
      process.stdout.write(`${dir}\nnext: lifeline lab vm start ${name}; lifeline machines set-driver MACHINE --driver qemu --ref name=${name}\n`);
    });

  for (const verb of ["start", "stop"] as const) {
    vm.command(verb)
      .description(verb === "start" ? "boot the VM (SSH on a loopback port forward)" : "shut the VM down (ACPI, then quit after 60 s)")
      .argument("<name>", "VM name")
      .option(...rootOption)
      .action(async (name: string, opts: { vmRoot?: string }) => {
        const { driver, dir, handle } = withDriver(name, opts);
        await driver.power[verb](handle);
        process.stdout.write(verb === "start" ? `${name} running; SSH at 127.0.0.1:${(await sshPortOf(dir)) ?? "?"}\n` : `${name} stopped\n`);
      });
  }

  vm.command("delete")
    .description("stop the VM and delete its directory (disk, snapshots and all)")
    .argument("<name>", "VM name")
    .option(...rootOption)
    .action(async (name: string, opts: { vmRoot?: string }) => {
      const { driver, dir, handle } = withDriver(name, opts);
      driver.validate(handle);
      await driver.disk.detach(handle);
      await driver.power.stop(handle);
      await rm(dir, { recursive: true, force: true });
      process.stdout.write(`${name} deleted\n`);
    });
}
