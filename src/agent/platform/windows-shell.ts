// How the Windows backend runs programs: spawn with argv arrays and stdin (a runner tests can
// replace with recorded outputs), PowerShell's -EncodedCommand, and the fixed scripts it runs.
import { spawn } from "node:child_process";
import { LifelineError, Username } from "../../protocol/index.js";

// ---------------------------------------------------------------------------------------------
// Running commands

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Bytes for the child's stdin (the only way a secret may reach a child process). */
  stdin?: Buffer;
  timeoutMs?: number;
  /** How to decode output: net.exe writes in the OEM code page, so it is read byte for byte. */
  encoding?: "utf8" | "latin1";
}

/** Runs one program with an argv array (never a shell string). Injected so tests can record. */
export interface CommandRunner {
  run(file: string, args: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

const OUTPUT_CAP = 4 * 1024 * 1024;
/** Environment of the agent that child processes must not see. */
const PRIVATE_ENV = /^LIFELINE_/;

/** The real runner: child_process.spawn, hidden window, stdin piped, output capped. */
export class SpawnRunner implements CommandRunner {
  run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !PRIVATE_ENV.test(k)));
    return new Promise((resolve) => {
      const child = spawn(file, args, { windowsHide: true, stdio: ["pipe", "pipe", "pipe"], env });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      const keep = (into: Buffer[]) => (chunk: Buffer) => {
        if (size + chunk.length > OUTPUT_CAP) return;
        size += chunk.length;
        into.push(chunk);
      };
      child.stdout.on("data", keep(out));
      child.stderr.on("data", keep(err));
      const timer = setTimeout(() => child.kill(), options.timeoutMs ?? 60_000);
      let spawnError: Error | undefined;
      child.on("error", (e) => (spawnError = e));
      child.on("close", (code) => {
        clearTimeout(timer);
        const enc = options.encoding ?? "utf8";
        resolve({
          code: spawnError ? 127 : (code ?? 1),
          stdout: Buffer.concat(out).toString(enc),
          stderr: spawnError ? `cannot start ${file}: ${spawnError.message}` : Buffer.concat(err).toString(enc),
        });
      });
      child.stdin.on("error", () => undefined); // the child may exit without reading stdin
      child.stdin.end(options.stdin ?? Buffer.alloc(0));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// PowerShell invocation

/** -EncodedCommand takes the script as base64 of its UTF-16LE bytes. */
export function encodePowerShellCommand(script: string): string {
  return Buffer.from(script, "utf16le").toString("base64");
}

export function decodePowerShellCommand(encoded: string): string {
  return Buffer.from(encoded, "base64").toString("utf16le");
}

export const POWERSHELL_FLAGS = ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass"] as const;

/** argv (after the program) that runs a fixed script: no profile, no prompts, no policy prompts. */
export function powerShellArgs(script: string): string[] {
  return [...POWERSHELL_FLAGS, "-EncodedCommand", encodePowerShellCommand(script)];
}

/** A PowerShell single-quoted literal: nothing inside expands; a quote is written twice. */
export function psQuote(value: string): string {
  // PowerShell also treats the typographic single quotes U+2018/U+2019/U+201A/U+201B as quotes.
  return `'${value.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

/**
 * Error text from PowerShell's stderr. Started with -EncodedCommand and redirected pipes,
 * powershell.exe may write CLIXML (`#< CLIXML` + `<S S="Error">...</S>`) instead of text.
 */
export function cleanPowerShellStderr(stderr: string): string {
  if (!stderr.includes("#< CLIXML")) return stderr.trim();
  const parts = [...stderr.matchAll(/<S S="Error">([^<]*)<\/S>/g)].map((m) =>
    m[1]!.replace(/_x000D__x000A_/g, "\n").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&"),
  );
  return parts.join("").trim();
}

/** Scripts the backend runs. Fixed text: no value from a request is ever spliced into them. */
export const SCRIPTS = {
  /** Local users (the Get-LocalUser pipeline) and their lockout state (WMI), as one JSON. */
  list: [
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    "try { [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false } catch { }",
    // The Get-LocalUser pipeline, with the SID as its string (the bare object nests 3 levels).
    "$users = @(Get-LocalUser | Select-Object Name,@{Name='SID';Expression={$_.SID.Value}},Enabled,PasswordExpires,PasswordLastSet,PasswordRequired,UserMayChangePassword,AccountExpires,LastLogon)",
    "$lockout = $null",
    "try { $lockout = @(Get-CimInstance -ClassName Win32_UserAccount -Filter 'LocalAccount=True' | Select-Object Name,SID,Lockout) } catch { }",
    "ConvertTo-Json -Compress -Depth 3 -InputObject @{ users = $users; lockout = $lockout }",
  ].join("\n"),
  /**
   * Sets a password. stdin: line 1 = JSON {"user": NAME, "domain": bool}; line 2 = the
   * password as UTF-8 bytes. The name is checked again here against the same grammar.
   */
  reset: [
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    "try {",
    "  $stream = New-Object System.IO.MemoryStream",
    "  [Console]::OpenStandardInput().CopyTo($stream)",
    "  $bytes = $stream.ToArray()",
    "  $raw = $stream.GetBuffer(); [Array]::Clear($raw, 0, $raw.Length)",
    "  $nl = [Array]::IndexOf($bytes, [byte]10)",
    "  if ($nl -lt 0) { throw 'LIFELINE: input has no request line' }",
    "  $req = [System.Text.Encoding]::UTF8.GetString($bytes, 0, $nl) | ConvertFrom-Json",
    "  $end = $bytes.Length",
    "  if ($end -gt $nl + 1 -and $bytes[$end - 1] -eq 10) { $end-- }",
    "  if ($end -gt $nl + 1 -and $bytes[$end - 1] -eq 13) { $end-- }",
    "  $chars = [System.Text.Encoding]::UTF8.GetChars($bytes, $nl + 1, $end - $nl - 1)",
    "  [Array]::Clear($bytes, 0, $bytes.Length)",
    "  $secure = New-Object System.Security.SecureString",
    "  foreach ($c in $chars) { $secure.AppendChar($c) }",
    "  [Array]::Clear($chars, 0, $chars.Length)",
    "  $secure.MakeReadOnly()",
    "  $name = [string]$req.user",
    "  if ($name -cnotmatch '^[A-Za-z_][A-Za-z0-9_.-]{0,30}[A-Za-z0-9_.$-]?$') { throw 'LIFELINE: invalid user name' }",
    "  if ($req.domain -eq $true) {",
    "    Import-Module ActiveDirectory",
    "    Set-ADAccountPassword -Identity $name -Reset -NewPassword $secure",
    "  } else {",
    "    Set-LocalUser -Name $name -Password $secure",
    "  }",
    "  $secure.Dispose()",
    "} catch {",
    "  [Console]::Error.WriteLine($_.Exception.Message)",
    "  exit 1",
    "}",
  ].join("\n"),
} as const;

// ---------------------------------------------------------------------------------------------
// Names

/** Throws unless `user` matches the protocol's Username grammar (checked before any command). */
export function assertUsername(user: string): string {
  if (typeof user !== "string" || !Username.safeParse(user).success) {
    throw new LifelineError("VALIDATION_FAILED", `Invalid user name ${JSON.stringify(String(user).slice(0, 64))}: usernames start with a letter or _, then letters, digits, . _ - (max 32)`);
  }
  return user;
}

