/**
 * Outbound network policy: which hosts an actor may reach, from the allowlist its manifest grants
 * (`capabilities.outboundHttp`, and `tcp://` entries for sockets).
 *
 * The model:
 * - Entries follow Spin's `allowed_outbound_hosts` grammar (below). An empty list denies all.
 * - A request is checked twice. First its scheme, host and port, before any DNS
 *   (`checkUrl`, `checkHostPort`). Then every address its host resolves to and that is actually
 *   connected (`checkAddress`): the client hands the socket only addresses that passed, so a DNS
 *   answer that changes between the two checks (rebinding) gains nothing.
 * - Loopback, link-local, private, unspecified, metadata, multicast and reserved addresses are
 *   refused even when a name or a wildcard allows the URL, `*://*:*` included, unless an entry
 *   names that address itself (an IP literal, or a CIDR that contains it, with the scheme and port
 *   matching). A wildcard is written for "the internet"; reaching the host's own loopback, its
 *   network or the cloud metadata service through one is the classic SSRF, so that takes an entry
 *   that says so.
 * - An IPv4 address written as IPv6 (`::ffff:127.0.0.1`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`)
 *   is judged as the IPv4 address it carries.
 *
 * Grammar: `scheme://host[:port]`, with
 * - scheme: required; `*` for any;
 * - host: a name (case-insensitive, exact), `*` (any host), `*.example.com` (any subdomain at any
 *   depth, not the apex), an IPv4 literal, an IPv6 literal in brackets, or a CIDR (`10.0.0.0/8`,
 *   `[fd00::]/8`);
 * - port: a number, `*` (any), or an inclusive range `8000-8999`; left out, the scheme's default
 *   port (http 80, https 443; with `*` as the scheme, the default port of the URL's scheme); other
 *   schemes (`tcp://`) have no default and need a port.
 * No path (a lone trailing `/` is accepted), query, fragment or userinfo.
 *
 * This file imports nothing of the project, so manifest validation can use `parseAllowEntry` too.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';

/** Default ports of the schemes that have one; an entry without a port means this port. */
export const DEFAULT_PORTS: Readonly<Record<string, number>> = Object.freeze({
  http: 80,
  https: 443,
});

/** An IP network: `prefix` leading bits of `base` (an address is a network of its full width). */
export interface IpNet {
  version: 4 | 6;
  base: bigint;
  prefix: number;
}

/** Which hosts an entry allows. */
export type HostMatcher =
  | { kind: 'any' }
  | { kind: 'name'; name: string }
  /** `*.example.com`: `suffix` is `.example.com`. */
  | { kind: 'subdomain'; suffix: string }
  /** An IP literal (full-width prefix) or a CIDR. */
  | { kind: 'ip'; net: IpNet };

/** Which ports an entry allows: the scheme's default, any, or an inclusive range. */
export type PortMatcher =
  { kind: 'default' } | { kind: 'any' } | { kind: 'range'; from: number; to: number };

/** One parsed allowlist entry. */
export interface AllowRule {
  /** The entry as written (trimmed). */
  raw: string;
  /** `*`, or a lowercase scheme. */
  scheme: string;
  host: HostMatcher;
  port: PortMatcher;
}

/** A bad allowlist entry: `entry` as written, `problem` what is wrong with it. */
export class AllowEntryError extends Error {
  readonly entry: string;
  readonly problem: string;
  constructor(entry: string, problem: string) {
    super(`invalid outbound host ${JSON.stringify(entry)}: ${problem}`);
    this.entry = entry;
    this.problem = problem;
    this.name = new.target.name;
  }
}

/** The answer of a check. A denial may name the rule that allowed the URL but not the address. */
export type Verdict =
  { allowed: true; rule: string } | { allowed: false; reason: string; rule?: string };

/** What an address is, for the refusal of non-public ones. */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'link-local'
  | 'private'
  | 'unspecified'
  | 'metadata'
  | 'multicast'
  | 'reserved';

interface Ip {
  version: 4 | 6;
  value: bigint;
}

const MAX_PORT = 65_535;
/** Entries a denial's message lists. */
const MAX_LISTED = 5;
const SCHEME_RE = /^[a-z][a-z0-9+.-]*$/;
/** DNS labels as resolvers take them; `_` is common in service names. */
const NAME_RE = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
/** A last label that the URL parser (and inet_aton) would read as part of an IPv4 address. */
const NUMERIC_LABEL_RE = /(?:^|\.)(?:0x[0-9a-f]*|\d+)$/;

