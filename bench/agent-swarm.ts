// A child process of the fan-out benchmark: runs N real agents (the real agent code, each with
// its own keys, state dir and WebSocket) in one process. Reads {url, stateRoot, agents:[{name, token}]} on stdin.
import { join } from "node:path";
import pino from "pino";
import { startAgent } from "../src/agent/main.js";

const input = JSON.parse(await new Promise<string>((resolve) => {
  let text = "";
  process.stdin.on("data", (d) => (text += d));
  process.stdin.on("end", () => resolve(text));
})) as { url: string; stateRoot: string; agents: { name: string; token: string }[] };

const log = pino({ level: "error" });
const running = await Promise.all(
  input.agents.map((a) => startAgent({ stateDir: join(input.stateRoot, a.name), serverUrl: input.url, token: a.token, name: a.name, log })),
);
process.stdout.write(`started ${running.length}\n`);
process.on("SIGTERM", () => void Promise.all(running.map((r) => r.stop())).then(() => process.exit(0)));
