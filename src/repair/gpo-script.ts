/**
 * The startup script itself: what it runs (`net user`), how the user name and password are
 * quoted for cmd, and the PowerShell that removes its own scripts.ini entry after it ran.
 */
import { Id, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, Username } from "../protocol/index.js";
import { GpoError } from "./gpo-error.js";

/** `net user` accepts passwords of up to 127 characters. */
export const NET_USER_MAX_PASSWORD = Math.min(127, MAX_PASSWORD_LENGTH);
export const RESET_LOG = "%SystemRoot%\\Temp\\lifeline-reset.log";

// ---------------------------------------------------------------------------------------------
// The reset script

export type GpoStartupAction = { kind: "reset-password"; password: string } | { kind: "clear-flag" } | { kind: "enable" };
export type GpoStartupRequest = {
  /** Names the script (lifeline-reset-<id>.cmd); the project's Id grammar. */
  id: string;
  user: string;
  action: GpoStartupAction;
  /** Also run `net user NAME /active:yes` (implied by action "enable"). */
  enable?: boolean;
};

export const scriptFileName = (id: string): string => `lifeline-reset-${id}.cmd`;
export const SCRIPT_NAME = /^lifeline-reset-([A-Za-z0-9_-]{8,64})\.cmd$/i;

export function checkId(id: string): string {
  if (!Id.safeParse(id).success) throw new GpoError("bad-input", `"${id.slice(0, 80)}" is not a valid repair id`);
  return id;
}

