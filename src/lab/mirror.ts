/**
 * Finds the Debian mirror this machine's apt already uses: the lab may only reach what the
 * machine is configured to reach, so it never picks a mirror on its own.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

export const FALLBACK_MIRROR = "http://deb.debian.org/debian";

interface Source {
  uris: string[];
  suites: string[];
}

/** deb822 stanzas (*.sources) and one-line entries (*.list, sources.list). */
export function parseAptSources(text: string, deb822: boolean): Source[] {
  if (!deb822) {
    return text
      .split("\n")
      .map((l) => l.replace(/#.*/, "").trim())
      .filter((l) => l.startsWith("deb "))
      .map((l) => {
        const parts = l.replace(/\[[^\]]*\]/, "").split(/\s+/);
        return { uris: [parts[1] ?? ""], suites: [parts[2] ?? ""] };
      });
  }
  return text.split(/\n\s*\n/).flatMap((stanza) => {
    const field = (name: string) =>
      new RegExp(`^${name}:\\s*(.*)$`, "mi").exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
    if (field("Enabled")[0]?.toLowerCase() === "no" || !field("Types").includes("deb")) return [];
    return [{ uris: field("URIs"), suites: field("Suites") }];
  });
}

export async function findDebianMirror(suite: string, aptDir = "/etc/apt"): Promise<string> {
  const files: Array<{ path: string; deb822: boolean }> = [{ path: join(aptDir, "sources.list"), deb822: false }];
  const listDir = join(aptDir, "sources.list.d");
  for (const name of (await readdir(listDir).catch(() => [] as string[])).sort()) {
    if (name.endsWith(".list")) files.push({ path: join(listDir, name), deb822: false });
    if (name.endsWith(".sources")) files.push({ path: join(listDir, name), deb822: true });
  }
  for (const file of files) {
    const text = await readFile(file.path, "utf8").catch(() => "");
    for (const source of parseAptSources(text, file.deb822)) {
      if (!source.suites.includes(suite)) continue;
      const uri = source.uris.find((u) => /^https?:\/\//.test(u) && !/security/.test(u));
      if (uri) return uri.replace(/\/+$/, "");
    }
  }
  return FALLBACK_MIRROR;
}
