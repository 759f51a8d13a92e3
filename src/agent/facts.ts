import { readFileSync } from "node:fs";
import { arch, hostname, networkInterfaces, platform, release } from "node:os";
import type { MachineFacts } from "../protocol/index.js";

function osPrettyName(): string {
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    const match = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text);
    return (match?.[1] ?? "").slice(0, 256);
  } catch {
    return "";
  }
}

export function collectFacts(): MachineFacts {
  const addresses = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal)
    .map((a) => a!.address)
    .slice(0, 64);
  return { os: platform(), osPretty: osPrettyName(), arch: arch(), kernel: release().slice(0, 256), hostname: hostname().slice(0, 255), addresses };
}
