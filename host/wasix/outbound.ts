/**
 * Outbound TCP for a WASIX instance: the `capabilities.sockets.connect` grants, the names the
 * guest may resolve, and real connections bridged to guest sockets.
 *
 * The model (the same as outbound HTTP, `host/outbound/http.ts`):
 * - Entries are Spin-grammar allowlist entries (`tcp://db.internal:5432`, `tcp://10.0.0.0/8:*`,
 *   `tcp://*.svc.test:5000-5010`); an empty list denies everything.
 * - A guest connects to an address, never to a name (a WASIX `addr_port` holds no name). An
 *   address is allowed when an entry names it (an IP literal or a CIDR), or when the guest got it
 *   from `resolve` for a name an entry allows, and the address passes `checkHostPortAddress`:
 *   loopback, link-local, private, metadata (169.254.169.254) and other non-public addresses
 *   need an entry naming the address itself, whatever name led to them.
 * - The address checked is the address connected: the host resolves the name itself, remembers
 *   which names gave which addresses, and checks the address the guest passes to `connect`.
 *   A DNS answer that changes later (rebinding) only ever yields addresses that are checked again.
 * - `resolve` answers only names that some entry could allow (on the port hint when there is
 *   one), so the guest cannot use the host's resolver to probe names it was not granted.
 *   `localhost` is the instance's own loopback (127.0.0.1) and needs no grant.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { connect as netConnect, isIP, type Socket as NetSocket } from 'node:net';
import { OutboundPolicy, type Verdict } from '../../lattice/index.ts';
import { NetErrno } from './abi.ts';
import type { SockAddr, StreamEnd } from './net.ts';

/** The scheme socket grants are written with. */
export const SOCKET_SCHEME = 'tcp';
/** Names remembered for the connect check (oldest forgotten first). */
const MAX_REMEMBERED_ADDRESSES = 4096;
/** Entries a refusal lists. */
const MAX_LISTED = 5;
/** Bytes from the network queued for the guest before the socket stops reading. */
const PAUSE_READING_BYTES = 4 * 1024 * 1024;
/** ...and reading resumes once the guest has taken the queue below this. */
const RESUME_READING_BYTES = 1024 * 1024;

/** A refused connect or resolve, for the host's log. */
export interface ConnectDenial {
  op: 'connect' | 'resolve';
  /** The address (connect) or name (resolve) the guest asked for. */
  host: string;
  /** The port connected to, or the port hint of a resolve (0: none). */
  port: number;
  reason: string;
  /** The entry that allowed the name but not the address, if any. */
  rule?: string;
}

/** A resolved address, as `dns.lookup` gives it. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

export type Lookup = (name: string) => Promise<ResolvedAddress[]>;

/** A connection being opened: its outcome (0 or a WASIX errno), and a way to give up on it. */
export interface PendingConnect {
  result: Promise<number>;
  abort(): void;
}

const defaultLookup: Lookup = (name) => dnsLookup(name, { all: true, order: 'verbatim' });

/** Node's error codes for a failed connect or a broken connection, as WASIX errnos. */
const ERRNO_BY_CODE: Readonly<Record<string, number>> = {
  ECONNREFUSED: NetErrno.connrefused,
  ECONNRESET: NetErrno.connreset,
  ECONNABORTED: NetErrno.connaborted,
  ETIMEDOUT: NetErrno.timedout,
  EHOSTUNREACH: NetErrno.hostunreach,
  EHOSTDOWN: NetErrno.hostunreach,
  ENETUNREACH: 40,
  ENETDOWN: 38,
  EADDRNOTAVAIL: NetErrno.addrnotavail,
  EADDRINUSE: NetErrno.addrinuse,
  EAFNOSUPPORT: NetErrno.afnosupport,
  EPIPE: NetErrno.pipe,
  EACCES: 2,
  EPERM: 63,
  EMFILE: 33,
  ENFILE: 41,
  ENOBUFS: 42,
};
const IO = 29;

