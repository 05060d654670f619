/**
 * The outbound socket policy of a WASIX instance, without a network: which addresses `connect`
 * may reach (entries naming the address, or names `resolve` answered, with every non-public
 * address needing an entry of its own), which names `resolve` answers, and what the kernel's
 * `sock_connect` and `resolve` calls answer and report when the policy refuses. A resolver that
 * answers from a table stands in for DNS; real connections are in
 * test/integration/sock-connect.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  OutboundSockets,
  type ConnectDenial,
  type ResolvedAddress,
} from '../../host/wasix/outbound.ts';
import { kernelHarness } from '../helpers/kernel.ts';

const ACCES = 2;
const CONNREFUSED = 14;

const DNS: Record<string, ResolvedAddress[]> = {
  'db.svc.test': [{ address: '203.0.113.7', family: 4 }],
  'cache.svc.test': [{ address: '10.0.0.5', family: 4 }],
  'meta.svc.test': [{ address: '169.254.169.254', family: 4 }],
  'v6.svc.test': [
    { address: '2001:db8::1', family: 6 },
    { address: '::ffff:10.0.0.9', family: 6 },
  ],
};

function outbound(allow: string[]): OutboundSockets {
  return new OutboundSockets(allow, async (name) => {
    const found = DNS[name];
    if (found === undefined) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return found;
  });
}

describe('OutboundSockets: the connect check', () => {
  it('allows an address an entry names, and nothing else before a resolve', () => {
    const o = outbound(['tcp://127.0.0.1:6379', 'tcp://*.svc.test:5000-5010']);
    expect(o.check('127.0.0.1', 6379)).toMatchObject({
      allowed: true,
      rule: 'tcp://127.0.0.1:6379',
    });
    expect(o.check('127.0.0.1', 6380).allowed).toBe(false);
    // A public address no entry names: the name grant does not cover it until resolved.
    expect(o.check('203.0.113.7', 5005)).toMatchObject({ allowed: false });
  });

  it('allows the addresses of a granted name, on the granted ports', async () => {
    const o = outbound(['tcp://*.svc.test:5000-5010']);
    expect(o.mayResolve('db.svc.test', 0).allowed).toBe(true);
    await o.resolve('db.svc.test');
    expect(o.check('203.0.113.7', 5005)).toMatchObject({
      allowed: true,
      rule: 'tcp://*.svc.test:5000-5010',
    });
    expect(o.check('203.0.113.7', 5011).allowed).toBe(false);
  });

  it('refuses a private or metadata address a granted name resolves to, unless it is granted', async () => {
    const o = outbound(['tcp://*.svc.test:*', 'tcp://*:*']);
    await o.resolve('cache.svc.test');
    await o.resolve('meta.svc.test');
    const v = o.check('10.0.0.5', 6379);
    expect(v.allowed).toBe(false);
    expect(v).toMatchObject({ rule: 'tcp://*.svc.test:*' });
    expect(!v.allowed && v.reason).toMatch(
      /cache\.svc\.test resolved to 10\.0\.0\.5, which is a private address/,
    );
    expect(o.check('169.254.169.254', 80)).toMatchObject({ allowed: false });

    const granted = outbound(['tcp://*.svc.test:*', 'tcp://10.0.0.0/8:6379']);
    await granted.resolve('cache.svc.test');
    expect(granted.check('10.0.0.5', 6379)).toMatchObject({
      allowed: true,
      rule: 'tcp://10.0.0.0/8:6379',
    });
    expect(granted.check('10.0.0.5', 6380).allowed).toBe(false);
  });

  it('keeps IPv6 answers apart, and judges an IPv4-mapped one as IPv4', async () => {
    const o = outbound(['tcp://v6.svc.test:443']);
    await o.resolve('v6.svc.test');
    expect(o.check('2001:db8::1', 443).allowed).toBe(true);
    expect(o.check('2001:0db8:0:0:0:0:0:1', 443).allowed).toBe(true);
    expect(o.check('::ffff:a00:9', 443).allowed).toBe(false); // 10.0.0.9: private
  });

  it('answers resolve only for names some entry allows', () => {
    const o = outbound(['tcp://db.svc.test:5432', 'tcp://10.0.0.0/8:*']);
    expect(o.mayResolve('db.svc.test', 0).allowed).toBe(true);
    expect(o.mayResolve('db.svc.test', 5432).allowed).toBe(true);
    expect(o.mayResolve('db.svc.test', 5433).allowed).toBe(false);
    const v = o.mayResolve('evil.example', 0);
    expect(!v.allowed && v.reason).toBe(
      'resolve "evil.example": no socket grant allows this name (granted: tcp://db.svc.test:5432, tcp://10.0.0.0/8:*)',
    );
    expect(outbound([]).mayResolve('db.svc.test', 0)).toMatchObject({
      allowed: false,
      reason: 'resolve "db.svc.test": no outbound sockets are granted',
    });
    // Entries for other schemes grant nothing to sockets.
    expect(outbound(['https://db.svc.test']).mayResolve('db.svc.test', 0).allowed).toBe(false);
  });
});

function setup(allow: string[], listenPorts = [80]) {
  const denied: ConnectDenial[] = [];
  const { k, view, u8, call, addr } = kernelHarness({
    listenPorts: new Set(listenPorts),
    outbound: outbound(allow),
    onConnectDenied: (d) => denied.push(d),
  });
  const socket = (): number => {
    expect(call('sock_open', 1, 1, 6, 100)).toBe(0);
    return view.getUint32(100, true);
  };
  /** `resolve(name, port)` into 8 addr_ip slots at 2000; the count at 1996. */
  const resolve = (name: string, port = 0) => {
    const bytes = new TextEncoder().encode(name);
    u8.set(bytes, 3000);
    return call('resolve', 3000, bytes.length, port, 2000, 8, 1996);
  };
  const resolved = (): string[] =>
    Array.from({ length: view.getUint32(1996, true) }, (_slot, i) => {
      const p = 2000 + i * 18;
      const tag = view.getUint8(p);
      if (tag === 1) return Array.from(u8.slice(p + 2, p + 6)).join('.');
      const groups = Array.from({ length: 8 }, (_group, j) => view.getUint16(p + 2 + 2 * j, false));
      return groups.map((g) => g.toString(16)).join(':');
    });
  return { k, call, socket, addr, resolve, resolved, denied };
}

