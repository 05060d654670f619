import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AllowEntryError,
  OutboundPolicy,
  classifyAddress,
  parseAllowEntry,
} from '../../lattice/allowlist.ts';

function problemOf(entry: string): string {
  try {
    parseAllowEntry(entry);
  } catch (err) {
    expect(err).toBeInstanceOf(AllowEntryError);
    const e = err as AllowEntryError;
    expect(e.message).toContain(JSON.stringify(entry));
    return e.problem;
  }
  throw new Error(`expected ${JSON.stringify(entry)} to be rejected`);
}

function allows(entries: string[], url: string): boolean {
  return new OutboundPolicy(entries).checkUrl(new URL(url)).allowed;
}

describe('parseAllowEntry: valid entries', () => {
  it.each([
    [
      'https://api.example.com',
      'https',
      { kind: 'name', name: 'api.example.com' },
      { kind: 'default' },
    ],
    [
      'HTTP://API.Example.COM',
      'http',
      { kind: 'name', name: 'api.example.com' },
      { kind: 'default' },
    ],
    ['https://example.com/', 'https', { kind: 'name', name: 'example.com' }, { kind: 'default' }],
    ['https://example.com.', 'https', { kind: 'name', name: 'example.com' }, { kind: 'default' }],
    [
      '  https://example.com  ',
      'https',
      { kind: 'name', name: 'example.com' },
      { kind: 'default' },
    ],
    [
      'https://bücher.example',
      'https',
      { kind: 'name', name: 'xn--bcher-kva.example' },
      { kind: 'default' },
    ],
    [
      'http://*.svc.internal:8080',
      'http',
      { kind: 'subdomain', suffix: '.svc.internal' },
      { kind: 'range', from: 8080, to: 8080 },
    ],
    ['*://*:*', '*', { kind: 'any' }, { kind: 'any' }],
    ['*://example.com', '*', { kind: 'name', name: 'example.com' }, { kind: 'default' }],
    ['http://*:8000-8999', 'http', { kind: 'any' }, { kind: 'range', from: 8000, to: 8999 }],
    [
      'tcp://db.internal:5432',
      'tcp',
      { kind: 'name', name: 'db.internal' },
      { kind: 'range', from: 5432, to: 5432 },
    ],
    ['tcp://db:*', 'tcp', { kind: 'name', name: 'db' }, { kind: 'any' }],
    [
      'http://my_service.local:1',
      'http',
      { kind: 'name', name: 'my_service.local' },
      { kind: 'range', from: 1, to: 1 },
    ],
    [
      'https://x:65535',
      'https',
      { kind: 'name', name: 'x' },
      { kind: 'range', from: 65535, to: 65535 },
    ],
  ])('%s', (entry, scheme, host, port) => {
    const rule = parseAllowEntry(entry);
    expect(rule).toEqual({ raw: entry.trim(), scheme, host, port });
  });

  it.each([
    ['http://127.0.0.1', 4, 0x7f000001n, 32],
    ['http://10.0.0.0/8', 4, 0x0a000000n, 8],
    ['http://10.1.2.3/8:8080', 4, 0x0a000000n, 8], // host bits ignored, as Spin does
    ['http://0.0.0.0/0', 4, 0n, 0],
    ['http://[::1]:8080', 6, 1n, 128],
    ['http://[fd00::]/8', 6, 0xfdn << 120n, 8],
    ['http://[FD00::]/8:*', 6, 0xfdn << 120n, 8],
    ['http://[::ffff:127.0.0.1]', 4, 0x7f000001n, 32], // IPv4-mapped: the IPv4 address
    ['http://[::ffff:10.0.0.0]/104', 4, 0x0a000000n, 8],
  ])('%s → an IP network', (entry, version, base, prefix) => {
    expect(parseAllowEntry(entry).host).toEqual({ kind: 'ip', net: { version, base, prefix } });
  });
});

