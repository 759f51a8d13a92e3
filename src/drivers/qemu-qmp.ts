/**
 * A minimal QMP client: JSON lines over QEMU's unix socket. One connection per call site
 * (connect, negotiate, execute, close): QEMU serves one QMP client per socket at a time, and
 * a short-lived connection never leaves the driver holding a socket a crashed VM left behind.
 */
import { createConnection, type Socket } from "node:net";

export class QmpError extends Error {
  constructor(
    message: string,
    /** QMP's error class (e.g. "GenericError", "CommandNotFound"); "Transport" for socket trouble. */
    readonly errorClass: string,
  ) {
    super(message);
    this.name = "QmpError";
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export class QmpClient {
  private buffer = "";
  private readonly queue: Pending[] = [];
  private greeted: Pending | undefined;
  private closed: Error | undefined;
  /** Events QEMU sent (SHUTDOWN, POWERDOWN...), in arrival order. */
  readonly events: Array<{ event: string; data?: unknown }> = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    const fail = (err: Error) => {
      this.closed ??= err;
      for (const p of this.queue.splice(0)) p.reject(err);
      this.greeted?.reject(err);
      this.greeted = undefined;
    };
    socket.on("error", (err) => fail(new QmpError(`QMP socket: ${err.message}`, "Transport")));
    socket.on("close", () => fail(new QmpError("QMP socket closed", "Transport")));
  }

  /** Connects, reads the greeting and leaves capabilities negotiation done: ready for execute(). */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const socket = createConnection({ path });
    const client = new QmpClient(socket);
    const timer = setTimeout(() => socket.destroy(new Error(`no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("error", reject);
      });
      await new Promise<unknown>((resolve, reject) => {
        client.greeted = { resolve, reject };
      });
      await client.execute("qmp_capabilities");
      return client;
    } catch (err) {
      socket.destroy();
      throw err instanceof QmpError ? err : new QmpError(`Cannot connect to QMP at ${path}: ${(err as Error).message}`, "Transport");
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs one command; resolves with its `return`, rejects with a QmpError on `error`. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.queue.push({ resolve, reject });
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ("QMP" in msg) {
      this.greeted?.resolve(msg["QMP"]);
      this.greeted = undefined;
    } else if ("event" in msg) {
      this.events.push({ event: String(msg["event"]), data: msg["data"] });
    } else if ("return" in msg) {
      this.queue.shift()?.resolve(msg["return"]);
    } else if ("error" in msg) {
      const e = (msg["error"] ?? {}) as { class?: string; desc?: string };
      this.queue.shift()?.reject(new QmpError(e.desc ?? "QMP error", e.class ?? "GenericError"));
    }
  }
}

/** Connects, runs one command, disconnects. */
export async function qmpExecute(socketPath: string, command: string, args?: Record<string, unknown>): Promise<unknown> {
  const client = await QmpClient.connect(socketPath);
  try {
    return await client.execute(command, args);
  } finally {
    client.close();
  }
}
