/**
 * The web console in a real browser (Debian's Chromium, driven by playwright-core) against a
 * real server and agents: sign-in (a wrong token refused), the machine list with live status,
 * Run Command with streamed output and exit code, roles (a reader cannot run), and text from
 * agents and scripts shown as text, never as HTML (an agent reporting an <img onerror> host name).
 */
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestFleet } from "../helpers/fleet.js";
import { rawAgentSession } from "../helpers/raw-agent.js";

const CHROMIUM = "/usr/bin/chromium";
const skip = existsSync(CHROMIUM) ? undefined : "needs Chromium (Debian package chromium)";
const XSS_HOSTNAME = `<img src=x onerror="window.__xss=1">`;

describe.skipIf(skip !== undefined)(`web console${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const fleet = new TestFleet();
  let browser: Browser;
  let raw: Awaited<ReturnType<typeof rawAgentSession>>;
  let reader: string;

  beforeAll(async () => {
    await fleet.start();
    await fleet.startAgent("web1");
    // An agent that reports a hostile host name (what a compromised machine could send).
    await fleet.startAgent("evil1");
    await fleet.agent("evil1").stop("SIGKILL");
    raw = await rawAgentSession(fleet.url, fleet.agentStateDir("evil1"), { facts: { hostname: XSS_HOSTNAME } });
    await fleet.waitStatus("evil1", "Ready");
    reader = (await fleet.cli(["token", "create", "--role", "reader", "--name", "console-ro"])).stdout.trim();
    // Root needs --no-sandbox; the browser talks only to the fleet's loopback server.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    raw?.ws.close();
    await fleet.stop();
  });

  async function signedIn(token: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(fleet.url);
    await page.getByLabel("API token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("table", { name: "machines" }).waitFor();
    return page;
  }

  it("is served locked down, and refuses a wrong token", async () => {
    const page = await browser.newPage();
    const response = await page.goto(fleet.url);
    expect(response!.headers()["content-security-policy"]).toContain("script-src 'self'");
    expect(response!.headers()["x-frame-options"]).toBe("DENY");
    await page.getByLabel("API token").fill("lla_not-a-real-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("UNAUTHENTICATED");
    expect(await page.evaluate(() => sessionStorage.getItem("lifeline.token"))).toBeNull();
    await page.close();
  });

  it("lists machines with their status; an agent's hostile host name stays text", async () => {
    const page = await signedIn(fleet.adminToken);
    const table = page.getByRole("table", { name: "machines" });
    await expect.poll(() => table.getByRole("row").count()).toBe(3);
    const web1 = table.getByRole("row").filter({ hasText: "web1" });
    await expect.poll(() => web1.textContent()).toContain("Ready");
    const evil = table.getByRole("row").filter({ hasText: "evil1" });
    expect(await evil.locator("td").nth(2).textContent()).toBe(XSS_HOSTNAME);
    expect(await table.locator("img").count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    // Status follows the agent: gone, it shows NotReady with the reason, without a reload.
    raw.ws.close();
    await expect.poll(() => evil.textContent(), { timeout: 15_000 }).toContain("NotReady (disconnected)");
    await page.close();
  });

  it("runs a script on a machine and streams its output, shown as text, with the exit code", async () => {
    const page = await signedIn(fleet.adminToken);
    await page.getByRole("button", { name: "web1" }).click();
    const section = page.getByRole("region", { name: "machine web1" });
    await section.getByLabel("Script (sh)").fill("echo hello; echo oops >&2; printf '<b>bold</b>\\n'; exit 3");
    await section.getByRole("button", { name: "Run" }).click();
    await expect.poll(() => section.getByLabel("result").textContent(), { timeout: 15_000 }).toBe("failed, exit code 3");
    const output = await section.getByLabel("output").textContent();
    expect(output).toContain("hello\n");
    expect(output).toContain("oops\n");
    expect(output).toContain("<b>bold</b>\n");
    expect(await section.locator("pre b").count()).toBe(0);
    expect(await section.locator("pre .stderr").textContent()).toBe("oops\n");
    // Accounts: the agent's diagnosis (read-only here: this host's accounts are only listed), system accounts left out.
    await section.getByRole("button", { name: "List accounts" }).click();
    const accounts = section.getByRole("table", { name: "accounts" });
    await accounts.waitFor();
    const names = await accounts.locator("tbody tr td:first-child").allTextContents();
    const cli = await fleet.json<{ name: string }[]>(["accounts", "list", "web1"]); // the CLI leaves system accounts out too
    expect(names).toEqual(cli.map((a) => a.name));
    expect(names).not.toContain("root");
    // The run is the server's like any other: the CLI sees it.
    const ops = await fleet.json<{ kind: string; exitCode: number | null; createdBy: string }[]>(["ops", "list", "--machine", "web1"]);
    expect(ops.find((o) => o.kind === "run")).toMatchObject({ exitCode: 3 });
    await page.close();
  });

  it("a reader sees machines but cannot run; signing out forgets the token", async () => {
    const page = await signedIn(reader);
    await page.getByRole("button", { name: "web1" }).click();
    const section = page.getByRole("region", { name: "machine web1" });
    await section.getByLabel("Script (sh)").fill("echo should-not-run");
    await section.getByRole("button", { name: "Run" }).click();
    await expect.poll(() => section.getByRole("alert").textContent()).toContain("FORBIDDEN");
    expect(await section.getByLabel("output").textContent()).toBe("");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API token").waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("lifeline.token"))).toBeNull();
    await page.close();
  });
});
