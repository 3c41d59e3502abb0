/**
 * Which addresses count as public, as data: the blocks the SSRF guard is made of and the addresses
 * that pin them down. `npm run contracts` exports both as contracts/outbound-addresses.json, so the
 * GPU worker's guard (gpu-worker/apex_gpu_worker/outbound_target.py) reads the same blocks and
 * both languages' tests check the same examples.
 */
export const SPECIAL_ADDRESS_BLOCKS = {
  // IANA special-purpose IPv4 blocks: nothing in them is a public host.
  ipv4Special: [
    '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24',
    '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24',
    '224.0.0.0/4', '240.0.0.0/4',
  ],
  // IPv6 global unicast is 2000::/3; inside it, protocol assignments (Teredo, ORCHID…) and documentation.
  ipv6Global: '2000::/3',
  ipv6Special: ['2001::/23', '2001:db8::/32', '3fff::/20'],
  // IPv6 forms that carry an IPv4 address, judged by the address inside.
  ipv4Mapped: '::ffff:0:0/96',
  sixToFour: '2002::/16',
} as const;

export const PUBLIC_ADDRESS_EXAMPLES = {
  /** Global unicast: accepted, literal or behind a name. */
  public: [
    '8.8.8.8', '1.1.1.1', '93.184.215.14', '9.9.9.9', '100.63.255.255', '100.128.0.0', '172.32.0.1', '192.169.0.1',
    '2606:4700:4700::1111', '2001:4860:4860::8888', '2a00:1450:4001:80b::200e', '::ffff:8.8.8.8', '::ffff:808:808',
    '2002:808:808::1', '2002:808:808::',
  ],
  /** Loopback, private, link-local, reserved, documentation and the IPv6 forms wrapping them: refused. */
  notPublic: [
    '127.0.0.1', '127.255.255.254', '127.255.0.9', '10.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1',
    '169.254.169.254', '100.64.0.1', '0.0.0.0', '192.0.0.1', '192.0.0.8', '192.0.2.1', '198.18.0.1', '198.51.100.7',
    '203.0.113.9', '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255',
    '::', '::1', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'fe80::1%eth0', 'fe80::1%1', 'ff02::1', 'fec0::1', '100::1',
    '64:ff9b::8.8.8.8', '64:ff9b::7f00:1', '64:ff9b::808:808', '::127.0.0.1', '::8.8.8.8', '::ffff:127.0.0.1',
    '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:0:127.0.0.1', '2002:7f00:1::', '2002:a00:1::', '2002:c0a8:101::1',
    '2001:db8::1', '2001::1', '3fff::1',
  ],
  /** Not an address at all: never taken for a public one. */
  notAddresses: ['not an address'],
} as const;