describe('parseAllowEntry: invalid entries name the entry and the problem', () => {
  it.each([
    ['', 'the entry is empty'],
    [
      'example.com',
      'the scheme is missing: write e.g. https://example.com (or *://example.com for any scheme)',
    ],
    ['://example.com', 'the scheme is empty: write *:// for any scheme'],
    ['h ttp://example.com', 'it contains whitespace'],
    ['1http://example.com', 'scheme "1http" is not a valid scheme name'],
    ['https://', 'the host is empty'],
    ['https://:443', 'the host is empty'],
    ['https://example.com/api', 'a path (/api) is not allowed'],
    ['https://example.com:443/api', 'a path (/api) is not allowed'],
    ['https://example.com?x=1', 'a query is not allowed'],
    ['https://example.com#top', 'a fragment is not allowed'],
    ['https://user@example.com', 'userinfo is not allowed'],
    [
      'https://*example.com',
      'a wildcard may only be the whole host (*) or the first label (*.example.com)',
    ],
    [
      'https://api.*.example.com',
      'a wildcard may only be the whole host (*) or the first label (*.example.com)',
    ],
    ['https://*.*.example.com', 'a wildcard may only be the first label (*.example.com)'],
    ['https://*.', '"" is not a valid host name'],
    ['https://exa$mple.com', '"exa$mple.com" is not a valid host name'],
    [
      'https://0x7f.1',
      '"0x7f.1" is neither a host name nor an IPv4 address in dotted-decimal form',
    ],
    [
      'https://2130706433',
      '"2130706433" is neither a host name nor an IPv4 address in dotted-decimal form',
    ],
    [
      'https://1.2.3.4.5',
      '"1.2.3.4.5" is neither a host name nor an IPv4 address in dotted-decimal form',
    ],
    ['http://::1', 'IPv6 addresses go in brackets: [::1]'],
    ['http://fd00::/8', 'IPv6 addresses go in brackets: [fd00::]'],
    ['http://[::1', '"[" is not closed'],
    ['http://[not-v6]', '[not-v6] is not an IPv6 address'],
    ['http://[fe80::1%eth0]', '[fe80::1%eth0] is not an IPv6 address'],
    ['http://10.0.0.0/33', 'CIDR prefix /33 is not in 0-32'],
    ['http://[fd00::]/129', 'CIDR prefix /129 is not in 0-128'],
    ['http://10.0.0.0/x', 'CIDR prefix /x is not in 0-32'],
    ['http://[::ffff:0:0]/64', '[::ffff:0:0]/64 mixes IPv4-mapped and other addresses'],
    ['http://example.com/8', 'a path (/8) is not allowed'],
    [
      'tcp://db.internal',
      'a port is required for scheme "tcp" (only http and https have a default port): write e.g. tcp://host:1234 or tcp://host:*',
    ],
    ['https://example.com:', 'the port after ":" is empty'],
    ['https://example.com:0', 'port "0" is not a number in 1-65535'],
    ['https://example.com:65536', 'port "65536" is not a number in 1-65535'],
    ['https://example.com:http', 'port "http" is not a number in 1-65535'],
    ['https://example.com:9000-8000', 'port range 9000-8000 is empty'],
    ['https://example.com:8000..9000', 'write a port range as 8000-8999 (both ends included)'],
    ['https://example.com:80:81', 'port "80:81" is not a number in 1-65535'],
  ])('%j: %s', (entry, problem) => {
    expect(problemOf(entry)).toBe(problem);
  });

  it('the constructor throws on the first bad entry', () => {
    expect(() => new OutboundPolicy(['https://ok.example', 'tcp://db'])).toThrow(
      /invalid outbound host "tcp:\/\/db": a port is required/,
    );
  });
});