/** A WASIX errno for a Node socket error (`io` when it has no closer match). */
export function errnoOf(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  return (typeof code === 'string' ? ERRNO_BY_CODE[code] : undefined) ?? IO;
}

/** The text form of an address (IPv6 compressed, as `new URL` writes it). */
export function addressText(a: SockAddr): string {
  if (a.family === 1) return Array.from(a.addr).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((a.addr[i]! << 8) | a.addr[i + 1]!).toString(16));
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

/** Address bytes (network order) of an IPv4 or IPv6 literal; undefined for anything else. */
export function ipBytes(address: string): Uint8Array | undefined {
  const v = isIP(address);
  if (v === 4) return Uint8Array.from(address.split('.').map(Number));
  if (v !== 6) return undefined;
  // Canonical form first: a dotted IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const compressed = new URL(`http://[${address.replace(/%.*$/, '')}]`).hostname.slice(1, -1);
  const [head, tail] = compressed.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const words = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  words.slice(0, 8).forEach((w, i) => {
    const x = Number.parseInt(w, 16) || 0;
    out[2 * i] = x >> 8;
    out[2 * i + 1] = x & 0xff;
  });
  return out;
}

function canonicalAddress(address: string): string | undefined {
  const bytes = ipBytes(address);
  if (bytes === undefined) return undefined;
  return addressText({ family: bytes.length === 4 ? 1 : 2, addr: bytes, port: 0 });
}

/** The outbound sockets one instance was granted. */
export class OutboundSockets {
  readonly policy: OutboundPolicy;
  /** One policy per entry, to ask whether an entry allows a name on any of its ports. */
  readonly #single: { policy: OutboundPolicy; port: number }[];
  readonly #lookup: Lookup;
  /** Address → the names `resolve` gave it for (insertion order: oldest first). */
  readonly #names = new Map<string, Set<string>>();

  /** Throws `AllowEntryError` for a bad entry (manifests and the CLI check them first). */
  constructor(allow: readonly string[], lookup: Lookup = defaultLookup) {
    this.policy = new OutboundPolicy(allow);
    this.#lookup = lookup;
    this.#single = [];
    for (const r of this.policy.rules) {
      // A port the entry allows stands for all of them; an entry with the scheme's default port
      // allows no tcp port (tcp has none).
      if (r.port.kind === 'default') continue;
      const port = r.port.kind === 'any' ? 1 : r.port.from;
      this.#single.push({ policy: new OutboundPolicy([r.raw]), port });
    }
  }

  /** Whether `name` may be resolved: some entry allows it (on `port`, unless 0). */
  mayResolve(name: string, port: number): Verdict {
    if (port !== 0) return this.policy.checkHostPort(SOCKET_SCHEME, name, port);
    for (const s of this.#single) {
      const v = s.policy.checkHostPort(SOCKET_SCHEME, name, s.port);
      if (v.allowed) return v;
    }
    const rules = this.policy.rules.map((r) => r.raw);
    const granted =
      rules.length === 0
        ? 'no outbound sockets are granted'
        : `no socket grant allows this name (granted: ${rules.slice(0, MAX_LISTED).join(', ')}${rules.length > MAX_LISTED ? ` and ${rules.length - MAX_LISTED} more` : ''})`;
    return { allowed: false, reason: `resolve ${JSON.stringify(name)}: ${granted}` };
  }

  /**
   * Resolve `name` (which `mayResolve` allowed) and remember which addresses it gave, for
   * `check`. `localhost` is 127.0.0.1, without DNS. Rejects with the resolver's error.
   */
  async resolve(name: string): Promise<ResolvedAddress[]> {
    const lower = name.toLowerCase().replace(/\.$/, '');
    const found =
      lower === 'localhost' ? [{ address: '127.0.0.1', family: 4 }] : await this.#lookup(name);
    for (const a of found) this.#remember(a.address, name);
    return found;
  }