/** The project's Username grammar, and (belt and braces) nothing cmd or net treats specially. */
export function checkWindowsUser(user: string): string {
  if (!Username.safeParse(user).success) throw new GpoError("bad-input", `"${user.slice(0, 80)}" is not a valid username`);
  if (/[&|<>^%"!()=;,\s*?/\\[\]:+@]/.test(user)) throw new GpoError("bad-input", `Username "${user}" has a character cmd or net user treats specially`);
  return user;
}

/**
 * The password as one cmd token: printable ASCII inside double quotes. Inside quotes cmd leaves
 * & | < > ^ ( ) and spaces alone; `!` is literal because the script disables delayed expansion;
 * `%` is the one character cmd still expands in a batch file, so it is doubled (`%%` reads as
 * `%`). Refused, with the reason: `"` (cannot be quoted for cmd and net reliably), line breaks and
 * other control characters, non-ASCII (cmd reads a batch file in the OEM code page), a trailing
 * `\` (with net's argv parsing `\"` would swallow the closing quote), a leading `/` (net would
 * read an option) and `*` alone (net would prompt).
 */
export function cmdQuotePassword(password: string): string {
  const refuse = (why: string): never => {
    throw new GpoError("bad-password", `This password cannot be set by a startup script: ${why}`);
  };
  if (password.length < MIN_PASSWORD_LENGTH) refuse(`it is shorter than ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > NET_USER_MAX_PASSWORD) refuse(`net user accepts at most ${NET_USER_MAX_PASSWORD} characters`);
  if (/[\r\n]/.test(password)) refuse("it contains a line break");
  if ([...password].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) refuse("it contains a control character");
  if (/[^\x20-\x7e]/.test(password)) refuse("it contains a non-ASCII character (cmd reads scripts in the OEM code page)");
  if (password.includes('"')) refuse('it contains a double quote (")');
  if (password.endsWith("\\")) refuse("it ends with a backslash");
  if (password.startsWith("/")) refuse("it starts with / (net user would read an option)");
  return `"${password.replace(/%/g, "%%")}"`;
}

/** PowerShell run by the script: removes its own [Startup] entry (same rule as removeStartupScripts). */
export function cleanupPowerShell(id: string): string {
  return [
    "$ErrorActionPreference = 'Stop'",
    "$ini = $env:LIFELINE_INI",
    `$me = '${scriptFileName(checkId(id))}'`,
    "$lines = [IO.File]::ReadAllLines($ini)",
    "$sec = ''; $cmd = @{}",
    "foreach ($l in $lines) {",
    "  if ($l -match '^\\s*\\[(.*)\\]\\s*$') { $sec = $matches[1].Trim() }",
    "  elseif ($sec -eq 'Startup' -and $l -match '^\\s*(\\d+)CmdLine\\s*=(.*)$') { $n = [int]$matches[1]; if (-not $cmd.ContainsKey($n)) { $cmd[$n] = $matches[2].Trim() } }",
    "}",
    "$gone = @($cmd.Keys | Where-Object { ($cmd[$_] -replace '^.*[\\\\/]', '') -eq $me })",
    "if ($gone.Count -eq 0) { 'no scripts.ini entry to remove'; exit 0 }",
    "$run = 0; while ($cmd.ContainsKey($run)) { $run++ }",
    "$out = New-Object System.Collections.ArrayList; $sec = ''",
    "foreach ($l in $lines) {",
    "  if ($l -match '^\\s*\\[(.*)\\]\\s*$') { $sec = $matches[1].Trim() }",
    "  elseif ($sec -eq 'Startup' -and $l -match '^\\s*(\\d+)(CmdLine|Parameters)(\\s*=.*)$') {",
    "    $n = [int]$matches[1]",
    "    if ($gone -contains $n) { continue }",
    "    if ($n -lt $run) { $n -= @($gone | Where-Object { $_ -lt $n }).Count }",
    "    $l = [string]$n + $matches[2] + $matches[3]",
    "  }",
    "  [void]$out.Add($l)",
    "}",
    "$tmp = $ini + '.lifeline-tmp'",
    "[IO.File]::WriteAllLines($tmp, [string[]]$out.ToArray([string]), [Text.Encoding]::Unicode)",
    "[IO.File]::Replace($tmp, $ini, $null)",
    "'removed scripts.ini entry ' + ($gone -join ',')",
  ].join("\n");
}

/** The .cmd text (CRLF). The password is never echoed or logged; net's own output never has it. */
export function buildResetScript(req: GpoStartupRequest): string {
  const id = checkId(req.id);
  const user = checkWindowsUser(req.user);
  const steps: { label: string; command: string }[] = [];
  if (req.action.kind === "reset-password") {
    const quoted = cmdQuotePassword(req.action.password);
    // Longer than 14 characters, net asks "Do you want to continue this operation? (Y/N)": /Y answers.
    steps.push({ label: "set password", command: `net user ${user} ${quoted}${req.action.password.length > 14 ? " /Y" : ""}` });
  }
  if (req.action.kind !== "enable") steps.push({ label: "clear must-change flag", command: `net user ${user} /logonpasswordchg:no` });
  if (req.action.kind === "enable" || req.enable) steps.push({ label: "enable account", command: `net user ${user} /active:yes` });
  const encoded = Buffer.from(cleanupPowerShell(id), "utf16le").toString("base64");
  const log = (text: string): string => `>>"%LIFELINE_LOG%" echo %DATE% %TIME% [${id}] ${text}`;
  const lines = [
    "@echo off",
    `rem Lifeline offline repair ${id} for local user ${user}: runs once as SYSTEM at startup,`,
    "rem removes its own scripts.ini entry and deletes itself. Written by Lifeline on a rescue host.",
    "setlocal EnableExtensions DisableDelayedExpansion",
    `set "LIFELINE_LOG=${RESET_LOG}"`,
    'set "LIFELINE_INI=%~dp0..\\scripts.ini"',
    log(`start: ${req.action.kind} for user ${user}`),
    ...steps.flatMap((s) => [`${s.command} >>"%LIFELINE_LOG%" 2>&1`, log(`${s.label}: exit code %ERRORLEVEL%`)]),
    `"%SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ${encoded} >>"%LIFELINE_LOG%" 2>&1`,
    log("remove scripts.ini entry: exit code %ERRORLEVEL%"),
    log("done, deleting this script"),
    '(goto) 2>nul & del /f /q "%~f0"',
  ];
  return lines.join("\r\n") + "\r\n";
}

