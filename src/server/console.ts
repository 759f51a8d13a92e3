import { existsSync } from "node:fs";
import { join } from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";

/** Where `npm run build` puts the web console (web/dist), from dist/server/. */
export const CONSOLE_DIR = join(import.meta.dirname, "..", "..", "web", "dist");

/**
 * Locks the page down to its own files: scripts, styles and API calls from this origin only,
 * no inline code, never framed. Whatever text an agent reports cannot become a script.
 */
const CONSOLE_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

/**
 * The web console: the built files served at / (each file a route of its own, registered at
 * start: no path from a request is ever resolved on disk). It holds no secret; every API call
 * it makes carries the token the user typed in. Without a build, / says how to make one.
 */
export async function registerConsole(app: FastifyInstance, dir: string = CONSOLE_DIR): Promise<void> {
  if (!existsSync(join(dir, "index.html"))) {
    app.get("/", async (_request, reply) => reply.status(404).type("text/plain").send("The web console is not built: run `npm run build` in the Lifeline checkout.\n"));
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: "/",
    wildcard: false,
    index: ["index.html"],
    setHeaders: (response) => {
      for (const [name, value] of Object.entries(CONSOLE_HEADERS)) void response.header(name, value);
    },
  });
}