function v4Value(text: string): bigint {
  let v = 0n;
  for (const part of text.split('.')) v = (v << 8n) | BigInt(Number(part));
  return v;
}

function v6Value(text: string): bigint {
  let s = text;
  if (s.includes('.')) {
    // A dotted IPv4 tail (::ffff:1.2.3.4) is the last two groups.
    const at = s.lastIndexOf(':');
    const v4 = v4Value(s.slice(at + 1));
    s = `${s.slice(0, at + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? left
      : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(Number.parseInt(g, 16));
  return v;
}

/** An IPv4 or IPv6 address (no brackets; a zone id is dropped); IPv4-mapped IPv6 becomes IPv4. */
function parseIp(text: string): Ip | undefined {
  if (isIPv4(text)) return { version: 4, value: v4Value(text) };
  const zone = text.indexOf('%');
  const s = zone >= 0 ? text.slice(0, zone) : text;
  if (!isIPv6(s)) return undefined;
  const v = v6Value(s);
  if (v >> 32n === 0xffffn) return { version: 4, value: v & 0xffff_ffffn };
  return { version: 6, value: v };
}

function width(version: 4 | 6): number {
  return version === 4 ? 32 : 128;
}

function contains(net: IpNet, ip: Ip): boolean {
  if (net.version !== ip.version) return false;
  const shift = BigInt(width(net.version) - net.prefix);
  return ip.value >> shift === net.base >> shift;
}

function cidr(text: string): IpNet {
  const [addr = '', len = ''] = text.split('/');
  const ip = parseIp(addr);
  if (ip === undefined) throw new Error(`bad built-in network ${text}`);
  return { version: ip.version, base: ip.value, prefix: Number(len) };
}

/** First match wins: metadata before link-local and private. */
function table(rows: [string, AddressClass][]): readonly [IpNet, AddressClass][] {
  return rows.map(([net, c]) => [cidr(net), c]);
}

const SPECIAL_V4 = table([
  ['169.254.169.254/32', 'metadata'],
  ['0.0.0.0/8', 'unspecified'], // "this network": Linux connects 0.0.0.0 to the local host
  ['127.0.0.0/8', 'loopback'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'private'], // shared address space (RFC 6598); some clouds' metadata lives here
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'reserved'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'], // and 255.255.255.255
]);

const SPECIAL_V6 = table([
  ['fd00:ec2::254/128', 'metadata'],
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::/96', 'reserved'], // IPv4-compatible (deprecated)
  ['100::/64', 'reserved'], // discard-only
  ['fc00::/7', 'private'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'private'], // site-local (deprecated)
  ['ff00::/8', 'multicast'],
]);

const NAT64 = cidr('64:ff9b::/96');
const SIX_TO_FOUR = cidr('2002::/16');

function classify(ip: Ip): AddressClass {
  if (ip.version === 6) {
    // Addresses that carry an IPv4 address reach it through a translator: judge that address.
    if (contains(NAT64, ip)) return classify({ version: 4, value: ip.value & 0xffff_ffffn });
    if (contains(SIX_TO_FOUR, ip)) {
      return classify({ version: 4, value: (ip.value >> 80n) & 0xffff_ffffn });
    }
  }
  for (const [net, c] of ip.version === 4 ? SPECIAL_V4 : SPECIAL_V6) {
    if (contains(net, ip)) return c;
  }
  return 'public';
}

/** What `address` is (IPv4, or IPv6 with or without brackets); undefined when it is not an IP. */
export function classifyAddress(address: string): AddressClass | undefined {
  const ip = parseIp(stripBrackets(address));
  return ip === undefined ? undefined : classify(ip);
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** A name from an entry, as `new URL` would give it: IDNA, lowercase, no trailing dot. */
function ruleName(entry: string, text: string): string {
  const ascii = /^[\x21-\x7e]*$/.test(text) ? text.toLowerCase() : domainToASCII(text);
  const name = ascii.endsWith('.') ? ascii.slice(0, -1) : ascii;
  if (name === '' || !NAME_RE.test(name)) {
    throw new AllowEntryError(entry, `${JSON.stringify(text)} is not a valid host name`);
  }
  if (NUMERIC_LABEL_RE.test(name)) {
    throw new AllowEntryError(
      entry,
      `${JSON.stringify(text)} is neither a host name nor an IPv4 address in dotted-decimal form`,
    );
  }
  return name;
}

/** `prefix` comes only after an IP literal (the caller's grammar). */
function parseHost(entry: string, text: string, prefix: string | undefined): HostMatcher {
  const bracketed = text.startsWith('[');
  const inner = bracketed ? text.slice(1, -1) : text;
  if (bracketed && (inner.includes('%') || !isIPv6(inner))) {
    throw new AllowEntryError(entry, `${text} is not an IPv6 address`);
  }
  const ip = bracketed || isIPv4(inner) ? parseIp(inner) : undefined;
  if (ip !== undefined) {
    // An IPv4-mapped literal parses as IPv4; a prefix written for the IPv6 form shrinks with it.
    const written = bracketed ? 128 : 32;
    let len = written;
    if (prefix !== undefined) {
      if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > written) {
        throw new AllowEntryError(entry, `CIDR prefix /${prefix} is not in 0-${written}`);
      }
      len = Number(prefix);
    }
    if (bracketed && ip.version === 4) {
      if (len < 96) {
        throw new AllowEntryError(entry, `${text}/${len} mixes IPv4-mapped and other addresses`);
      }
      len -= 96;
    }
    // Host bits past the prefix are ignored, as Spin does: 10.0.0.1/8 is 10.0.0.0/8.
    const shift = BigInt(width(ip.version) - len);
    return {
      kind: 'ip',
      net: { version: ip.version, base: (ip.value >> shift) << shift, prefix: len },
    };
  }
  if (text === '') throw new AllowEntryError(entry, 'the host is empty');
  if (text === '*') return { kind: 'any' };
  if (text.startsWith('*.')) {
    const domain = text.slice(2);
    if (domain.includes('*')) {
      throw new AllowEntryError(entry, 'a wildcard may only be the first label (*.example.com)');
    }
    return { kind: 'subdomain', suffix: `.${ruleName(entry, domain)}` };
  }
  if (text.includes('*')) {
    throw new AllowEntryError(
      entry,
      'a wildcard may only be the whole host (*) or the first label (*.example.com)',
    );
  }
  return { kind: 'name', name: ruleName(entry, text) };
}

function portNumber(entry: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > MAX_PORT) {
    throw new AllowEntryError(
      entry,
      `port ${JSON.stringify(text)} is not a number in 1-${MAX_PORT}`,
    );
  }
  return Number(text);
}

function parsePort(entry: string, scheme: string, text: string | undefined): PortMatcher {
  if (text === undefined) {
    if (scheme === '*' || DEFAULT_PORTS[scheme] !== undefined) return { kind: 'default' };
    throw new AllowEntryError(
      entry,
      `a port is required for scheme "${scheme}" (only ${Object.keys(DEFAULT_PORTS).join(' and ')} have a default port): write e.g. ${scheme}://host:1234 or ${scheme}://host:*`,
    );
  }
  if (text === '*') return { kind: 'any' };
  if (text.includes('..')) {
    throw new AllowEntryError(entry, `write a port range as 8000-8999 (both ends included)`);
  }
  const dash = text.indexOf('-');
  if (dash < 0) {
    const p = portNumber(entry, text);
    return { kind: 'range', from: p, to: p };
  }
  const from = portNumber(entry, text.slice(0, dash));
  const to = portNumber(entry, text.slice(dash + 1));
  if (from > to) throw new AllowEntryError(entry, `port range ${text} is empty`);
  return { kind: 'range', from, to };
}

