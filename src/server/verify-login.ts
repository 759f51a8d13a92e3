import { createHash, randomBytes } from "node:crypto";
import { Client } from "ssh2";
import type { VerifyOutcome, VerifyResult } from "../protocol/index.js";

// OpenSSH and PAM word the must-change state differently by version and path; any of these
// means it. ("exchange" also contains "change": never match "change" alone.)
const MUST_CHANGE = /required to change|password change required|password has expired|must change your password|change your password immediately/i;
const NEW_PASSWORD_PROMPT = /new password|(re)?type new/i;

/**
 * A real password login over SSH that must reach a shell and run a command: the proof that a
 * fix worked, made from the server rather than taken from the agent's word.
 */
export function verifySshLogin(opts: { host: string; port?: number; user: string; password: string; timeoutMs?: number; hostKeys: readonly string[] }): Promise<VerifyResult> {
  const started = Date.now();
  const marker = `lifeline-verify-${randomBytes(6).toString("hex")}`;
  return new Promise((resolve) => {
    const client = new Client();
    let settled = false;
    let transcript = "";
    let hostKeyMismatch = false;
    const done = (outcome: VerifyOutcome, detail: string) => {
      if (settled) return;
      settled = true;
      client.end();
      resolve({ outcome, detail: detail.slice(0, 500), address: `${opts.host}:${opts.port ?? 22}`, durationMs: Date.now() - started });
    };
    const timer = setTimeout(() => done("unreachable", `no answer within ${(opts.timeoutMs ?? 15_000) / 1000}s`), opts.timeoutMs ?? 15_000);
    client.on("keyboard-interactive", (_name, instructions, _lang, prompts, finish) => {
      const text = `${instructions} ${prompts.map((p) => p.prompt).join(" ")}`;
      transcript += text;
      if (MUST_CHANGE.test(text) || prompts.some((p) => NEW_PASSWORD_PROMPT.test(p.prompt))) return done("must-change", text.trim());
      finish(prompts.map(() => opts.password));
    });
    client.on("change password", (prompt) => done("must-change", `server demands a new password: ${prompt}`));
    client.on("banner", (message) => (transcript += message));
    client.on("ready", () => {
      client.exec(`echo ${marker}`, (err, channel) => {
        if (err) return done("denied", `logged in but could not run a command: ${err.message}`);
        let out = "";
        channel.on("data", (d: Buffer) => (out += d.toString()));
        channel.stderr.on("data", (d: Buffer) => (out += d.toString()));
        channel.on("close", (code: number | null) => {
          if (out.includes(marker)) return done("ok", "password accepted, shell ran a command");
          if (MUST_CHANGE.test(out + transcript)) return done("must-change", out.trim());
          done("denied", `logged in but the command did not run (exit ${code ?? "?"}): ${out.trim()}`);
        });
      });
    });
    client.on("error", (err: Error & { level?: string }) => {
      if (hostKeyMismatch) {
        const why = opts.hostKeys.length ? "does not match any key the machine's agent reported" : "cannot be checked: the machine's agent reported no host keys";
        return done("unreachable", `the SSH host key ${why}; password not sent`);
      }
      if (MUST_CHANGE.test(transcript + err.message)) return done("must-change", transcript.trim() || err.message);
      if (err.level === "client-authentication") return done("bad-password", "the server refused the password");
      done("unreachable", err.message);
    });
    client.on("close", () => {
      clearTimeout(timer);
      // sshd closes without an auth error when PAM's account stage refuses (disabled, inactive).
      done(MUST_CHANGE.test(transcript) ? "must-change" : "denied", transcript.trim() || "the server closed the connection before a shell ran (account refused)");
    });
    client.connect({
      host: opts.host,
      port: opts.port ?? 22,
      username: opts.user,
      password: opts.password,
      tryKeyboard: true,
      readyTimeout: opts.timeoutMs ?? 15_000,
      // The password goes only to the sshd whose host key the machine's own agent reported.
      hostVerifier: (key: Buffer) => {
        const ok = (opts.hostKeys ?? []).includes(`SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`);
        hostKeyMismatch = !ok;
        return ok;
      },
    });

  });
}
