import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { isIPv6 } from "node:net";
import dnsPacket from "dns-packet";

export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

const QUERY_TIMEOUT_MS = 3_000;

/**
 * SRV records of `name`. Node's resolver (c-ares) is tried first; it rejects Samba's internal
 * DNS server's answers as EBADRESP (Samba compresses the SRV target, which RFC 2782 says not to
 * do, and c-ares' strict parser refuses it), so on that error one plain UDP query per
 * configured nameserver is made and decoded with dns-packet, which reads compressed names
 * anywhere. A fresh Resolver reads /etc/resolv.conf now: the machine may have joined a domain
 * (and got the DC as its DNS server) after the agent started.
 */
export async function resolveSrv(name: string): Promise<SrvRecord[]> {
  const resolver = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: 2 });
  try {
    return await resolver.resolveSrv(name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EBADRESP") throw err;
    let last: unknown = err;
    for (const server of resolver.getServers()) {
      try {
        return await querySrv(name, server);
      } catch (e) {
        last = e;
      }
    }
    throw last;
  }
}

/** One SRV query over UDP to `server` ("addr" or "addr:port", "[v6]:port"). */
function querySrv(name: string, server: string): Promise<SrvRecord[]> {
  const match = /^\[(.+)\]:(\d+)$/.exec(server) ?? /^([^:]+):(\d+)$/.exec(server);
  const host = match ? match[1]! : server;
  const port = match ? Number(match[2]) : 53;
  const id = Math.floor(Math.random() * 65_536);
  const query = dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "SRV", name }] });
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(host) ? "udp6" : "udp4");
    const timer = setTimeout(() => finish(Object.assign(new Error(`no DNS answer from ${server}`), { code: "ETIMEOUT" })), QUERY_TIMEOUT_MS);
    const finish = (err: Error | null, records?: SrvRecord[]) => {
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(records!);
    };
    socket.on("error", (err) => finish(err));
    socket.on("message", (message) => {
      let packet: dnsPacket.DecodedPacket;
      try {
        packet = dnsPacket.decode(message);
      } catch (err) {
        return finish(Object.assign(new Error(`bad DNS answer from ${server}: ${(err as Error).message}`), { code: "EBADRESP" }));
      }
      if (packet.id !== id) return; // not ours: keep waiting
      // dns-packet decodes the response code; its type definitions leave it out.
      const rcode = (packet as dnsPacket.DecodedPacket & { rcode?: string }).rcode ?? "NOERROR";
      if (rcode !== "NOERROR") return finish(Object.assign(new Error(`DNS ${rcode} for ${name}`), { code: rcode === "NXDOMAIN" ? "ENOTFOUND" : "ESERVFAIL" }));
      const records = (packet.answers ?? []).flatMap((a) => (a.type === "SRV" ? [{ name: a.data.target, port: a.data.port, priority: a.data.priority ?? 0, weight: a.data.weight ?? 0 }] : []));
      if (!records.length) return finish(Object.assign(new Error(`no SRV record ${name}`), { code: "ENODATA" }));
      finish(null, records);
    });
    socket.send(query, port, host);
  });
}