/**
 * Parse one allowlist entry (`scheme://host[:port]`, Spin's grammar; see the file's comment).
 * Throws `AllowEntryError`, whose message names the entry and what is wrong.
 */
export function parseAllowEntry(entry: string): AllowRule {
  const raw = entry.trim();
  if (raw === '') throw new AllowEntryError(entry, 'the entry is empty');
  if (/\s/.test(raw)) throw new AllowEntryError(entry, 'it contains whitespace');
  const sep = raw.indexOf('://');
  if (sep < 0) {
    throw new AllowEntryError(
      entry,
      `the scheme is missing: write e.g. https://${raw} (or *://${raw} for any scheme)`,
    );
  }
  const schemeText = raw.slice(0, sep).toLowerCase();
  if (schemeText === '') {
    throw new AllowEntryError(entry, 'the scheme is empty: write *:// for any scheme');
  }
  if (schemeText !== '*' && !SCHEME_RE.test(schemeText)) {
    throw new AllowEntryError(entry, `scheme "${schemeText}" is not a valid scheme name`);
  }
  const rest = raw.slice(sep + 3);
  for (const [ch, what] of [
    ['@', 'userinfo'],
    ['?', 'a query'],
    ['#', 'a fragment'],
  ] as const) {
    if (rest.includes(ch)) throw new AllowEntryError(entry, `${what} is not allowed`);
  }

  // host: [v6] or up to ':' or '/'; then /prefix (CIDR), :port, and at most a trailing '/'.
  let hostText: string;
  let after: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw new AllowEntryError(entry, '"[" is not closed');
    hostText = rest.slice(0, close + 1);
    after = rest.slice(close + 1);
  } else {
    const end = rest.search(/[:/]/);
    hostText = end < 0 ? rest : rest.slice(0, end);
    after = end < 0 ? '' : rest.slice(end);
    const authority = rest.split('/')[0] ?? '';
    if (isIPv6(authority) || isIPv6(authority.slice(0, authority.lastIndexOf(':')))) {
      throw new AllowEntryError(entry, `IPv6 addresses go in brackets: [${authority}]`);
    }
  }
  let prefix: string | undefined;
  const cidrMatch = hostText.startsWith('[') || isIPv4(hostText) ? /^\/([^:/]+)/.exec(after) : null;
  if (cidrMatch !== null) {
    prefix = cidrMatch[1];
    after = after.slice(cidrMatch[0].length);
  }
  let portText: string | undefined;
  if (after.startsWith(':')) {
    const slash = after.indexOf('/');
    portText = slash < 0 ? after.slice(1) : after.slice(1, slash);
    after = slash < 0 ? '' : after.slice(slash);
    if (portText === '') throw new AllowEntryError(entry, 'the port after ":" is empty');
  }
  if (after !== '' && after !== '/') {
    throw new AllowEntryError(
      entry,
      after.startsWith('/') ? `a path (${after}) is not allowed` : `unexpected "${after}"`,
    );
  }
  return {
    raw,
    scheme: schemeText,
    host: parseHost(entry, hostText, prefix),
    port: parsePort(entry, schemeText, portText),
  };
}