describe('checkUrl', () => {
  it.each([
    // exact names, case-insensitive, default ports
    [['https://api.example.com'], 'https://api.example.com/v1?q=1', true],
    [['https://api.example.com'], 'https://API.EXAMPLE.com./v1', true],
    [['https://api.example.com'], 'https://api.example.com:443/', true],
    [['https://api.example.com'], 'https://api.example.com:8443/', false],
    [['https://api.example.com'], 'http://api.example.com/', false],
    [['https://api.example.com'], 'https://example.com/', false],
    [['https://api.example.com'], 'https://x.api.example.com/', false],
    [['https://api.example.com'], 'https://api.example.com.evil.test/', false],
    [['https://bücher.example'], 'https://BÜCHER.example/', true],
    // *. prefix: any depth of subdomain, not the apex
    [['https://*.example.com'], 'https://a.example.com/', true],
    [['https://*.example.com'], 'https://a.b.example.com/', true],
    [['https://*.example.com'], 'https://example.com/', false],
    [['https://*.example.com'], 'https://badexample.com/', false],
    [['https://*.example.com'], 'https://a.example.com.evil.test/', false],
    [['https://*.example.com'], 'https://1.2.3.4/', false],
    // * host: names and IPs (addresses are judged by checkAddress)
    [['https://*'], 'https://anything.test/', true],
    [['https://*'], 'https://1.2.3.4/', true],
    [['https://*'], 'https://[2001:db8::1]/', true],
    [['https://*'], 'https://anything.test:444/', false],
    // CIDR and literals
    [['http://10.0.0.0/8'], 'http://10.200.3.4/', true],
    [['http://10.0.0.0/8'], 'http://11.0.0.1/', false],
    [['http://10.0.0.0/8'], 'http://ten.example/', false],
    [['http://10.0.0.0/8'], 'http://[::ffff:10.1.1.1]/', true],
    [['http://10.0.0.0/8'], 'http://[fd00::1]/', false],
    [['http://[fd00::]/8'], 'http://[fd12:3456::1]/', true],
    [['http://[fd00::]/8'], 'http://[fe80::1]/', false],
    [['http://[fd00::]/8'], 'http://10.0.0.1/', false],
    [['http://127.0.0.1:8080'], 'http://127.0.0.1:8080/', true],
    [['http://127.0.0.1:8080'], 'http://0x7f.1:8080/', true], // new URL normalizes to 127.0.0.1
    [['http://127.0.0.1:8080'], 'http://127.0.0.2:8080/', false],
    [['http://[::1]:8080'], 'http://[0:0::1]:8080/', true],
    // ports: explicit, range, default, *
    [['http://example.com:8080'], 'http://example.com:8080/', true],
    [['http://example.com:8080'], 'http://example.com/', false],
    [['http://example.com:8000-8999'], 'http://example.com:8000/', true],
    [['http://example.com:8000-8999'], 'http://example.com:8999/', true],
    [['http://example.com:8000-8999'], 'http://example.com:9000/', false],
    [['http://example.com:8000-8999'], 'http://example.com:7999/', false],
    [['http://example.com:80'], 'http://example.com/', true],
    [['http://example.com:*'], 'http://example.com:1/', true],
    [['http://example.com:*'], 'http://example.com/', true],
    [['https://example.com:80'], 'https://example.com/', false],
    // scheme *: any scheme, default port of the URL's scheme when none is given
    [['*://example.com'], 'http://example.com/', true],
    [['*://example.com'], 'https://example.com/', true],
    [['*://example.com'], 'https://example.com:80/', false],
    [['*://example.com'], 'http://example.com:443/', false],
    [['*://example.com:8080'], 'https://example.com:8080/', true],
    [['*://*:*'], 'http://whatever.test:1234/', true],
    // several entries: any one allows
    [['https://a.test', 'http://b.test:81'], 'http://b.test:81/', true],
    [['https://a.test', 'http://b.test:81'], 'http://a.test/', false],
    // an empty list denies all
    [[], 'https://example.com/', false],
  ] as const)('%j allows %s: %s', (entries, url, expected) => {
    expect(allows([...entries], url)).toBe(expected);
  });

  it('names the entry that allowed, and says why not', () => {
    const p = new OutboundPolicy(['https://a.test', 'https://*.b.test']);
    expect(p.checkUrl(new URL('https://x.b.test/p'))).toEqual({
      allowed: true,
      rule: 'https://*.b.test',
    });
    expect(p.checkUrl(new URL('https://c.test/p'))).toEqual({
      allowed: false,
      reason: 'https://c.test:443: no allowlist entry matches (https://a.test, https://*.b.test)',
    });
    const many = new OutboundPolicy(
      ['1', '2', '3', '4', '5', '6', '7'].map((n) => `https://${n}.test`),
    );
    expect(many.checkUrl(new URL('https://c.test/p'))).toMatchObject({
      reason: expect.stringMatching(/\(https:\/\/1\.test, .*, https:\/\/5\.test and 2 more\)$/),
    });
    expect(new OutboundPolicy([]).checkUrl(new URL('http://a.test'))).toEqual({
      allowed: false,
      reason: 'http://a.test:80: the allowlist is empty, so no outbound access is granted',
    });
  });
});

