import type { Command } from "commander";
import { resolveServerConfig } from "./config.js";

/** `lifeline server`: the control plane with embedded defaults. */
export function registerServerCommand(program: Command): void {
  program
    .command("server")
    .description("run the control plane (HTTP API + agent gateway); SQLite in the data dir by default")
    .option("--host <address>", "address to listen on (env LIFELINE_HOST)", undefined)
    .option("--port <port>", "port to listen on, 0 for any (env LIFELINE_PORT)", undefined)
    .option("--data-dir <dir>", "where the database, keys and first admin token live (env LIFELINE_DATA_DIR)")
    .option("--log-level <level>", "fatal, error, warn, info, debug, trace or silent (env LIFELINE_LOG_LEVEL)")
    .action(async (opts: { host?: string; port?: string; dataDir?: string; logLevel?: string }) => {
      const config = resolveServerConfig({
        host: opts.host,
        port: opts.port === undefined ? undefined : (opts.port as unknown as number),
        dataDir: opts.dataDir,
        logLevel: opts.logLevel as never,
      });
      // Loaded on demand: CLI commands should not pay for the server (and its database driver).
      const { startServer } = await import("./app.js");
      const server = await startServer(config);
      process.stdout.write(`lifeline server listening on ${server.url} (data dir ${config.dataDir})\n`);
      if (server.bootstrap.adminTokenFile) process.stdout.write(`first start: admin token written to ${server.bootstrap.adminTokenFile} (mode 0600)\n`);
      if (server.bootstrap.cliConfigFile) process.stdout.write(`first start: CLI configured in ${server.bootstrap.cliConfigFile}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await server.close();
    });
}