  #remember(address: string, name: string): void {
    const key = canonicalAddress(address);
    if (key === undefined) return;
    const names = this.#names.get(key) ?? new Set<string>();
    this.#names.delete(key);
    names.add(name);
    this.#names.set(key, names);
    if (this.#names.size > MAX_REMEMBERED_ADDRESSES) {
      this.#names.delete(this.#names.keys().next().value!);
    }
  }

  /**
   * May the guest connect to `address` (IPv4 or IPv6 text) on `port`? Allowed when an entry names
   * the address, or when a name it was resolved from is allowed and the address passes the
   * check of its class. A refusal says why, preferring the name's reason (which names the rule
   * that allowed the name but not the address) to "no entry matches" for the bare address.
   */
  check(address: string, port: number): Verdict {
    const direct = this.policy.checkHostPortAddress(SOCKET_SCHEME, address, port, address);
    if (direct.allowed) return direct;
    let refused: Verdict = direct;
    for (const name of this.#names.get(canonicalAddress(address) ?? address) ?? []) {
      const v = this.policy.checkHostPortAddress(SOCKET_SCHEME, name, port, address);
      if (v.allowed) return v;
      if (v.rule !== undefined || refused.rule === undefined) refused = v;
    }
    return refused;
  }

  /**
   * Open a real TCP connection to `address:port` (which `check` allowed) and bridge it to
   * `hostEnd`, the peer of the guest's `guestEnd`: bytes from the network queue at the guest
   * (reading pauses past 4 MiB unread), the guest's bytes go to the network (the guest's sends
   * wait while the kernel's send buffer is full), EOF and resets travel both ways. `result` is 0
   * once connected, or the errno of the failure (`timedout` after `timeoutMs`, when given).
   */
  connect(
    address: string,
    port: number,
    hostEnd: StreamEnd,
    guestEnd: StreamEnd,
    timeoutMs: number | undefined,
  ): PendingConnect {
    const sock = netConnect({ host: address, port, noDelay: true, allowHalfOpen: true });
    let settle!: (errno: number) => void;
    const result = new Promise<number>((resolve) => {
      let done = false;
      settle = (errno) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(errno);
      };
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              settle(NetErrno.timedout);
              sock.destroy();
            }, timeoutMs);
    });
    sock.once('connect', () => {
      const local = ipBytes(sock.localAddress ?? '');
      if (local !== undefined) {
        guestEnd.local = { family: local.length === 4 ? 1 : 2, addr: local, port: sock.localPort! };
      }
      bridge(sock, hostEnd, guestEnd);
      settle(0);
    });
    sock.on('error', (err) => settle(errnoOf(err)));
    sock.on('close', () => settle(NetErrno.connaborted));
    return {
      result,
      abort: () => {
        settle(NetErrno.connaborted);
        sock.destroy();
      },
    };
  }
}

/** Connect the streams of a connected `sock` to the guest's end; see `connect`. */
function bridge(sock: NetSocket, hostEnd: StreamEnd, guestEnd: StreamEnd): void {
  hostEnd.sink = {
    data(bytes) {
      // The kernel's buffer is full: the guest's bytes queue in `hostEnd` (its sends block at
      // the high-water mark) until the socket drains.
      if (!sock.write(bytes)) hostEnd.sinkPaused = true;
    },
    end(reset) {
      if (reset) sock.resetAndDestroy();
      else sock.end();
    },
  };
  sock.on('drain', () => hostEnd.resumeSink());
  guestEnd.onDrain = () => {
    if (sock.isPaused() && guestEnd.rxBytes < RESUME_READING_BYTES) sock.resume();
  };
  sock.on('data', (chunk: Buffer) => {
    hostEnd.send(new Uint8Array(chunk));
    if (guestEnd.rxBytes >= PAUSE_READING_BYTES) sock.pause();
  });
  // The peer finished sending: the guest reads what is queued, then EOF.
  sock.on('end', () => hostEnd.shutdownWrite());
  // A broken connection (reset, a keep-alive timeout): the guest's next read or write fails.
  sock.on('error', () => guestEnd.abort());
  sock.on('close', () => hostEnd.close());
}