describe('WASIX kernel: sock_connect and resolve under the socket grants', () => {
  it('refuses an address no entry allows with EACCES, and reports why', () => {
    const t = setup(['tcp://10.1.2.3:5432']);
    expect(t.call('sock_connect', t.socket(), t.addr(5432, [10, 1, 2, 4]))).toBe(ACCES);
    expect(t.denied).toEqual([
      {
        op: 'connect',
        host: '10.1.2.4',
        port: 5432,
        reason: 'tcp://10.1.2.4:5432: no allowlist entry matches (tcp://10.1.2.3:5432)',
      },
    ]);
  });

  it('resolves a granted name into addr_ip entries, and refuses its private address', async () => {
    const t = setup(['tcp://*.svc.test:6379']);
    expect(await t.resolve('cache.svc.test')).toBe(0);
    expect(t.resolved()).toEqual(['10.0.0.5']);
    expect(t.call('sock_connect', t.socket(), t.addr(6379, [10, 0, 0, 5]))).toBe(ACCES);
    expect(t.denied[0]).toMatchObject({
      op: 'connect',
      host: '10.0.0.5',
      port: 6379,
      rule: 'tcp://*.svc.test:6379',
    });
    expect(t.denied[0]!.reason).toMatch(
      /cache\.svc\.test resolved to 10\.0\.0\.5, which is a private/,
    );
  });

  it('answers resolve with EACCES for a name no entry allows, without looking it up', () => {
    const t = setup(['tcp://db.svc.test:5432']);
    expect(t.resolve('cache.svc.test', 6379)).toBe(ACCES);
    expect(t.denied).toEqual([
      {
        op: 'resolve',
        host: 'cache.svc.test',
        port: 6379,
        reason: 'tcp://cache.svc.test:6379: no allowlist entry matches (tcp://db.svc.test:5432)',
      },
    ]);
  });

  it('resolves localhost and IP literals without a grant; a failed lookup is hostunreach', async () => {
    const t = setup(['tcp://*.svc.test:*']);
    expect(await t.resolve('localhost')).toBe(0);
    expect(t.resolved()).toEqual(['127.0.0.1']);
    expect(t.resolve('192.0.2.9')).toBe(0);
    expect(t.resolved()).toEqual(['192.0.2.9']);
    expect(await t.resolve('v6.svc.test')).toBe(0);
    expect(t.resolved()).toEqual(['2001:db8:0:0:0:0:0:1', '0:0:0:0:0:ffff:a00:9']);
    expect(await t.resolve('gone.svc.test')).toBe(23);
    expect(t.denied).toEqual([]);
  });

  it("keeps loopback for the instance's own listeners: its own port not yet listening is ECONNREFUSED", () => {
    const t = setup([], [80, 8080]);
    expect(t.call('sock_connect', t.socket(), t.addr(8080, [127, 0, 0, 1]))).toBe(CONNREFUSED);
    expect(t.denied).toEqual([]);
    // A loopback port it could never listen on is outbound, and not granted.
    expect(t.call('sock_connect', t.socket(), t.addr(6379, [127, 0, 0, 1]))).toBe(ACCES);
    expect(t.denied).toMatchObject([{ op: 'connect', host: '127.0.0.1', port: 6379 }]);
  });
});
