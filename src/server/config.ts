import { readFileSync, existsSync } from "node:fs";
import { defaultDataDir, isAbsoluteNormalised } from "../data-dir.js";
import { join } from "node:path";
import { z } from "zod";
import { LifelineError } from "../protocol/index.js";

/** Server settings. Precedence: flags > LIFELINE_* env > `<data dir>/server.json` > defaults. */
export const ServerConfig = z.object({
  dataDir: z.string().min(1),
  host: z.string().min(1).default("127.0.0.1"),
  port: z.coerce.number().int().min(0).max(65535).default(8471),
  store: z.string().optional(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  heartbeatIntervalMs: z.coerce.number().int().min(50).max(600_000).default(10_000),
  sweepIntervalMs: z.coerce.number().int().min(50).max(600_000).default(2_000),
  /** The lab driver's labs, one directory each (default <cache dir>/labs, where `lifeline lab up` puts them). Absolute. */
  labRoot: z
    .string()
    .refine(isAbsoluteNormalised, "must be an absolute, normalised path")
    .optional(),
  /** How long the qemu driver waits for a guest's own shutdown (ACPI power button) before it pulls the plug. */
  vmStopTimeoutMs: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
  /** How long fix-logon waits for a machine repaired offline to boot and answer a login (slow VMs need more). */
  bootWaitMs: z.coerce.number().int().min(1_000).max(3_600_000).default(90_000),
  /** Test hook: pause around each job step's work, so a test can kill the server inside a step. */
  jobStepDelayMs: z.coerce.number().int().min(0).max(600_000).default(0),
  /** The qemu driver's VMs: one directory per VM (default <data dir>/vms). Absolute. */
  vmRoot: z
    .string()
    .refine(isAbsoluteNormalised, "must be an absolute, normalised path")
    .optional(),
  /** Write a CLI config for this user on first start when none exists. */
  writeCliConfig: z.preprocess((v) => (v === "0" || v === "false" ? false : v === "1" || v === "true" ? true : v), z.boolean()).default(true),
});
export type ServerConfig = z.infer<typeof ServerConfig>;
export type ServerConfigInput = z.input<typeof ServerConfig>;

export { defaultDataDir, vmRootOf } from "../data-dir.js";

const ENV_KEYS: Record<string, keyof ServerConfigInput> = {
  LIFELINE_DATA_DIR: "dataDir",
  LIFELINE_HOST: "host",
  LIFELINE_PORT: "port",
  LIFELINE_STORE: "store",
  LIFELINE_LOG_LEVEL: "logLevel",
  LIFELINE_HEARTBEAT_MS: "heartbeatIntervalMs",
  LIFELINE_SWEEP_MS: "sweepIntervalMs",
  LIFELINE_WRITE_CLI_CONFIG: "writeCliConfig",
  LIFELINE_JOB_STEP_DELAY_MS: "jobStepDelayMs",
  LIFELINE_VM_ROOT: "vmRoot",
  LIFELINE_LAB_ROOT: "labRoot",
  LIFELINE_BOOT_WAIT_MS: "bootWaitMs",
  LIFELINE_VM_STOP_TIMEOUT_MS: "vmStopTimeoutMs",
};

export function resolveServerConfig(flags: Partial<ServerConfigInput>, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const fromEnv: Record<string, string> = {};
  for (const [key, field] of Object.entries(ENV_KEYS)) if (env[key]) fromEnv[field] = env[key]!;
  const dataDir = flags.dataDir ?? fromEnv.dataDir ?? defaultDataDir();
  const file = join(dataDir, "server.json");
  let fromFile: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      fromFile = JSON.parse(readFileSync(file, "utf8"));
    } catch (err) {
      throw new LifelineError("CONFIG_INVALID", `Cannot read ${file}: ${(err as Error).message}`);
    }
  }
  const defined = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const parsed = ServerConfig.safeParse({ ...fromFile, ...fromEnv, ...defined, dataDir });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new LifelineError("CONFIG_INVALID", `Invalid server setting ${issue.path.join(".")}: ${issue.message}`);
  }
  return parsed.data;
}
