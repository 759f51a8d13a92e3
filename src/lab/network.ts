/**
 * The lab network: a bridge namespace holding a Linux bridge, one veth per host into it,
 * and one uplink veth to the machine's root namespace, whose end carries the gateway
 * address (.1). That address is the lab's only footprint in the root namespace: its connected
 * route is the one route the lab adds, and hosts have no default route, so nothing outside
 * the lab is reachable from a host.
 *
 *   root ns: lf-<lab> 10.x.y.1/24 ──veth── [bridge ns: uplink ─ br0 ─ h-<host>] ──veth── host ns: eth0 10.x.y.11/24
 */
import { LabError } from "./errors.js";
import { run, runNeedingFeature } from "./exec.js";
import { gatewayAddress, netnsNames, type Subnet } from "./names.js";

type Names = ReturnType<typeof netnsNames>;

export async function listNetns(): Promise<string[]> {
  const out = await run("ip", ["-json", "netns", "list"]);
  if (!out.stdout.trim()) return [];
  return (JSON.parse(out.stdout) as Array<{ name: string }>).map((n) => n.name);
}

export async function netnsExists(name: string): Promise<boolean> {
  return (await listNetns()).includes(name);
}

export async function netnsPids(name: string): Promise<number[]> {
  const out = await run("ip", ["netns", "pids", name], { allowFailure: true });
  if (out.exitCode !== 0) return [];
  return out.stdout.split(/\s+/).filter(Boolean).map(Number);
}

async function linkExists(dev: string, netns?: string): Promise<boolean> {
  const args = netns ? ["-n", netns, "link", "show", "dev", dev] : ["link", "show", "dev", dev];
  return (await run("ip", args, { allowFailure: true })).exitCode === 0;
}

async function ensureNetns(name: string): Promise<void> {
  if (!(await netnsExists(name))) {
    await runNeedingFeature("network namespaces", /Operation not permitted|Invalid argument|not supported/i, "ip", ["netns", "add", name]);
  }
  await run("ip", ["-n", name, "link", "set", "lo", "up"]);
}

function ipv4ToInt(addr: string): number {
  return addr.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}

function overlaps(a: string, b: string): boolean {
  const parse = (cidr: string): [number, number] => {
    const [addr = "0.0.0.0", len = "32"] = cidr.split("/");
    const bits = Number(len);
    const size = 2 ** (32 - bits);
    const start = Math.floor(ipv4ToInt(addr) / size) * size;
    return [start, start + size - 1];
  };
  const [a0, a1] = parse(a);
  const [b0, b1] = parse(b);
  return a0 <= b1 && b0 <= a1;
}

/** Refuses a subnet the machine already routes through anything but this lab's uplink. */
export async function assertSubnetFree(subnet: Subnet, names: Names): Promise<void> {
  const out = await run("ip", ["-json", "-4", "route", "show", "table", "all"]);
  const routes = JSON.parse(out.stdout || "[]") as Array<{ dst: string; dev?: string; type?: string }>;
  for (const r of routes) {
    if (!r.dst || r.dst === "default" || r.dev === names.rootVeth) continue;
    if (r.type && r.type !== "unicast") continue;
    const dst = r.dst.includes("/") ? r.dst : `${r.dst}/32`;
    if (overlaps(dst, subnet.cidr)) {
      throw new LabError("LAB_SUBNET_IN_USE", `Lab subnet ${subnet.cidr} overlaps route ${r.dst} via ${r.dev ?? "?"}: choose another subnet`);
    }
  }
}

export async function ensureBridge(names: Names, subnet: Subnet): Promise<void> {
  const br = names.bridgeNetns;
  await ensureNetns(br);
  if (!(await linkExists(names.bridge, br))) {
    await run("ip", ["-n", br, "link", "add", names.bridge, "type", "bridge"]);
  }
  await run("ip", ["-n", br, "link", "set", names.bridge, "up"]);
  if (!(await linkExists(names.rootVeth))) {
    await run("ip", ["link", "add", names.rootVeth, "type", "veth", "peer", "name", names.uplinkVeth, "netns", br]);
  }
  await run("ip", ["-n", br, "link", "set", names.uplinkVeth, "master", names.bridge, "up"]);
  await run("ip", ["addr", "replace", `${gatewayAddress(subnet)}/24`, "dev", names.rootVeth]);
  await run("ip", ["link", "set", names.rootVeth, "up"]);
}

export async function ensureHostNetwork(names: Names, host: string, address: string): Promise<void> {
  const ns = names.hostNetns(host);
  const veth = names.hostVeth(host);
  await ensureNetns(ns);
  if (!(await linkExists("eth0", ns))) {
    // A stale bridge-side end would block the name; its peer is gone, so it is useless.
    if (await linkExists(veth, names.bridgeNetns)) await run("ip", ["-n", names.bridgeNetns, "link", "del", veth]);
    await run("ip", ["-n", names.bridgeNetns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns]);
  }
  await run("ip", ["-n", names.bridgeNetns, "link", "set", veth, "master", names.bridge, "up"]);
  await run("ip", ["-n", ns, "addr", "replace", `${address}/24`, "dev", "eth0"]);
  await run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
}

/** Deleting a namespace destroys the interfaces in it, and with them their veth peers. */
export async function deleteNetns(name: string): Promise<void> {
  if (await netnsExists(name)) await run("ip", ["netns", "del", name]);
}

export async function deleteRootVeth(names: Names): Promise<void> {
  if (await linkExists(names.rootVeth)) await run("ip", ["link", "del", names.rootVeth], { allowFailure: true });
}
