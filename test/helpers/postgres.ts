import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

const SYS_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" };

/** Debian's PostgreSQL server binaries (initdb, postgres): /usr/lib/postgresql/<major>/bin. */
export function postgresBinDir(): string | undefined {
  const root = "/usr/lib/postgresql";
  const majors = existsSync(root) ? readdirSync(root).filter((d) => existsSync(join(root, d, "bin", "postgres"))) : [];
  const newest = majors.sort((a, b) => Number(b) - Number(a))[0];
  return newest ? join(root, newest, "bin") : undefined;
}

export function postgresSkipReason(): string | undefined {
  if (!postgresBinDir()) return "needs the PostgreSQL server (Debian package postgresql)";
  if (process.geteuid?.() === 0) {
    try {
      execFileSync("id", ["-u", "postgres"], { env: SYS_ENV, stdio: "ignore" });
    } catch {
      return "running as root needs the postgres system user to run the server as";
    }
  }
  return undefined;
}

export interface TestPostgres {
  /** A URL for a fresh, empty database of this cluster. */
  newDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A throw-away PostgreSQL cluster for one test file: initdb in a temp dir, the server listening
 * on a unix socket in that dir only (no TCP at all), trust auth for the one superuser. As root,
 * it runs as the postgres system user (the server refuses root). Stopped and removed by stop().
 */
export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBinDir()!;
  const dir = mkdtempSync(join(tmpdir(), "lifeline-pg-"));
  const data = join(dir, "data");
  const asRoot = process.geteuid?.() === 0;
  // setpriv execs the command itself (no parent left in between), so signals reach the server.
  const as = (argv: string[]) => (asRoot ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--", ...argv] : argv);
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { env: SYS_ENV, encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { env: SYS_ENV, encoding: "utf8" }).trim());
    chownSync(dir, uid, gid);
  }
  const [initFile, ...initArgs] = as([join(bin, "initdb"), "-D", data, "-U", "lifeline", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  execFileSync(initFile!, initArgs, { env: SYS_ENV, stdio: "ignore" });
  // fsync off: a test cluster does not need to survive a power cut, and it is much faster.
  const [file, ...args] = as([join(bin, "postgres"), "-D", data, "-k", dir, "-c", "listen_addresses=", "-c", "fsync=off", "-c", "max_connections=200"]);
  const server: ChildProcess = spawn(file!, args, { env: SYS_ENV, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  server.stderr!.on("data", (d: Buffer) => (log += d.toString()).length > 20_000 && (log = log.slice(-10_000)));
  const url = (db: string) => `postgresql://lifeline@/${db}?host=${encodeURIComponent(dir)}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url("postgres") });
    try {
      await client.connect();
      await client.end();
      break;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (server.exitCode !== null || Date.now() > deadline) throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${log}`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  let n = 0;
  return {
    async newDatabase() {
      const name = `t${process.pid}_${++n}`;
      const admin = new pg.Client({ connectionString: url("postgres") });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
    async stop() {
      if (server.exitCode === null) {
        const exited = new Promise((r) => server.once("exit", r));
        server.kill("SIGINT"); // fast shutdown: ends sessions, no waiting for clients
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
