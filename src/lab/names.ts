/**
 * Grammars for everything the lab turns into a kernel object name or a path, and the
 * names derived from them. Interface names are limited to 15 bytes by the kernel (IFNAMSIZ),
 * which is why lab and host names are short.
 */
import { LabError } from "./errors.js";

// No hyphen in lab names: netns names are "lifeline-<lab>-<host>", and a hyphen would let
// lab "a-b" host "c" collide with lab "a" host "b-c".
const LAB_NAME = /^[a-z][a-z0-9]{0,11}$/;
// 13 characters so the bridge-side veth "h-<host>" fits in 15.
const HOST_NAME = /^[a-z](?:[a-z0-9-]{0,11}[a-z0-9])?$/;
const RESERVED_HOST_NAMES = new Set(["br"]);

export function assertLabName(name: string): void {
  if (!LAB_NAME.test(name)) {
    throw new LabError("LAB_INVALID_ARGUMENT", `Invalid lab name "${name}": use 1-12 of a-z 0-9, starting with a letter`);
  }
}

export function assertHostName(name: string): void {
  if (!HOST_NAME.test(name) || RESERVED_HOST_NAMES.has(name)) {
    throw new LabError(
      "LAB_INVALID_ARGUMENT",
      `Invalid host name ${JSON.stringify(name)}: use 1-13 of a-z 0-9 -, starting with a letter, not "br"`,
    );
  }
}

/** Default host names: lab-1, lab-2, ... */
export function defaultHostName(index: number): string {
  return `lab-${index}`;
}

export interface Subnet {
  /** The first three octets, e.g. "10.231.0". Only /24 subnets are supported. */
  prefix: string;
  cidr: string;
}

export function parseSubnet(cidr: string): Subnet {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(cidr);
  const octets = m ? m.slice(1, 4).map(Number) : [];
  const [a, b] = octets;
  const inRange = (n: number) => n >= 0 && n <= 255;
  const isPrivate =
    a === 10 || (a === 172 && b !== undefined && b >= 16 && b <= 31) || (a === 192 && b === 168);
  if (!m || !octets.every(inRange) || !isPrivate) {
    throw new LabError("LAB_INVALID_ARGUMENT", `Invalid lab subnet "${cidr}": use a private /24 such as 10.231.0.0/24`);
  }
  return { prefix: octets.join("."), cidr };
}

/** .1 is the machine's own side of the lab network (where a server listens); hosts start at .11. */
export function gatewayAddress(subnet: Subnet): string {
  return `${subnet.prefix}.1`;
}

export const FIRST_HOST_OCTET = 11;
export const LAST_HOST_OCTET = 250;

export function hostAddress(subnet: Subnet, slot: number): string {
  const octet = FIRST_HOST_OCTET + slot;
  if (slot < 0 || octet > LAST_HOST_OCTET) throw new LabError("LAB_INVALID_ARGUMENT", `No address left for host slot ${slot}`);
  return `${subnet.prefix}.${octet}`;
}

/** Kernel object names derived from the lab name. */
export function netnsNames(lab: string) {
  return {
    prefix: `lifeline-${lab}-`,
    bridgeNetns: `lifeline-${lab}-br`,
    hostNetns: (host: string) => `lifeline-${lab}-${host}`,
    /** The machine-side end of the uplink veth (in the root namespace). */
    rootVeth: `lf-${lab}`,
    /** Its peer inside the bridge namespace. */
    uplinkVeth: "uplink",
    bridge: "br0",
    /** The bridge-side end of a host's veth; the host side is always eth0. */
    hostVeth: (host: string) => `h-${host}`,
  };
}
