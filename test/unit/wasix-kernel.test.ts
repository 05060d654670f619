/**
 * The WASIX kernel's calls, driven the way a guest drives them: arguments are pointers into a
 * shared memory, results come back through it. Covers what the C fixtures don't reach: epoll
 * (level- and edge-triggered), event counters, pipes, poll_oneoff on sockets, loopback connect,
 * socket options and addresses, and the listen policy.
 */
import { describe, expect, it } from 'vitest';
import { kernelHarness } from '../helpers/kernel.ts';

const AGAIN = 6;
const ACCES = 2;

function setup(listenPorts = [80]) {
  const listened: number[] = [];
  const denied: number[] = [];
  const h = kernelHarness({
    listenPorts: new Set(listenPorts),
    onListen: (p) => listened.push(p),
    onDenied: (p) => denied.push(p),
  });
  const { view, u8, call, u32, addr } = h;
  /** One iovec at 2000 pointing at 3000..3000+len, with `text` in it. */
  const iov = (text: string | number): number => {
    const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : new Uint8Array(text);
    u8.set(bytes, 3000);
    view.setUint32(2000, 3000, true);
    view.setUint32(2004, bytes.length, true);
    return 2000;
  };
  const read = (n: number) => new TextDecoder().decode(u8.slice(3000, 3000 + n));
  const listener = (port = 80, flags = 0): number => {
    expect(call('sock_open', 1, 1 | flags, 0, 100)).toBe(0);
    const fd = u32(100);
    expect(call('sock_bind', fd, addr(port))).toBe(0);
    expect(call('sock_listen', fd, 16)).toBe(0);
    return fd;
  };
  return { ...h, iov, read, listener, listened, denied };
}