describe('checkHostPort (sockets)', () => {
  const p = new OutboundPolicy([
    'tcp://db.internal:5432',
    'tcp://10.0.0.0/8:6379',
    'tcp://[fd00::]/8:*',
  ]);
  it.each([
    ['tcp', 'db.internal', 5432, true],
    ['TCP', 'DB.Internal', 5432, true],
    ['tcp', 'db.internal.', 5432, true],
    ['tcp', 'db.internal', 5433, false],
    ['udp', 'db.internal', 5432, false],
    ['tcp', '10.1.2.3', 6379, true],
    ['tcp', '::ffff:10.1.2.3', 6379, true],
    ['tcp', '10.1.2.3', 6380, false],
    ['tcp', 'fd00::5', 1, true],
    ['tcp', '[fd00::5]', 65535, true],
    // what is checked must be what is connected: no escapes, no numeric IPv4 spellings
    ['tcp', 'db%2einternal', 5432, false],
    ['tcp', 'db.internal/x', 5432, false],
    ['tcp', '167772161', 6379, false],
    ['tcp', '', 5432, false],
  ] as const)('%s://%s:%d → %s', (scheme, host, port, expected) => {
    expect(p.checkHostPort(scheme, host, port).allowed).toBe(expected);
  });

  it('a port left out matches only * ports', () => {
    expect(p.checkHostPort('tcp', 'fd00::5', undefined).allowed).toBe(true);
    expect(p.checkHostPort('tcp', 'db.internal', undefined).allowed).toBe(false);
  });
});

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['64:ff9b::7f00:1', 'loopback'], // NAT64
    ['2002:7f00:1::', 'loopback'], // 6to4
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.100.100.200', 'private'],
    ['fc00::1', 'private'],
    ['fd12::1', 'private'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::1.2.3.4', 'reserved'],
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['192.169.0.1', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['64:ff9b::808:808', 'public'],
    ['not-an-ip', undefined],
    ['1.2.3', undefined],
  ])('%s is %s', (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });
});

describe('checkAddress', () => {
  const url = 'http://svc.example:8080/';

  it.each([
    '127.0.0.1',
    '::1',
    '169.254.169.254',
    'fd00:ec2::254',
    '10.1.2.3',
    '192.168.0.10',
    '172.16.5.5',
    '::ffff:127.0.0.1',
    'fe80::1',
    '0.0.0.0',
    '100.64.0.1',
  ])('%s is refused for a granted name', (address) => {
    const p = new OutboundPolicy(['http://svc.example:8080']);
    const v = p.checkAddress(new URL(url), address, address.includes(':') ? 6 : 4);
    expect(v.allowed).toBe(false);
    if (!v.allowed) {
      expect(v.reason).toContain(`svc.example resolved to ${address}, which is a`);
      expect(v.rule).toBe('http://svc.example:8080');
    }
  });

  it.each(['93.184.215.14', '2606:4700:4700::1111', '172.32.0.1'])(
    'public %s is allowed when the URL is',
    (address) => {
      const p = new OutboundPolicy(['http://svc.example:8080']);
      expect(p.checkAddress(new URL(url), address, address.includes(':') ? 6 : 4)).toEqual({
        allowed: true,
        rule: 'http://svc.example:8080',
      });
      expect(p.checkAddress(new URL('http://other.example:8080/'), address, 4).allowed).toBe(false);
    },
  );

  it.each([
    [['http://127.0.0.1:8080'], '127.0.0.1', true],
    [['http://127.0.0.1:8080'], '::ffff:127.0.0.1', true],
    [['http://127.0.0.0/8:8080'], '127.0.0.1', true],
    [['http://127.0.0.1:8081'], '127.0.0.1', false], // port must match
    [['https://127.0.0.1:8080'], '127.0.0.1', false], // scheme must match
    [['*://127.0.0.1:*'], '127.0.0.1', true],
    [['http://127.0.0.2:8080'], '127.0.0.1', false],
    [['http://[::1]:8080'], '::1', true],
    [['http://[::1]:8080'], '127.0.0.1', false],
    [['http://10.0.0.0/8:8080'], '10.9.9.9', true],
    [['http://10.0.0.0/8:8080'], '192.168.0.1', false],
    [['http://169.254.169.254:8080'], '169.254.169.254', true],
    [['http://169.254.0.0/16:8080'], '169.254.169.254', true],
    [['http://[fe80::]/10:8080'], 'fe80::1', true],
    [['http://[fd00::]/8:8080'], 'fd00:ec2::254', true],
    [['http://0.0.0.0/0:*'], '127.0.0.1', true], // a CIDR that contains it, however wide
    [['http://*:*'], '127.0.0.1', false],
    [['*://*:*'], '127.0.0.1', false],
    [['*://*:*'], '169.254.169.254', false],
  ] as const)('name granted, plus %j: %s → %s', (extra, address, expected) => {
    const p = new OutboundPolicy(['http://svc.example:8080', ...extra]);
    expect(p.checkAddress(new URL(url), address, address.includes(':') ? 6 : 4).allowed).toBe(
      expected,
    );
  });

  it('requires checkUrl to allow the URL first: an address grant alone is not a name grant', () => {
    const p = new OutboundPolicy(['http://10.0.0.0/8:8080']);
    expect(p.checkAddress(new URL(url), '10.0.0.1', 4)).toMatchObject({ allowed: false });
  });

  it('an IP-literal URL is judged by its own address', () => {
    // *://*:* allows every URL by the rules, but a literal private or metadata address is still
    // refused unless an entry names that address: the wildcard means the internet, not the host.
    const p = new OutboundPolicy(['*://*:*']);
    const meta = new URL('http://169.254.169.254/latest/meta-data/');
    expect(p.checkUrl(meta).allowed).toBe(true);
    expect(p.checkAddress(meta, '169.254.169.254', 4)).toEqual({
      allowed: false,
      rule: '*://*:*',
      reason:
        '169.254.169.254 is a metadata address: only an entry naming it (an IP literal or a CIDR) allows it, e.g. http://169.254.169.254:80',
    });
    const ok = new URL('http://93.184.215.14/');
    expect(p.checkAddress(ok, '93.184.215.14', 4).allowed).toBe(true);
  });

  it('refuses what is not an address', () => {
    const p = new OutboundPolicy(['http://svc.example:8080']);
    expect(p.checkAddress(new URL(url), 'svc.example', 4).allowed).toBe(false);
  });
});

