import type { Command } from "commander";
import { DriverHandle, LifelineError } from "../../protocol/index.js";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";
import { collect } from "../parse.js";

export function registerMachinesSetDriver(machines: Command): void {
  machines
    .command("set-driver")
    .description("say which driver and which VM/host a machine is: --driver lab --ref lab=lab --ref host=lab-1 (or --none)")
    .argument("<name>", "machine name")
    .option("--driver <driver>", "driver name (lab)")
    .option("--ref <k=v>", "driver reference field (repeatable)", collect, [])
    .option("--none", "forget the machine's driver")
    .action(async (name: string, opts: { driver?: string; ref: string[]; none?: boolean }, command: Command) => {
      const { client, format } = contextOf(command);
      let handle: DriverHandle | null = null;
      if (!opts.none) {
        if (!opts.driver) throw new LifelineError("USAGE", "Give --driver NAME (with --ref k=v ...) or --none");
        const ref = Object.fromEntries(opts.ref.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
        const parsed = DriverHandle.safeParse({ driver: opts.driver, version: 1, ref });
        if (!parsed.success || opts.ref.some((p) => !p.includes("="))) throw new LifelineError("USAGE", `Invalid --driver/--ref: ${parsed.success ? "expected k=v" : parsed.error.issues[0]!.message}`);
        handle = parsed.data;
      }
      const machine = await client.setDriver(name, handle);
      if (format === "json") return printJson(machine.driver);
      process.stdout.write(machine.driver ? `${name}: driver ${machine.driver.driver} ${JSON.stringify(machine.driver.ref)}\n` : `${name}: no driver\n`);
    });
}
