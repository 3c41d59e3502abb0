import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { SPECIAL_ADDRESS_BLOCKS } from './publicAddresses';

/**
 * SSRF protection for every URL the deployment connects to on a caller's behalf (webhook targets,
 * S3 destination endpoints): only a global unicast address is accepted, unless the deployment
 * allows private targets. The address checked is the one connected to (see delivery.ts), so a DNS
 * answer that changes between check and use cannot slip through. The GPU worker applies the same
 * rules, from the same blocks (publicAddresses.ts), to destination uploads
 * (gpu-worker/apex_gpu_worker/outbound_target.py).
 */

type Cidr = { bytes: number[]; bits: number };

const IPV4_SPECIAL = SPECIAL_ADDRESS_BLOCKS.ipv4Special.map(cidr);
const IPV6_GLOBAL = cidr(SPECIAL_ADDRESS_BLOCKS.ipv6Global);
const IPV6_SPECIAL = SPECIAL_ADDRESS_BLOCKS.ipv6Special.map(cidr);
const IPV4_MAPPED = cidr(SPECIAL_ADDRESS_BLOCKS.ipv4Mapped);
const SIX_TO_FOUR = cidr(SPECIAL_ADDRESS_BLOCKS.sixToFour);

export class UnsafeTarget extends Error {
  name = 'UnsafeTarget';
}

/**
 * True for a global unicast address. An IPv4 address wrapped in IPv6 (IPv4-mapped, 6to4) is judged
 * by the IPv4 address inside; every other IPv6 form outside 2000::/3 (IPv4-compatible, site-local,
 * discard-only, NAT64, unique- and link-local) is refused.
 */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !IPV4_SPECIAL.some((c) => within(ipv4Bytes(address), c));
  if (family !== 6) return false;
  const bytes = ipv6Bytes(address);
  if (within(bytes, IPV4_MAPPED)) return isPublicAddress(bytes.slice(12).join('.'));
  if (within(bytes, SIX_TO_FOUR)) return isPublicAddress(bytes.slice(2, 6).join('.'));
  return within(bytes, IPV6_GLOBAL) && !IPV6_SPECIAL.some((c) => within(bytes, c));
}

export type Resolver = (host: string) => Promise<{ address: string; family: number }>;

/** The address to connect to for `url`, after checking scheme and address. */
export async function resolveOutboundTarget(url: string, allowPrivate: boolean, resolve: Resolver = lookup): Promise<{ address: string; family: number }> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new UnsafeTarget('the URL must be http or https');
  if (parsed.username || parsed.password) throw new UnsafeTarget('the URL must not carry credentials');
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const { address, family } = isIP(host) ? { address: host, family: isIP(host) } : await resolve(host);
  if (!allowPrivate && !isPublicAddress(address)) {
    throw new UnsafeTarget(`the URL resolves to ${address}, which is not a public address (loopback, private, link-local or reserved)`);
  }
  return { address, family };
}

function cidr(text: string): Cidr {
  const [address, bits] = text.split('/');
  return { bytes: isIP(address) === 4 ? ipv4Bytes(address) : ipv6Bytes(address), bits: Number(bits) };
}

function within(bytes: number[], { bytes: prefix, bits }: Cidr): boolean {
  if (bytes.length !== prefix.length) return false;
  for (let i = 0; i < bits; i += 8) {
    const mask = (0xff << (8 - Math.min(8, bits - i))) & 0xff;
    if ((bytes[i / 8] & mask) !== (prefix[i / 8] & mask)) return false;
  }
  return true;
}

function ipv4Bytes(address: string): number[] {
  return address.split('.').map(Number);
}

/** The 16 bytes of a valid IPv6 address (`::` expanded, a trailing dotted IPv4 and a zone id allowed). */
function ipv6Bytes(address: string): number[] {
  let text = address.split('%')[0].toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}