describe('grantsEverything', () => {
  it.each([
    [['*://*:*'], true],
    [['https://a.test', '*://*:*'], true],
    [['http://*:*'], false],
    [['*://*'], false],
    [['*://*:1-65535'], false],
    [['http://0.0.0.0/0:*'], false],
    [[], false],
  ])('%j → %s', (entries, expected) => {
    expect(new OutboundPolicy(entries).grantsEverything).toBe(expected);
  });
});

describe('properties', () => {
  const label = fc
    .stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/)
    // A last label that is all digits or 0x-hex makes WHATWG parse the host as IPv4.
    .filter((l) => !/^(\d+|0x[0-9a-f]*)$/.test(l));
  const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
  const port = fc.integer({ min: 1, max: 65_535 });
  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));

  it('an exact entry allows its own URL, and *. allows exactly the strict subdomains', () => {
    fc.assert(
      fc.property(name, label, port, (host, sub, p) => {
        const exact = new OutboundPolicy([`https://${host}:${p}`]);
        expect(exact.checkUrl(new URL(`https://${host}:${p}/x`)).allowed).toBe(true);
        expect(exact.checkUrl(new URL(`https://${sub}.${host}:${p}/x`)).allowed).toBe(false);
        const wild = new OutboundPolicy([`https://*.${host}:${p}`]);
        expect(wild.checkUrl(new URL(`https://${sub}.${host}:${p}/`)).allowed).toBe(true);
        expect(wild.checkUrl(new URL(`https://${host}:${p}/`)).allowed).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('a port range allows exactly the ports inside it', () => {
    fc.assert(
      fc.property(port, port, port, (a, b, p) => {
        const [from, to] = a <= b ? [a, b] : [b, a];
        const policy = new OutboundPolicy([`http://h.test:${from}-${to}`]);
        expect(policy.checkHostPort('http', 'h.test', p).allowed).toBe(p >= from && p <= to);
      }),
      { numRuns: 300 },
    );
  });

  it('a CIDR contains an IPv4 address exactly when their first bits agree', () => {
    fc.assert(
      fc.property(v4, v4, fc.integer({ min: 0, max: 32 }), (net, addr, len) => {
        const bits = (a: string) =>
          a
            .split('.')
            .map((x) => Number(x).toString(2).padStart(8, '0'))
            .join('');
        const policy = new OutboundPolicy([`tcp://${net}/${len}:*`]);
        const expected = bits(net).slice(0, len) === bits(addr).slice(0, len);
        expect(policy.checkHostPort('tcp', addr, 1).allowed).toBe(expected);
        // The same address written as IPv4-mapped IPv6 gets the same answer.
        expect(policy.checkHostPort('tcp', `::ffff:${addr}`, 1).allowed).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('non-public addresses are refused under *://*:*, public ones allowed', () => {
    const policy = new OutboundPolicy(['*://*:*']);
    fc.assert(
      fc.property(v4, (addr) => {
        const v = policy.checkAddress(new URL('http://h.test/'), addr, 4);
        expect(v.allowed).toBe(classifyAddress(addr) === 'public');
      }),
      { numRuns: 300 },
    );
  });

  it('parseAllowEntry throws only AllowEntryError, on any string', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        try {
          parseAllowEntry(s);
        } catch (err) {
          expect(err).toBeInstanceOf(AllowEntryError);
        }
        try {
          parseAllowEntry(`http://${s}`);
        } catch (err) {
          expect(err).toBeInstanceOf(AllowEntryError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