type Target = { kind: 'ip'; ip: Ip } | { kind: 'name'; name: string };

/**
 * A host to check, from a URL's hostname or a socket's host: an IP (brackets optional), or a DNS
 * name. Anything else (percent escapes, a numeric last label that resolvers read as IPv4) is
 * undefined: it matches nothing, since what the checker sees must be what is connected.
 */
function target(host: string): Target | undefined {
  const h = stripBrackets(host.toLowerCase());
  const ip = parseIp(h);
  if (ip !== undefined) return { kind: 'ip', ip };
  const name = h.endsWith('.') ? h.slice(0, -1) : h;
  if (!NAME_RE.test(name) || NUMERIC_LABEL_RE.test(name)) return undefined;
  return { kind: 'name', name };
}

function hostMatches(m: HostMatcher, t: Target): boolean {
  switch (m.kind) {
    case 'any':
      return true;
    case 'name':
      return t.kind === 'name' && t.name === m.name;
    case 'subdomain':
      return t.kind === 'name' && t.name.length > m.suffix.length && t.name.endsWith(m.suffix);
    case 'ip':
      return t.kind === 'ip' && contains(m.net, t.ip);
  }
}

function portMatches(m: PortMatcher, scheme: string, port: number | undefined): boolean {
  switch (m.kind) {
    case 'any':
      return true;
    case 'default':
      return port !== undefined && port === DEFAULT_PORTS[scheme];
    case 'range':
      return port !== undefined && port >= m.from && port <= m.to;
  }
}

function describe(scheme: string, host: string, port: number | undefined): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${scheme}://${h}${port === undefined ? '' : `:${port}`}`;
}

