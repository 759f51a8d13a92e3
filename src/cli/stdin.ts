import { LifelineError } from "../protocol/index.js";

/**
 * Reads all of stdin, refusing more than `limit` bytes. (readFileSync(0) fails with EAGAIN when
 * stdin is a non-blocking pipe, so stdin is read as a stream.)
 */
export async function readStdin(limit: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new LifelineError("USAGE", `${what} on stdin is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