describe('WASIX kernel: sockets', () => {
  it('listens only on granted ports; others get EACCES and are reported', () => {
    const t = setup([80]);
    t.listener(80);
    expect(t.listened).toEqual([80]);
    t.call('sock_open', 1, 1, 6, 100);
    const fd = t.u32(100);
    t.call('sock_bind', fd, t.addr(8081));
    expect(t.call('sock_listen', fd, 16)).toBe(ACCES);
    expect(t.denied).toEqual([8081]);
    // A second listener on the same port is refused too.
    t.call('sock_open', 1, 1, 6, 100);
    const dup = t.u32(100);
    t.call('sock_bind', dup, t.addr(80));
    expect(t.call('sock_listen', dup, 16)).toBe(3); // addrinuse
  });

  it('masks SOCK_NONBLOCK out of the type and applies it', async () => {
    const t = setup();
    const lfd = t.listener(80, 0x4000);
    expect(t.call('fd_fdstat_get', lfd, 200)).toBe(0);
    expect(t.view.getUint8(200)).toBe(6); // socket_stream
    expect(t.view.getUint16(202, true) & 4).toBe(4); // nonblock
    expect(t.call('sock_accept_v2', lfd, 0, 104, 1200)).toBe(AGAIN);
    const client = t.k.connect(80)!;
    expect(t.call('sock_accept_v2', lfd, 0, 104, 1200)).toBe(0);
    const cfd = t.u32(104);
    // The peer address comes back with the port as a little-endian number.
    expect(t.view.getUint8(1200)).toBe(1);
    expect(t.view.getUint16(1202, true)).toBe(client.local.port);
    expect(Array.from(t.u8.slice(1204, 1208))).toEqual([127, 0, 0, 1]);
    // Accepted from a non-blocking listener: non-blocking too.
    expect(t.call('fd_read', cfd, t.iov(64), 1, 108)).toBe(AGAIN);
    client.send(new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'));
    expect(t.call('fd_read', cfd, t.iov(64), 1, 108)).toBe(0);
    expect(t.read(t.u32(108))).toBe('GET / HTTP/1.1\r\n\r\n');
    const got: string[] = [];
    client.sink = {
      data: (b) => got.push(new TextDecoder().decode(b)),
      end: () => got.push('EOF'),
    };
    expect(t.call('fd_write', cfd, t.iov('hello'), 1, 108)).toBe(0);
    expect(t.u32(108)).toBe(5);
    expect(t.call('sock_shutdown', cfd, 2)).toBe(0);
    expect(got).toEqual(['hello', 'EOF']);
  });

  it('blocks a recv until data arrives, and connects over loopback to its own listener', async () => {
    const t = setup([80, 9000]);
    const lfd = t.listener(9000);
    t.call('sock_open', 1, 1, 6, 100);
    const cfd = t.u32(100);
    expect(t.call('sock_connect', cfd, t.addr(9000, [127, 0, 0, 1]))).toBe(0);
    expect(t.call('sock_connect', cfd, t.addr(9000, [127, 0, 0, 1]))).toBe(30); // isconn
    t.call('sock_open', 1, 1, 6, 100);
    expect(t.call('sock_connect', t.u32(100), t.addr(5432, [10, 0, 0, 1]))).toBe(ACCES);
    expect(t.call('sock_accept_v2', lfd, 0, 104, 1200)).toBe(0);
    const sfd = t.u32(104);
    const pending = t.call('sock_recv', sfd, t.iov(16), 1, 0, 108, 112);
    expect(pending).toBeInstanceOf(Promise);
    t.call('sock_send', cfd, t.iov('ping'), 1, 0, 116);
    expect(await pending).toBe(0);
    expect(t.u32(108)).toBe(4);
    // MSG_DONTWAIT on a blocking socket.
    expect(t.call('sock_recv', sfd, t.iov(16), 1, 8, 108, 112)).toBe(AGAIN);
    // The peer closes: EOF.
    t.call('fd_close', cfd);
    expect(t.call('sock_recv', sfd, t.iov(16), 1, 0, 108, 112)).toBe(0);
    expect(t.u32(108)).toBe(0);
  });

  it('poll_oneoff waits on sockets and clocks together', async () => {
    const t = setup();
    const lfd = t.listener(80);
    // Subscriptions at 4000: fd_read on the listener, then a 50 ms relative clock.
    const sub = (i: number, userdata: bigint, type: number) => {
      const p = 4000 + i * 48;
      t.u8.fill(0, p, p + 48);
      t.view.setBigUint64(p, userdata, true);
      t.view.setUint8(p + 8, type);
      return p;
    };
    t.view.setUint32(sub(0, 7n, 1) + 16, lfd, true);
    const clock = sub(1, 9n, 0);
    t.view.setUint32(clock + 16, 1, true);
    t.view.setBigUint64(clock + 24, 50_000_000n, true);
    const r = t.call('poll_oneoff', 4000, 5000, 2, 120);
    expect(r).toBeInstanceOf(Promise);
    setTimeout(() => t.k.connect(80), 5);
    expect(await r).toBe(0);
    expect(t.u32(120)).toBe(1);
    expect(t.view.getBigUint64(5000, true)).toBe(7n);
    expect(t.view.getUint8(5010)).toBe(1); // fd_read
    // Nothing to accept after taking it: the clock fires.
    t.call('sock_accept_v2', lfd, 0, 104, 1200);
    expect(await t.call('poll_oneoff', 4000, 5000, 2, 120)).toBe(0);
    expect(t.view.getBigUint64(5000, true)).toBe(9n);
  });
});

describe('WASIX kernel: epoll, event counters, pipes', () => {
  const EPOLLIN = 1;
  const EPOLLOUT = 2;
  const EPOLLET = 64;

  /** Register `fd` for `events` with data word `tag`. */
  function ctl(
    t: ReturnType<typeof setup>,
    epfd: number,
    op: number,
    fd: number,
    events: number,
    tag: number,
  ) {
    t.u8.fill(0, 6000, 6032);
    t.view.setUint32(6000, events, true);
    t.view.setUint32(6008, tag, true);
    return t.call('epoll_ctl', epfd, op, fd, 6000);
  }

  it('reports level-triggered readiness every time, edge-triggered once per change', async () => {
    const t = setup();
    t.call('epoll_create', 100);
    const ep = t.u32(100);
    t.call('fd_event', 0n, 0, 104);
    const ev = t.u32(104);
    t.call('fd_pipe', 108, 112);
    const [pr, pw] = [t.u32(108), t.u32(112)];
    expect(ctl(t, ep, 0, ev, EPOLLIN, 11)).toBe(0);
    expect(ctl(t, ep, 0, pr, EPOLLIN | EPOLLET, 22)).toBe(0);
    expect(ctl(t, ep, 0, pr, EPOLLIN, 22)).toBe(20); // exist

    // Nothing ready, zero timeout: no events.
    expect(t.call('epoll_wait', ep, 7000, 8, 0n, 116)).toBe(0);
    expect(t.u32(116)).toBe(0);

    // A write to the event counter wakes a waiting epoll_wait.
    const waiting = t.call('epoll_wait', ep, 7000, 8, -1n, 116);
    expect(waiting).toBeInstanceOf(Promise);
    const one = new Uint8Array(8);
    one[0] = 3;
    t.u8.set(one, 3000);
    t.view.setUint32(2000, 3000, true);
    t.view.setUint32(2004, 8, true);
    expect(t.call('fd_write', ev, 2000, 1, 120)).toBe(0);
    expect(await waiting).toBe(0);
    expect(t.u32(116)).toBe(1);
    expect(t.u32(7000)).toBe(EPOLLIN);
    expect(t.u32(7008)).toBe(11);
    // Level-triggered: still readable, reported again.
    t.call('epoll_wait', ep, 7000, 8, 0n, 116);
    expect(t.u32(116)).toBe(1);
    // Reading takes the count (3) and clears readiness.
    expect(t.call('fd_read', ev, t.iov(8), 1, 120)).toBe(0);
    expect(t.view.getBigUint64(3000, true)).toBe(3n);
    t.call('epoll_wait', ep, 7000, 8, 0n, 116);
    expect(t.u32(116)).toBe(0);

    // Edge-triggered pipe: one report per write, however long the data stays unread.
    t.call('fd_write', pw, t.iov('a'), 1, 120);
    t.call('epoll_wait', ep, 7000, 8, 0n, 116);
    expect(t.u32(116)).toBe(1);
    expect(t.u32(7008)).toBe(22);
    t.call('epoll_wait', ep, 7000, 8, 0n, 116);
    expect(t.u32(116)).toBe(0);
    t.call('fd_write', pw, t.iov('b'), 1, 120);
    t.call('epoll_wait', ep, 7000, 8, 0n, 116);
    expect(t.u32(116)).toBe(1);
    expect(t.call('fd_read', pr, t.iov(8), 1, 120)).toBe(0);
    expect(t.read(t.u32(120))).toBe('ab');

    // Removing an fd stops its reports; a closed write end is a hang-up for the reader.
    expect(ctl(t, ep, 2, ev, 0, 0)).toBe(0);
    expect(ctl(t, ep, 1, pr, EPOLLIN, 33)).toBe(0);
    t.call('fd_close', pw);
    t.call('epoll_wait', ep, 7000, 8, 0n, 116);
    expect(t.u32(116)).toBe(1);
    expect(t.u32(7000) & 32).toBe(32); // EPOLLHUP
    expect(t.u32(7008)).toBe(33);
  });

  it('reports a writable connected socket for EPOLLOUT', () => {
    const t = setup();
    t.listener(80);
    t.call('sock_pair', 1, 1, 0, 100, 104);
    t.call('epoll_create', 108);
    const ep = t.u32(108);
    expect(ctl(t, ep, 0, t.u32(100), EPOLLOUT, 5)).toBe(0);
    t.call('epoll_wait', ep, 7000, 8, 0n, 116);
    expect(t.u32(116)).toBe(1);
    expect(t.u32(7000)).toBe(EPOLLOUT);
  });

  it('answers the process calls: proc_id, getcwd/chdir, fd_dup sharing a socket', () => {
    const t = setup();
    t.call('proc_id', 100);
    expect(t.u32(100)).toBe(42);
    t.view.setUint32(104, 64, true);
    expect(t.call('getcwd', 3000, 104)).toBe(0);
    expect(t.read(t.u32(104))).toBe('/');
    t.u8.set(new TextEncoder().encode('/srv'), 3100);
    expect(t.call('chdir', 3100, 4)).toBe(0);
    t.view.setUint32(104, 64, true);
    t.call('getcwd', 3000, 104);
    expect(t.read(t.u32(104))).toBe('/srv');
    const lfd = t.listener(80);
    expect(t.call('fd_dup', lfd, 108)).toBe(0);
    const dup = t.u32(108);
    t.call('fd_close', lfd);
    // The listener lives on through its duplicate.
    expect(t.k.listening(80)).toBe(true);
    t.call('fd_close', dup);
    expect(t.k.listening(80)).toBe(false);
  });
});