/** Entries for a denial's message: the first few, then a count. */
function listed(rules: readonly AllowRule[]): string {
  const shown = rules.slice(0, MAX_LISTED).map((r) => r.raw);
  const more = rules.length - shown.length;
  return more > 0 ? `${shown.join(', ')} and ${more} more` : shown.join(', ');
}

function effectivePort(url: URL): number | undefined {
  return url.port === '' ? DEFAULT_PORTS[urlScheme(url)] : Number(url.port);
}

function urlScheme(url: URL): string {
  return url.protocol.slice(0, -1).toLowerCase();
}

/** An actor's outbound allowlist, parsed once; checks are pure and synchronous. */
export class OutboundPolicy {
  readonly rules: readonly AllowRule[];
  /** True when some entry allows everything (`*://*:*`), for a warning on deploy. */
  readonly grantsEverything: boolean;

  /** Parse every entry; throws `AllowEntryError` on the first bad one. */
  constructor(entries: readonly string[]) {
    this.rules = Object.freeze(entries.map(parseAllowEntry));
    this.grantsEverything = this.rules.some(
      (r) => r.scheme === '*' && r.host.kind === 'any' && r.port.kind === 'any',
    );
  }

  /** Scheme, host and port of a URL against the rules (before DNS). */
  checkUrl(url: URL): Verdict {
    return this.checkHostPort(urlScheme(url), url.hostname, effectivePort(url));
  }

  /**
   * A host and port for `scheme` (e.g. `tcp` for a socket) against the rules, before DNS. `host` is
   * a name or an IP (IPv6 with or without brackets). Without a port, only `*` ports match.
   */
  checkHostPort(scheme: string, host: string, port: number | undefined): Verdict {
    const s = scheme.toLowerCase();
    const what = describe(s, host, port);
    const t = target(host);
    if (t === undefined)
      return { allowed: false, reason: `${what}: "${host}" is not a valid host` };
    const rule = this.#match(s, t, port);
    if (rule !== undefined) return { allowed: true, rule: rule.raw };
    return {
      allowed: false,
      reason:
        this.rules.length === 0
          ? `${what}: the allowlist is empty, so no outbound access is granted`
          : `${what}: no allowlist entry matches (${listed(this.rules)})`,
    };
  }

  /**
   * A resolved address of url's host, about to be connected: `checkUrl` must allow the URL, and an
   * address that is not public (loopback, link-local, private, unspecified, metadata, multicast,
   * reserved) needs a rule naming it (IP literal or CIDR, scheme and port matching). The address's
   * own form decides its family (an IPv4-mapped IPv6 address is IPv4), whatever `_family` says.
   */
  checkAddress(url: URL, address: string, _family: 4 | 6): Verdict {
    return this.checkHostPortAddress(urlScheme(url), url.hostname, effectivePort(url), address);
  }

  /** `checkAddress` for a socket: `address` is what `host` resolved to. */
  checkHostPortAddress(
    scheme: string,
    host: string,
    port: number | undefined,
    address: string,
  ): Verdict {
    const byName = this.checkHostPort(scheme, host, port);
    if (!byName.allowed) return byName;
    const ip = parseIp(stripBrackets(address));
    if (ip === undefined) {
      return { allowed: false, reason: `"${address}" is not an IP address`, rule: byName.rule };
    }
    const c = classify(ip);
    if (c === 'public') return byName;
    const s = scheme.toLowerCase();
    const rule = this.rules.find(
      (r) =>
        r.host.kind === 'ip' &&
        (r.scheme === '*' || r.scheme === s) &&
        contains(r.host.net, ip) &&
        portMatches(r.port, s, port),
    );
    if (rule !== undefined) return { allowed: true, rule: rule.raw };
    const resolved = stripBrackets(host.toLowerCase()) === stripBrackets(address.toLowerCase());
    return {
      allowed: false,
      rule: byName.rule,
      reason: `${resolved ? address : `${host} resolved to ${address}, which`} is a ${c} address: only an entry naming it (an IP literal or a CIDR) allows it, e.g. ${describe(s, address, port)}`,
    };
  }

  #match(scheme: string, t: Target, port: number | undefined): AllowRule | undefined {
    return this.rules.find(
      (r) =>
        (r.scheme === '*' || r.scheme === scheme) &&
        hostMatches(r.host, t) &&
        portMatches(r.port, scheme, port),
    );
  }
}
