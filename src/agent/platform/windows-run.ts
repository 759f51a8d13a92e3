// Run Command on Windows: how a PowerShell or cmd script is started (see the run op).
import { win32 } from "node:path";
import { Id, LifelineError } from "../../protocol/index.js";
import { POWERSHELL_FLAGS, powerShellArgs } from "./windows-shell.js";

// ---------------------------------------------------------------------------------------------
// Run Command on Windows

export type WindowsShell = "powershell" | "cmd";

export interface WindowsRunPlan {
  file: string;
  args: string[];
  /** For cmd.exe: pass args exactly as built (cmd does its own quote parsing). */
  windowsVerbatimArguments: boolean;
  /** A file the caller writes (mode private to SYSTEM/Administrators) before, and deletes after, the run. */
  scriptFile: { path: string; content: Buffer } | null;
}

/** CreateProcess' limit on the whole command line, in characters. */
export const MAX_COMMAND_LINE = 32_767;
const CMD_UNSAFE_PATH = /["%^!&|<>\r\n]/;

/**
 * How to run a user's script on Windows. PowerShell: -EncodedCommand when the whole command
 * line fits well inside the 32,767-character limit (UTF-16 + base64 makes it ~2.7 characters per
 * script character, so about 12,000 characters of script), else a temporary .ps1 (UTF-8 with
 * BOM, so Windows PowerShell 5.1 does not read it as ANSI) run with -File. cmd: always a
 * temporary .cmd (CRLF line ends), run as `cmd.exe /d /v:off /s /c ""<path>""`.
 */
export function windowsRunPlan(shell: WindowsShell, script: string, options: { dir: string; opId: string; systemRoot?: string; maxCommandLine?: number }): WindowsRunPlan {
  if (!Id.safeParse(options.opId).success) throw new LifelineError("VALIDATION_FAILED", "Invalid op id for a script file name");
  const systemRoot = options.systemRoot ?? process.env.SystemRoot ?? "C:\\Windows";
  if (shell === "powershell") {
    const file = win32.join(systemRoot, "System32", "WindowsPowerShell", "v1.0", "powershell.exe");
    const encoded = powerShellArgs(script);
    const length = [file, ...encoded].reduce((n, a) => n + a.length + 3, 0);
    if (length <= (options.maxCommandLine ?? MAX_COMMAND_LINE - 1_024)) return { file, args: encoded, windowsVerbatimArguments: false, scriptFile: null };
    const path = win32.join(options.dir, `${options.opId}.ps1`);
    const content = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(script, "utf8")]);
    return { file, args: [...POWERSHELL_FLAGS, "-File", path], windowsVerbatimArguments: false, scriptFile: { path, content } };
  }
  const path = win32.join(options.dir, `${options.opId}.cmd`);
  if (CMD_UNSAFE_PATH.test(path)) throw new LifelineError("VALIDATION_FAILED", `The script directory "${options.dir}" contains characters cmd.exe would interpret`);
  const content = Buffer.from(script.replace(/\r?\n/g, "\r\n"), "utf8");
  return { file: win32.join(systemRoot, "System32", "cmd.exe"), args: ["/d", "/v:off", "/s", "/c", `""${path}""`], windowsVerbatimArguments: true, scriptFile: { path, content } };
}

