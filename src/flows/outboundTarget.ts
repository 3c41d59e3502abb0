import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * SSRF protection for every URL the deployment connects to on a caller's behalf (webhook targets,
 * S3 destination endpoints): a URL whose host resolves to a loopback, private,
 * link-local, unique-local, CGNAT or otherwise non-public address is refused unless the deployment
 * allows private targets. The address checked is the one connected to (see delivery.ts), so a DNS
 * answer that changes between check and use cannot slip through.
 */
const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['::ffff:0:0', 96], ['64:ff9b::', 96]] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

export class UnsafeTarget extends Error {
  name = 'UnsafeTarget';
}

export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return !blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** The address to connect to for `url`, after checking scheme and address. */
export async function resolveOutboundTarget(url: string, allowPrivate: boolean): Promise<{ address: string; family: number }> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new UnsafeTarget('the URL must be http or https');
  if (parsed.username || parsed.password) throw new UnsafeTarget('the URL must not carry credentials');
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const { address, family } = isIP(host) ? { address: host, family: isIP(host) } : await lookup(host);
  if (!allowPrivate && !isPublicAddress(address)) {
    throw new UnsafeTarget(`the URL resolves to ${address}, a loopback, private or link-local address`);
  }
  return { address, family };
}
