import { randomInt } from "node:crypto";
import { LifelineError, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../protocol/index.js";
import { readStdin } from "./stdin.js";

/** Refused before anything is sent: empty, too short, too long, or with a line break. */
export function checkPasswordPolicy(password: string): void {
  const bytes = Buffer.byteLength(password);
  if (bytes === 0) throw new LifelineError("PASSWORD_POLICY", "The new password is empty");
  if (bytes < MIN_PASSWORD_LENGTH) throw new LifelineError("PASSWORD_POLICY", `The new password is too short (at least ${MIN_PASSWORD_LENGTH} characters)`);
  if (bytes > MAX_PASSWORD_LENGTH) throw new LifelineError("PASSWORD_POLICY", `The new password is too long (at most ${MAX_PASSWORD_LENGTH} bytes)`);
  if (/[\r\n\0]/.test(password)) throw new LifelineError("PASSWORD_POLICY", "The new password contains a line break or NUL");
}

// No look-alikes (0/O, 1/l/I) so a password read off a screen can be typed.
const ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.";

export function generatePassword(length = 20): string {
  let out = "";
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

/** The first line of stdin, without its line ending (like `passwd --stdin`). */
export async function passwordFromStdin(): Promise<string> {
  const text = await readStdin(64 * 1024, "The password");
  return text.replace(/\r?\n$/, "");
}

/** Reads a line from the terminal without echo. */
export async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new LifelineError("USAGE", "No terminal to prompt on: use --password-stdin or --generate");
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = "";
      const onData = (chunk: Buffer) => {
        for (const ch of chunk.toString("utf8")) {
          if (ch === "\r" || ch === "\n") return (stdin.off("data", onData), process.stderr.write("\n"), resolve(value));
          if (ch === "\u0003") return (stdin.off("data", onData), reject(new LifelineError("USAGE", "Interrupted")));
          if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
          else value += ch;
        }
      };
      stdin.on("data", onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

export async function promptNewPassword(): Promise<string> {
  const first = await promptHidden("New password: ");
  const second = await promptHidden("Retype new password: ");
  if (first !== second) throw new LifelineError("USAGE", "The passwords do not match");
  return first;
}
