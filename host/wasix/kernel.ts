/**
 * The kernel of one WASIX instance: the process-wide state every guest thread shares (the fd
 * table, sockets, listeners, pipes, event counters, epoll sets, the working directory) and the
 * system calls that use it. It runs on its own thread and never runs guest code, so a call that
 * has to wait (accept, recv, poll, epoll_wait, a full send buffer) returns a promise and the
 * calling guest thread sleeps until it settles, while other threads' calls and the network go on.
 *
 * Preview1 calls run on the same fd table through `host/wasi` (files, stdio, preopens); this
 * file adds what sockets and the WASIX additions need, and answers preview1's fd calls itself
 * when the fd is a socket, pipe or event counter.
 *
 * Policy: a guest listens only on ports it was granted (`acces` otherwise). It connects to its
 * own listeners over loopback, and to anything else only as `outbound` allows
 * (`capabilities.sockets.connect`, checked on the very address connected; see `outbound.ts`):
 * any other connect is `acces`, and reported with the reason. `resolve` answers only names some
 * grant could allow.
 */
import { isIP } from 'node:net';
import { monotonicNow, clockNow } from '../wasi/clocks.ts';
import {
  Clockid,
  Errno,
  EVENT_SIZE,
  EVENTRW_HANGUP,
  Eventtype,
  RIGHTS_ALL,
  SUBCLOCK_ABSTIME,
  SUBSCRIPTION_SIZE,
} from '../wasi/constants.ts';
import { createImports } from '../wasi/imports.ts';
import { gather, iovecTotal, MAX_IOVECS, scatter } from '../wasi/iovec.ts';
import type { GuestMemory } from '../wasi/memory.ts';
import { OutputBuffer, UNLIMITED_BYTES, type OutputSink } from '../wasi/output.ts';
import { FdKind, OpenFd, WasiState, type FdObject } from '../wasi/state.ts';
import type { WasiPreopen } from '../wasi/index.ts';
import {
  ADDR_IP_SIZE,
  ADDR_PORT_SIZE,
  AddressFamily,
  Epoll,
  EPOLL_EVENT_SIZE,
  EpollCtl,
  FDFLAG_NONBLOCK,
  isLocal,
  NetErrno,
  Proto,
  readAddrPort,
  RI_DONT_WAIT,
  RI_PEEK,
  SHUT_RD,
  SHUT_WR,
  SI_DONT_WAIT,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SockOption,
  SockStatus,
  SockType,
  writeAddrPort,
} from './abi.ts';
import {
  ANY4,
  EventCounter,
  Listener,
  LOOPBACK4,
  PipeEnd,
  Socket,
  SockState,
  streamPair,
  type SockAddr,
  type StreamEnd,
  type Waitable,
  withPort,
} from './net.ts';
import { addressText, ipBytes, OutboundSockets, type ConnectDenial } from './outbound.ts';

type Call = (...args: never[]) => number | Promise<number> | undefined;
type n = number;
type b = bigint;

const EMPTY = new Uint8Array(0);
const FIRST_EPHEMERAL_PORT = 49152;
const MAX_RESOLVED = 64;
/** Rights a socket fd carries: everything, the WASIX socket rights (bits 30–38) included. */
const RIGHTS_SOCKET = RIGHTS_ALL | (0x1ffn << 30n);
const ANY6: SockAddr = { family: 2, addr: new Uint8Array(16), port: 0 };
/** The instance's own name for its loopback: resolved without a grant or DNS. */
const LOCALHOST_RE = /^localhost\.?$/i;

export interface KernelOptions {
  memory: WebAssembly.Memory;
  args: readonly string[];
  env: Readonly<Record<string, string>> | Uint8Array;
  preopens: readonly WasiPreopen[];
  stdout: OutputSink;
  stderr: OutputSink;
  /** Ports the guest may listen on. */
  listenPorts: ReadonlySet<number>;
  /** This instance's process id (`proc_id`). */
  pid: number;
  /** A guest listener appeared on `port`. */
  onListen(port: number): void;
  /** A guest asked to listen on a port it wasn't granted. */
  onDenied(port: number): void;
  /** Outbound TCP the guest was granted (`capabilities.sockets.connect`); default: none. */
  outbound?: OutboundSockets;
  /** A connect or resolve was refused by `outbound`'s policy. */
  onConnectDenied?(denial: ConnectDenial): void;
  /** Start a guest thread; returns its id, or undefined when no more may start. */
  spawnThread(startArg: number, v2: boolean): number | undefined;
  /** Resolves when thread `tid` has ended (at once if it has). */
  joinThread(tid: number): Promise<void>;
  /** The process exits with `code` (proc_exit from any thread). */
  exit(code: number): void;
}

/** epoll interest in one fd. */
interface Interest {
  obj: FdObject;
  events: number;
  data: Uint8Array;
  seenGen: number;
  disabled: boolean;
}

class EpollSet implements FdObject {
  readonly filetype = 0;
  refs = 1;
  readonly interests = new Map<number, Interest>();
  close(): void {
    this.interests.clear();
  }
}

/** Where readiness of an object comes from, for waiting and for edge detection. */
function sourceOf(obj: FdObject): Waitable | undefined {
  if (obj instanceof Socket) return obj.source();
  if (obj instanceof PipeEnd) return obj.end;
  if (obj instanceof EventCounter) return obj;
  return undefined;
}

function genOf(obj: FdObject): number {
  if (obj instanceof Socket) return obj.gen + (obj.listener?.gen ?? 0) + (obj.stream?.gen ?? 0);
  return sourceOf(obj)?.gen ?? 0;
}

interface Readiness {
  read: boolean;
  write: boolean;
  hangup: boolean;
  nbytes: number;
}

function readiness(obj: FdObject): Readiness {
  if (obj instanceof Socket) {
    return {
      read: obj.readable(),
      write: obj.writable(),
      hangup: obj.hangup(),
      nbytes: obj.stream?.rxBytes ?? obj.listener?.backlog.length ?? 0,
    };
  }
  if (obj instanceof PipeEnd) {
    const e = obj.end;
    return obj.reading
      ? { read: e.readable(), write: false, hangup: e.rxEof && e.rxBytes === 0, nbytes: e.rxBytes }
      : { read: false, write: e.writable(), hangup: e.peerGone(), nbytes: 0 };
  }
  if (obj instanceof EventCounter) {
    return { read: obj.value > 0n, write: true, hangup: false, nbytes: obj.value > 0n ? 8 : 0 };
  }
  return { read: true, write: true, hangup: false, nbytes: 0 };
}

function closedObj(obj: FdObject): boolean {
  if (obj instanceof Socket) return obj.state === SockState.closed;
  if (obj instanceof PipeEnd) return obj.end.closed;
  return obj.refs <= 0;
}

/** Nanoseconds from a WASIX `option_timestamp` set by `sock_set_opt_time`, if any. */
function timeoutMs(ns: bigint | undefined): number | undefined {
  if (ns === undefined || ns === 0n) return undefined;
  return Math.max(1, Number(ns / 1_000_000n));
}

export class Kernel {
  readonly state: WasiState;
  readonly mem: GuestMemory;
  readonly #opts: KernelOptions;
  readonly #base: Record<string, Call>;
  readonly calls: Record<string, Call>;
  readonly #listeners = new Map<number, Listener>();
  readonly #outbound: OutboundSockets;
  #nextPort = FIRST_EPHEMERAL_PORT;
  #cwd = '/';
  signalCallback = '';

  constructor(opts: KernelOptions) {
    this.#opts = opts;
    this.#outbound = opts.outbound ?? new OutboundSockets([]);
    this.state = new WasiState({
      args: opts.args,
      env: opts.env,
      stdin: EMPTY,
      stdinSource: undefined,
      stdout: new OutputBuffer(UNLIMITED_BYTES, opts.stdout),
      stderr: new OutputBuffer(UNLIMITED_BYTES, opts.stderr),
      ttyMask: 0,
      preopens: opts.preopens,
    });
    this.mem = this.state.mem;
    this.mem.bind(opts.memory);
    this.#base = createImports(this.state)['wasi_snapshot_preview1'] as unknown as Record<
      string,
      Call
    >;
    this.calls = this.#table();
  }

  /** Run call `name`; a name nobody implements answers `nosys`. */
  call(name: string, args: (number | bigint)[]): number | Promise<number> | undefined {
    const f = (this.calls[name] ?? this.#base[name]) as
      ((...a: (number | bigint)[]) => number | Promise<number> | undefined) | undefined;
    if (f === undefined) return Errno.nosys;
    this.mem.refresh();
    return f(...args);
  }

  /** Close every fd (the instance is going away). */
  shutdown(): void {
    this.state.closeAll();
    for (const l of this.#listeners.values()) l.close();
    this.#listeners.clear();
  }

  /** Open a connection to the guest's listener on `port`, as a client on loopback would. The
   *  returned end belongs to the caller; undefined when nothing listens there or it is full. */
  connect(port: number, remote = LOOPBACK4): StreamEnd | undefined {
    const l = this.#listeners.get(port);
    if (l === undefined || l.closed) return undefined;
    const [client, server] = streamPair(withPort(remote, this.#ephemeralPort()), l.addr);
    if (!l.enqueue(server)) return undefined;
    return client;
  }

  listening(port: number): boolean {
    const l = this.#listeners.get(port);
    return l !== undefined && !l.closed;
  }

  #ephemeralPort(): number {
    const p = this.#nextPort;
    this.#nextPort = p >= 65535 ? FIRST_EPHEMERAL_PORT : p + 1;
    return p;
  }

  // ---- helpers ---------------------------------------------------------------------------

  #obj(fd: number): OpenFd | undefined {
    return this.state.fd(fd);
  }

  #newFd(obj: FdObject, fdflags = 0): number {
    const fd = this.state.freeFd();
    if (fd < 0) {
      obj.refs = 0;
      obj.close();
      return -1;
    }
    const e = new OpenFd(FdKind.object, undefined, undefined, RIGHTS_SOCKET, RIGHTS_SOCKET);
    e.obj = obj;
    e.fdflags = fdflags;
    this.state.fds[fd] = e;
    return fd;
  }

  #ok(ptr: number, len: number): boolean {
    return this.mem.ok(ptr >>> 0, len);
  }

  /**
   * Wait until `check` gives a value or `ms` passes (undefined: no limit). `check` runs now,
   * then after each change of any of `sources`.
   */
  #until<T>(
    sources: readonly Waitable[],
    check: () => T | undefined,
    ms: number | undefined,
  ): T | undefined | Promise<T | undefined> {
    const first = check();
    if (first !== undefined) return first;
    if (ms !== undefined && ms <= 0) return undefined;
    return new Promise<T | undefined>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (v: T | undefined): void => {
        for (const s of sources) s.removeWaiter(waiter);
        if (timer !== undefined) clearTimeout(timer);
        resolve(v);
      };
      const waiter = (): void => {
        const v = check();
        if (v !== undefined) done(v);
      };
      for (const s of sources) s.addWaiter(waiter);
      if (ms !== undefined) timer = setTimeout(() => done(check()), ms);
    });
  }

  /** A checked iovec array: its count (capped) and byte total; undefined when outside memory. */
  #iovecs(iovs: number, len: number): { count: number; total: number } | undefined {
    const count = Math.min(len >>> 0, MAX_IOVECS);
    const total = iovecTotal(this.mem, iovs, count);
    return total < 0 ? undefined : { count, total };
  }

  #writeU32(ptr: number, v: number): void {
    this.mem.refresh();
    this.mem.view.setUint32(ptr >>> 0, v, true);
  }

  // ---- stream I/O shared by fd_read/sock_recv and fd_write/sock_send -------------------------

  #recv(
    e: OpenFd,
    end: StreamEnd,
    iovs: number,
    iovsLen: number,
    dontWait: boolean,
    peek: boolean,
    retLen: number,
    recvTimeout: number | undefined,
  ): number | Promise<number> {
    iovs >>>= 0;
    retLen >>>= 0;
    const v = this.#iovecs(iovs, iovsLen);
    if (v === undefined || !this.#ok(retLen, 4)) return Errno.fault;
    const attempt = (): number | undefined => {
      if (end.rxBytes > 0) {
        this.mem.refresh();
        const got = scatter(this.mem, iovs, v.count, end.receive(v.total, peek), 0);
        this.#writeU32(retLen, got);
        return Errno.success;
      }
      if (end.reset) return NetErrno.connreset;
      if (end.rxEof || end.closed) {
        this.#writeU32(retLen, 0);
        return Errno.success;
      }
      return undefined;
    };
    const nonblock = dontWait || (e.fdflags & FDFLAG_NONBLOCK) !== 0;
    if (nonblock) return attempt() ?? NetErrno.again;
    return this.#settle(this.#until([end], attempt, recvTimeout), NetErrno.timedout);
  }

  #send(
    e: OpenFd,
    end: StreamEnd,
    iovs: number,
    iovsLen: number,
    dontWait: boolean,
    retLen: number,
    sendTimeout: number | undefined,
  ): number | Promise<number> {
    iovs >>>= 0;
    retLen >>>= 0;
    const v = this.#iovecs(iovs, iovsLen);
    if (v === undefined || !this.#ok(retLen, 4)) return Errno.fault;
    if (end.txShut) return NetErrno.pipe;
    const nonblock = dontWait || (e.fdflags & FDFLAG_NONBLOCK) !== 0;
    const total = v.total;
    if (total === 0) {
      this.#writeU32(retLen, 0);
      return Errno.success;
    }
    // One copy out of guest memory; the peer takes ownership of slices of it.
    const data = new Uint8Array(total);
    gather(this.mem, iovs, v.count, total, data, 0);
    let sent = 0;
    // Copy what fits now; a blocking send then waits for room for the rest, as POSIX does.
    const step = (): number | undefined => {
      if (end.peerGone()) return sent > 0 ? Errno.success : NetErrno.pipe;
      const room = end.room();
      if (room > 0) {
        const n = Math.min(room, total - sent);
        end.send(data.subarray(sent, sent + n));
        sent += n;
      }
      if (sent === total || (nonblock && sent > 0)) return Errno.success;
      return undefined;
    };
    const finish = (r: number | undefined): number => {
      if (r === undefined)
        r = sent > 0 ? Errno.success : nonblock ? NetErrno.again : NetErrno.timedout;
      if (r === Errno.success) this.#writeU32(retLen, sent);
      return r;
    };
    const first = step();
    if (first !== undefined || nonblock) return finish(first);
    const waited = this.#until([end], step, sendTimeout);
    return waited instanceof Promise ? waited.then(finish) : finish(waited);
  }

  #settle(
    r: number | undefined | Promise<number | undefined>,
    onTimeout: number,
  ): number | Promise<number> {
    if (r instanceof Promise) return r.then((v) => v ?? onTimeout);
    return r ?? onTimeout;
  }

  /** Read an event counter: 8 bytes, its value (or 1, as a semaphore), which is taken. */
  #eventRead(e: OpenFd, c: EventCounter, iovs: number, iovsLen: number, ret: number) {
    iovs >>>= 0;
    const v = this.#iovecs(iovs, iovsLen);
    if (v === undefined || !this.#ok(ret, 4)) return Errno.fault;
    if (v.total < 8) return Errno.inval;
    const attempt = (): number | undefined => {
      if (c.value === 0n) return undefined;
      const taken = c.semaphore ? 1n : c.value;
      c.value -= taken;
      c.wake();
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setBigUint64(0, taken, true);
      this.mem.refresh();
      this.#writeU32(ret, scatter(this.mem, iovs, v.count, bytes, 0));
      return Errno.success;
    };
    if ((e.fdflags & FDFLAG_NONBLOCK) !== 0) return attempt() ?? NetErrno.again;
    return this.#settle(this.#until([c], attempt, undefined), NetErrno.again);
  }

  /** Add the 8-byte value written to an event counter. */
  #eventWrite(c: EventCounter, iovs: number, iovsLen: number, ret: number): number {
    iovs >>>= 0;
    const v = this.#iovecs(iovs, iovsLen);
    if (v === undefined || !this.#ok(ret, 4)) return Errno.fault;
    if (v.total < 8) return Errno.inval;
    const bytes = new Uint8Array(8);
    gather(this.mem, iovs, v.count, 8, bytes, 0);
    c.value += new DataView(bytes.buffer).getBigUint64(0, true);
    c.wake();
    this.#writeU32(ret, 8);
    return Errno.success;
  }

  // ---- the call table ------------------------------------------------------------------------

  #table(): Record<string, Call> {
    const base = this.#base;
    const s = this.state;
    const opts = this.#opts;
    const sock = (fd: number): Socket | number => {
      const e = s.fd(fd);
      if (e === undefined) return Errno.badf;
      return e.obj instanceof Socket ? e.obj : Errno.notsock;
    };
    return {
      // preview1 calls that must know about kernel objects
      fd_read: (fd: n, iovs: n, len: n, ret: n) => {
        const e = this.#obj(fd);
        const o = e?.obj;
        if (e === undefined || o === undefined)
          return base['fd_read']!(...([fd, iovs, len, ret] as never[]));
        if (o instanceof Socket) {
          if (o.stream === undefined) {
            return this.#unconnected(e, o, false, () => this.#call('fd_read', fd, iovs, len, ret));
          }
          return this.#recv(
            e,
            o.stream,
            iovs,
            len,
            false,
            false,
            ret,
            timeoutMs(o.times.get(SockOption.recvTimeout)),
          );
        }
        if (o instanceof PipeEnd) {
          if (!o.reading) return Errno.badf;
          return this.#recv(e, o.end, iovs, len, false, false, ret, undefined);
        }
        if (o instanceof EventCounter) return this.#eventRead(e, o, iovs, len, ret);
        return Errno.badf;
      },
      fd_write: (fd: n, iovs: n, len: n, ret: n) => {
        const e = this.#obj(fd);
        const o = e?.obj;
        if (e === undefined || o === undefined)
          return base['fd_write']!(...([fd, iovs, len, ret] as never[]));
        if (o instanceof Socket) {
          if (o.stream === undefined) {
            return this.#unconnected(e, o, false, () => this.#call('fd_write', fd, iovs, len, ret));
          }
          return this.#send(
            e,
            o.stream,
            iovs,
            len,
            false,
            ret,
            timeoutMs(o.times.get(SockOption.sendTimeout)),
          );
        }
        if (o instanceof PipeEnd) {
          if (o.reading) return Errno.badf;
          return this.#send(e, o.end, iovs, len, false, ret, undefined);
        }
        if (o instanceof EventCounter) return this.#eventWrite(o, iovs, len, ret);
        return Errno.badf;
      },
      fd_pread: (fd: n, ...rest: never[]) => {
        return this.#obj(fd)?.obj !== undefined
          ? Errno.spipe
          : base['fd_pread']!(...([fd, ...rest] as never[]));
      },
      fd_pwrite: (fd: n, ...rest: never[]) => {
        return this.#obj(fd)?.obj !== undefined
          ? Errno.spipe
          : base['fd_pwrite']!(...([fd, ...rest] as never[]));
      },
      fd_seek: (fd: n, ...rest: never[]) => {
        return this.#obj(fd)?.obj !== undefined
          ? Errno.spipe
          : base['fd_seek']!(...([fd, ...rest] as never[]));
      },
      fd_tell: (fd: n, ...rest: never[]) => {
        return this.#obj(fd)?.obj !== undefined
          ? Errno.spipe
          : base['fd_tell']!(...([fd, ...rest] as never[]));
      },
      poll_oneoff: (inp: n, out: n, nsubs: n, ret: n) => this.#poll(inp, out, nsubs, ret),
      proc_exit: (code: n) => {
        opts.exit(code | 0);
        return Errno.success;
      },
      proc_exit2: (code: n) => {
        opts.exit(code | 0);
        return Errno.success;
      },

      // sockets
      sock_open: (af: n, type: n, proto: n, retFd: n) => {
        if (!this.#ok(retFd, 4)) return Errno.fault;
        const nonblock = (type & SOCK_NONBLOCK) !== 0;
        const cloexec = (type & SOCK_CLOEXEC) !== 0;
        type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (af !== AddressFamily.inet4 && af !== AddressFamily.inet6) return NetErrno.afnosupport;
        if (type !== SockType.stream && type !== SockType.dgram) return Errno.notsup;
        if (proto === 0) proto = type === SockType.stream ? Proto.tcp : Proto.udp;
        if ((proto === Proto.tcp) !== (type === SockType.stream)) return NetErrno.protonosupport;
        const fd = this.#newFd(new Socket(af, type, proto), nonblock ? FDFLAG_NONBLOCK : 0);
        if (fd < 0) return Errno.mfile;
        if (cloexec) s.fds[fd]!.fdflagsExt = 1;
        this.#writeU32(retFd, fd);
        return Errno.success;
      },
      sock_pair: (af: n, type: n, _proto: n, ret1: n, ret2: n) => {
        if (!this.#ok(ret1, 4) || !this.#ok(ret2, 4)) return Errno.fault;
        type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (type !== SockType.stream) return Errno.notsup;
        const [x, y] = streamPair(LOOPBACK4, LOOPBACK4);
        const a = new Socket(af || AddressFamily.inet4, type, Proto.tcp);
        const c = new Socket(af || AddressFamily.inet4, type, Proto.tcp);
        a.stream = x;
        c.stream = y;
        a.state = c.state = SockState.connected;
        const fa = this.#newFd(a);
        const fc = fa < 0 ? -1 : this.#newFd(c);
        if (fa < 0 || fc < 0) return Errno.mfile;
        this.#writeU32(ret1, fa);
        this.#writeU32(ret2, fc);
        return Errno.success;
      },
      sock_bind: (fd: n, addrPtr: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        if (!this.#ok(addrPtr, ADDR_PORT_SIZE)) return Errno.fault;
        if (so.bound !== undefined || so.state !== SockState.fresh) return Errno.inval;
        const a = readAddrPort(this.mem, addrPtr >>> 0);
        if (a === undefined || a.family !== so.family) return NetErrno.afnosupport;
        if (a.port === 0) a.port = this.#ephemeralPort();
        so.bound = a;
        return Errno.success;
      },
      sock_listen: (fd: n, backlog: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        if (so.type !== SockType.stream) return Errno.notsup;
        if (so.state === SockState.listening) return Errno.success;
        if (so.state !== SockState.fresh) return Errno.inval;
        const addr = so.bound ?? withPort(ANY4, this.#ephemeralPort());
        if (!opts.listenPorts.has(addr.port)) {
          opts.onDenied(addr.port);
          return Errno.acces;
        }
        if (this.listening(addr.port)) return NetErrno.addrinuse;
        const l = new Listener(addr, backlog > 0 ? backlog : 128);
        so.bound = addr;
        so.listener = l;
        so.state = SockState.listening;
        this.#listeners.set(addr.port, l);
        so.onClose = () => {
          if (this.#listeners.get(addr.port) === l) this.#listeners.delete(addr.port);
        };
        so.wake();
        opts.onListen(addr.port);
        return Errno.success;
      },
      sock_accept: (fd: n, flags: n, retFd: n) => {
        return this.#accept(fd, flags, retFd, undefined);
      },
      sock_accept_v2: (fd: n, flags: n, retFd: n, retAddr: n) => {
        return this.#accept(fd, flags, retFd, retAddr);
      },
      sock_connect: (fd: n, addrPtr: n) => {
        const e = this.#obj(fd);
        const so = sock(fd);
        if (typeof so === 'number' || e === undefined)
          return typeof so === 'number' ? so : Errno.badf;
        if (!this.#ok(addrPtr, ADDR_PORT_SIZE)) return Errno.fault;
        if (so.state === SockState.connected) return NetErrno.isconn;
        if (so.connecting) return NetErrno.already;
        if (so.state !== SockState.fresh || so.type !== SockType.stream) return Errno.inval;
        const a = readAddrPort(this.mem, addrPtr >>> 0);
        if (a === undefined) return NetErrno.afnosupport;
        const l = isLocal(a) ? this.#listeners.get(a.port) : undefined;
        if (l === undefined || l.closed) return this.#connectOut(e, so, a);
        const local = so.bound ?? withPort(LOOPBACK4, this.#ephemeralPort());
        const [client, server] = streamPair(local, withPort(LOOPBACK4, a.port));
        if (!l.enqueue(server)) return NetErrno.connrefused;
        so.bound = local;
        so.stream = client;
        so.state = SockState.connected;
        so.wake();
        return Errno.success;
      },
      sock_recv: (fd: n, iovs: n, len: n, riflags: n, retLen: n, retFlags: n) => {
        const e = this.#obj(fd);
        const so = sock(fd);
        if (typeof so === 'number' || e === undefined)
          return typeof so === 'number' ? so : Errno.badf;
        if (so.stream === undefined) {
          return this.#unconnected(e, so, (riflags & RI_DONT_WAIT) !== 0, () =>
            this.#call('sock_recv', fd, iovs, len, riflags, retLen, retFlags),
          );
        }
        if (!this.#ok(retFlags, 2)) return Errno.fault;
        this.mem.view.setUint16(retFlags >>> 0, 0, true);
        return this.#recv(
          e,
          so.stream,
          iovs,
          len,
          (riflags & RI_DONT_WAIT) !== 0,
          (riflags & RI_PEEK) !== 0,
          retLen,
          timeoutMs(so.times.get(SockOption.recvTimeout)),
        );
      },
      sock_recv_from: (fd: n, iovs: n, len: n, riflags: n, retLen: n, retFlags: n, retAddr: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        if (so.stream === undefined) return NetErrno.notconn;
        if (!this.#ok(retAddr, ADDR_PORT_SIZE)) return Errno.fault;
        writeAddrPort(this.mem, retAddr >>> 0, so.stream.remote);
        return (this.calls['sock_recv'] as (...a: n[]) => number | Promise<number>)(
          fd,
          iovs,
          len,
          riflags,
          retLen,
          retFlags,
        );
      },
      sock_send: (fd: n, iovs: n, len: n, siflags: n, retLen: n) => {
        const e = this.#obj(fd);
        const so = sock(fd);
        if (typeof so === 'number' || e === undefined)
          return typeof so === 'number' ? so : Errno.badf;
        if (so.stream === undefined) {
          return this.#unconnected(e, so, (siflags & SI_DONT_WAIT) !== 0, () =>
            this.#call('sock_send', fd, iovs, len, siflags, retLen),
          );
        }
        return this.#send(
          e,
          so.stream,
          iovs,
          len,
          (siflags & SI_DONT_WAIT) !== 0,
          retLen,
          timeoutMs(so.times.get(SockOption.sendTimeout)),
        );
      },
      sock_send_to: (fd: n, iovs: n, len: n, siflags: n, _addr: n, retLen: n) => {
        return (this.calls['sock_send'] as (...a: n[]) => number | Promise<number>)(
          fd,
          iovs,
          len,
          siflags,
          retLen,
        );
      },
      sock_shutdown: (fd: n, how: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        const st = so.stream;
        if (st === undefined) return NetErrno.notconn;
        if ((how & ~(SHUT_RD | SHUT_WR)) !== 0 || how === 0) return Errno.inval;
        if ((how & SHUT_WR) !== 0) st.shutdownWrite();
        if ((how & SHUT_RD) !== 0) {
          st.rx.length = 0;
          st.rxBytes = 0;
          st.rxEof = true;
          st.wake();
        }
        return Errno.success;
      },
      sock_status: (fd: n, ret: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        if (!this.#ok(ret, 1)) return Errno.fault;
        const st =
          so.state === SockState.closed
            ? SockStatus.closed
            : so.connectError !== undefined
              ? SockStatus.failed
              : so.state === SockState.fresh
                ? SockStatus.opening
                : SockStatus.opened;
        this.mem.view.setUint8(ret >>> 0, st);
        return Errno.success;
      },
      sock_addr_local: (fd: n, ret: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        if (!this.#ok(ret, ADDR_PORT_SIZE)) return Errno.fault;
        const a =
          so.stream?.local ??
          so.bound ??
          withPort(so.family === 1 ? ANY4 : { family: 2, addr: new Uint8Array(16), port: 0 }, 0);
        writeAddrPort(this.mem, ret >>> 0, a);
        return Errno.success;
      },
      sock_addr_peer: (fd: n, ret: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        if (so.stream === undefined) return NetErrno.notconn;
        if (!this.#ok(ret, ADDR_PORT_SIZE)) return Errno.fault;
        writeAddrPort(this.mem, ret >>> 0, so.stream.remote);
        return Errno.success;
      },
      sock_set_opt_flag: (fd: n, opt: n, flag: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        so.flags.set(opt, flag !== 0);
        return Errno.success;
      },
      sock_get_opt_flag: (fd: n, opt: n, ret: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        if (!this.#ok(ret, 1)) return Errno.fault;
        const v =
          opt === SockOption.listening
            ? so.state === SockState.listening
            : (so.flags.get(opt) ?? false);
        this.mem.view.setUint8(ret >>> 0, v ? 1 : 0);
        return Errno.success;
      },
      sock_set_opt_time: (fd: n, opt: n, ptr: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        if (!this.#ok(ptr, 16)) return Errno.fault;
        const some = this.mem.view.getUint8(ptr >>> 0) === 1;
        so.times.set(opt, some ? this.mem.view.getBigUint64((ptr >>> 0) + 8, true) : undefined);
        return Errno.success;
      },
      sock_get_opt_time: (fd: n, opt: n, ret: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        if (!this.#ok(ret, 16)) return Errno.fault;
        const v = so.times.get(opt);
        this.mem.u8.fill(0, ret >>> 0, (ret >>> 0) + 16);
        if (v !== undefined) {
          this.mem.view.setUint8(ret >>> 0, 1);
          this.mem.view.setBigUint64((ret >>> 0) + 8, v, true);
        }
        return Errno.success;
      },
      sock_set_opt_size: (fd: n, opt: n, size: b) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        so.sizes.set(opt, BigInt.asUintN(64, size));
        return Errno.success;
      },
      sock_get_opt_size: (fd: n, opt: n, ret: n) => {
        const so = sock(fd);
        if (typeof so === 'number') return so;
        if (!this.#ok(ret, 8)) return Errno.fault;
        let v = so.sizes.get(opt);
        if (v === undefined) {
          if (opt === SockOption.type) v = BigInt(so.type);
          else if (opt === SockOption.lastError) v = BigInt(so.connectError ?? 0);
          else if (opt === SockOption.proto) v = BigInt(so.proto);
          else if (opt === SockOption.recvBufSize || opt === SockOption.sendBufSize) v = 65536n;
          else v = 0n;
        }
        this.mem.view.setBigUint64(ret >>> 0, v, true);
        return Errno.success;
      },
      resolve: (hostPtr: n, hostLen: n, port: n, addrs: n, naddrs: n, retN: n) => {
        return this.#resolve(hostPtr, hostLen, port, addrs, naddrs, retN);
      },

      // fds
      fd_dup: (fd: n, ret: n) => {
        return this.#dup(fd, 0, false, ret);
      },
      fd_dup2: (fd: n, min: n, cloexec: n, ret: n) => {
        return this.#dup(fd, min, cloexec !== 0, ret);
      },
      fd_fdflags_get: (fd: n, ret: n) => {
        const e = s.fd(fd);
        if (e === undefined) return Errno.badf;
        if (!this.#ok(ret, 2)) return Errno.fault;
        this.mem.view.setUint16(ret >>> 0, e.fdflagsExt, true);
        return Errno.success;
      },
      fd_fdflags_set: (fd: n, flags: n) => {
        const e = s.fd(fd);
        if (e === undefined) return Errno.badf;
        e.fdflagsExt = flags & 1;
        return Errno.success;
      },
      fd_pipe: (retRead: n, retWrite: n) => {
        if (!this.#ok(retRead, 4) || !this.#ok(retWrite, 4)) return Errno.fault;
        const [r, w] = streamPair(ANY4, ANY4);
        // `w` writes into `r`; the pipe's write end is `w`, its read end `r`.
        const fr = this.#newFd(new PipeEnd(r, true));
        const fw = fr < 0 ? -1 : this.#newFd(new PipeEnd(w, false));
        if (fr < 0 || fw < 0) return Errno.mfile;
        this.#writeU32(retRead, fr);
        this.#writeU32(retWrite, fw);
        return Errno.success;
      },
      fd_event: (initial: b, flags: n, ret: n) => {
        if (!this.#ok(ret, 4)) return Errno.fault;
        const fd = this.#newFd(new EventCounter(BigInt.asUintN(64, initial), (flags & 1) !== 0));
        if (fd < 0) return Errno.mfile;
        this.#writeU32(ret, fd);
        return Errno.success;
      },
      epoll_create: (ret: n) => {
        if (!this.#ok(ret, 4)) return Errno.fault;
        const fd = this.#newFd(new EpollSet());
        if (fd < 0) return Errno.mfile;
        this.#writeU32(ret, fd);
        return Errno.success;
      },
      epoll_ctl: (epfd: n, op: n, fd: n, event: n) => this.#epollCtl(epfd, op, fd, event),
      epoll_wait: (epfd: n, events: n, max: n, timeout: b, ret: n) =>
        this.#epollWait(epfd, events, max, timeout, ret),
      path_open2: (fd: n, df: n, p: n, l: n, of: n, rb: b, ri: b, ff: n, ext: n, ret: n) => {
        const r = base['path_open']!(...([fd, df, p, l, of, rb, ri, ff, ret] as never[]));
        if (r === Errno.success) {
          const e = s.fd(this.mem.view.getUint32(ret >>> 0, true));
          if (e !== undefined) e.fdflagsExt = ext & 1;
        }
        return r;
      },

      // process
      getcwd: (buf: n, lenPtr: n) => {
        if (!this.#ok(lenPtr, 4)) return Errno.fault;
        const bytes = new TextEncoder().encode(this.#cwd);
        const room = this.mem.view.getUint32(lenPtr >>> 0, true);
        this.mem.view.setUint32(lenPtr >>> 0, bytes.length, true);
        if (room < bytes.length + 1) return Errno.overflow;
        if (!this.#ok(buf, bytes.length + 1)) return Errno.fault;
        this.mem.u8.set(bytes, buf >>> 0);
        this.mem.u8[(buf >>> 0) + bytes.length] = 0;
        return Errno.success;
      },
      chdir: (path: n, len: n) => {
        if (!this.#ok(path, len >>> 0)) return Errno.fault;
        const p = new TextDecoder().decode(this.mem.bytesForDecode(path >>> 0, len >>> 0));
        if (!p.startsWith('/')) return Errno.inval;
        this.#cwd = p;
        return Errno.success;
      },
      proc_id: (ret: n) => {
        if (!this.#ok(ret, 4)) return Errno.fault;
        this.#writeU32(ret, opts.pid);
        return Errno.success;
      },
      proc_parent: (_pid: n, ret: n) => {
        if (!this.#ok(ret, 4)) return Errno.fault;
        this.#writeU32(ret, 0);
        return Errno.success;
      },
      proc_signals_sizes_get: (ret: n) => {
        if (!this.#ok(ret, 4)) return Errno.fault;
        this.#writeU32(ret, 0);
        return Errno.success;
      },
      proc_signals_get: (_buf: n) => {
        return Errno.success;
      },
      callback_signal: (ptr: n, len: n) => {
        if (this.#ok(ptr, len >>> 0)) {
          this.signalCallback = new TextDecoder().decode(
            this.mem.bytesForDecode(ptr >>> 0, len >>> 0),
          );
        }
        return Errno.success;
      },
      thread_signal: (_tid: n, _sig: n) => {
        return Errno.success;
      },
      clock_time_set: (_id: n, _t: b) => {
        return Errno.perm;
      },

      // threads
      thread_spawn_v2: (startArgs: n, retTid: n) => {
        if (!this.#ok(retTid, 4)) return Errno.fault;
        const tid = opts.spawnThread(startArgs >>> 0, true);
        if (tid === undefined) return NetErrno.again;
        this.#writeU32(retTid, tid);
        return Errno.success;
      },
      'thread-spawn': (startArg: n) => {
        return opts.spawnThread(startArg >>> 0, false) ?? -NetErrno.again;
      },
      thread_join: (tid: n) => {
        return opts.joinThread(tid >>> 0).then(() => Errno.success);
      },
    };
  }

  #accept(fd: number, flags: number, retFd: number, retAddr: number | undefined) {
    const e = this.#obj(fd);
    if (e === undefined) return Errno.badf;
    const so = e.obj;
    if (!(so instanceof Socket)) return Errno.notsock;
    const l = so.listener;
    if (l === undefined) return Errno.inval;
    if (!this.#ok(retFd, 4) || (retAddr !== undefined && !this.#ok(retAddr, ADDR_PORT_SIZE))) {
      return Errno.fault;
    }
    const nonblockNew = (flags & FDFLAG_NONBLOCK) !== 0 || (e.fdflags & FDFLAG_NONBLOCK) !== 0;
    const attempt = (): number | undefined => {
      if (l.closed) return Errno.badf;
      const end = l.backlog.shift();
      if (end === undefined) return undefined;
      l.wake();
      const c = new Socket(so.family, so.type, so.proto);
      c.stream = end;
      c.state = SockState.connected;
      c.bound = end.local;
      const nfd = this.#newFd(c, nonblockNew ? FDFLAG_NONBLOCK : 0);
      if (nfd < 0) return Errno.mfile;
      this.#writeU32(retFd, nfd);
      if (retAddr !== undefined) {
        this.mem.refresh();
        writeAddrPort(this.mem, retAddr >>> 0, end.remote);
      }
      return Errno.success;
    };
    if ((e.fdflags & FDFLAG_NONBLOCK) !== 0) return attempt() ?? NetErrno.again;
    return this.#settle(
      this.#until([l], attempt, timeoutMs(so.times.get(SockOption.acceptTimeout))),
      NetErrno.timedout,
    );
  }

  #dup(fd: number, min: number, cloexec: boolean, ret: number): number {
    const s = this.state;
    const e = s.fd(fd);
    if (e === undefined) return Errno.badf;
    if (!this.#ok(ret, 4)) return Errno.fault;
    if (e.obj === undefined && e.file !== undefined) return Errno.notsup;
    let nfd = -1;
    for (let i = Math.max(0, min); i < 1024; i++) {
      if (s.fds[i] === undefined) {
        nfd = i;
        break;
      }
    }
    if (nfd < 0) return Errno.mfile;
    const d = new OpenFd(e.kind, e.dir, undefined, e.rightsBase, e.rightsInheriting);
    d.obj = e.obj;
    d.fdflags = e.fdflags;
    d.fdflagsExt = cloexec ? 1 : 0;
    if (d.obj !== undefined) d.obj.refs++;
    while (s.fds.length < nfd) s.fds.push(undefined);
    s.fds[nfd] = d;
    this.#writeU32(ret, nfd);
    return Errno.success;
  }

  #resolve(hostPtr: n, hostLen: n, port: n, addrs: n, naddrs: n, retN: n) {
    hostLen >>>= 0;
    naddrs = Math.min(naddrs >>> 0, MAX_RESOLVED);
    if (
      !this.#ok(hostPtr, hostLen) ||
      !this.#ok(addrs, naddrs * ADDR_IP_SIZE) ||
      !this.#ok(retN, 4)
    ) {
      return Errno.fault;
    }
    const host = new TextDecoder().decode(this.mem.bytesForDecode(hostPtr >>> 0, hostLen));
    const write = (list: readonly { address: string }[]): number => {
      this.mem.refresh();
      let count = 0;
      for (const a of list) {
        if (count >= naddrs) break;
        const bytes = ipBytes(a.address);
        if (bytes === undefined) continue;
        const p = (addrs >>> 0) + count * ADDR_IP_SIZE;
        this.mem.u8.fill(0, p, p + ADDR_IP_SIZE);
        this.mem.view.setUint8(p, bytes.length === 4 ? 1 : 2);
        this.mem.u8.set(bytes, p + 2);
        count++;
      }
      this.#writeU32(retN, count);
      return Errno.success;
    };
    // An address is its own answer: nothing is looked up, and connect checks it anyway.
    if (isIP(host) !== 0) return write([{ address: host }]);
    if (!LOCALHOST_RE.test(host)) {
      const v = this.#outbound.mayResolve(host, port & 0xffff);
      if (!v.allowed) {
        this.#opts.onConnectDenied?.({
          op: 'resolve',
          host,
          port: port & 0xffff,
          reason: v.reason,
        });
        return Errno.acces;
      }
    }
    return this.#outbound.resolve(host).then(write, () => NetErrno.hostunreach);
  }

  /** Run call `name` again (a read or write that waited for its socket's connect). */
  #call(name: string, ...args: number[]): number | Promise<number> {
    this.mem.refresh();
    return (this.calls[name] as (...a: number[]) => number | Promise<number>)(...args);
  }

  /**
   * A read or write on a socket without a stream: after a failed connect, its errno; during a
   * connect, `again` when non-blocking, else `retry` once the connect settles; else `notconn`.
   */
  #unconnected(
    e: OpenFd,
    so: Socket,
    dontWait: boolean,
    retry: () => number | Promise<number>,
  ): number | Promise<number> {
    if (so.connectError !== undefined) return so.connectError;
    if (!so.connecting) return NetErrno.notconn;
    if (dontWait || (e.fdflags & FDFLAG_NONBLOCK) !== 0) return NetErrno.again;
    const r = this.#until([so], () => (so.connecting ? undefined : true), undefined);
    return r instanceof Promise ? r.then(() => retry()) : retry();
  }

  /**
   * Connect `so` to `a`, which is not one of the instance's own listeners: a real TCP connection
   * when `outbound` allows the address (blocking: settles when connected or failed; non-blocking:
   * `inprogress`, then the socket turns writable), `acces` otherwise. A loopback connect to a
   * port the guest may listen on is its own service not listening yet: `connrefused`.
   */
  #connectOut(e: OpenFd, so: Socket, a: SockAddr): number | Promise<number> {
    const host = addressText(a);
    const v = this.#outbound.check(host, a.port);
    if (!v.allowed) {
      if (isLocal(a) && this.#opts.listenPorts.has(a.port)) return NetErrno.connrefused;
      this.#opts.onConnectDenied?.({
        op: 'connect',
        host,
        port: a.port,
        reason: v.reason,
        ...(v.rule === undefined ? {} : { rule: v.rule }),
      });
      return Errno.acces;
    }
    const local = so.bound ?? withPort(so.family === AddressFamily.inet6 ? ANY6 : ANY4, 0);
    const [guestEnd, hostEnd] = streamPair(local, withPort(a, a.port));
    so.connecting = true;
    so.connectError = undefined;
    const pending = this.#outbound.connect(
      host,
      a.port,
      hostEnd,
      guestEnd,
      timeoutMs(so.times.get(SockOption.connectTimeout)),
    );
    so.abortConnect = pending.abort;
    const settled = pending.result.then((errno) => {
      so.connecting = false;
      so.abortConnect = undefined;
      if (so.state === SockState.closed) {
        guestEnd.close();
        return NetErrno.connaborted;
      }
      if (errno === Errno.success) {
        so.stream = guestEnd;
        so.state = SockState.connected;
      } else {
        so.connectError = errno;
      }
      so.wake();
      return errno;
    });
    return (e.fdflags & FDFLAG_NONBLOCK) !== 0 ? NetErrno.inprogress : settled;
  }

  #epollCtl(epfd: number, op: number, fd: number, event: number): number {
    const ee = this.state.fd(epfd);
    if (ee === undefined) return Errno.badf;
    const set = ee.obj;
    if (!(set instanceof EpollSet)) return Errno.inval;
    const target = this.state.fd(fd);
    if (target === undefined) return Errno.badf;
    if (op === EpollCtl.del) {
      return set.interests.delete(fd) ? Errno.success : Errno.noent;
    }
    if (!this.#ok(event, EPOLL_EVENT_SIZE)) return Errno.fault;
    const events = this.mem.view.getUint32(event >>> 0, true);
    const data = this.mem.u8.slice((event >>> 0) + 8, (event >>> 0) + 32);
    const obj = target.obj ?? target;
    if (op === EpollCtl.add) {
      if (set.interests.has(fd)) return Errno.exist;
      set.interests.set(fd, { obj: obj as FdObject, events, data, seenGen: -1, disabled: false });
      return Errno.success;
    }
    if (op === EpollCtl.mod) {
      const i = set.interests.get(fd);
      if (i === undefined) return Errno.noent;
      i.events = events;
      i.data = data;
      i.seenGen = -1;
      i.disabled = false;
      return Errno.success;
    }
    return Errno.inval;
  }

  #epollWait(epfd: number, events: number, max: number, timeout: bigint, ret: number) {
    const ee = this.state.fd(epfd);
    if (ee === undefined) return Errno.badf;
    const set = ee.obj;
    if (!(set instanceof EpollSet)) return Errno.inval;
    max >>>= 0;
    if (max === 0) return Errno.inval;
    if (!this.#ok(events, max * EPOLL_EVENT_SIZE) || !this.#ok(ret, 4)) return Errno.fault;
    const check = (): number | undefined => {
      let count = 0;
      for (const [fd, i] of set.interests) {
        if (count >= max) break;
        if (i.disabled) continue;
        if (closedObj(i.obj) || this.state.fd(fd) === undefined) {
          set.interests.delete(fd);
          continue;
        }
        const r = readiness(i.obj);
        let ev = 0;
        if ((i.events & Epoll.in) !== 0 && r.read) ev |= Epoll.in;
        if ((i.events & Epoll.out) !== 0 && r.write) ev |= Epoll.out;
        if (r.hangup) ev |= Epoll.hup | (i.events & Epoll.rdhup);
        if (ev === 0) continue;
        if ((i.events & Epoll.et) !== 0) {
          const g = genOf(i.obj);
          if (g === i.seenGen) continue;
          i.seenGen = g;
        }
        if ((i.events & Epoll.oneshot) !== 0) i.disabled = true;
        this.mem.refresh();
        const p = (events >>> 0) + count * EPOLL_EVENT_SIZE;
        this.mem.u8.fill(0, p, p + EPOLL_EVENT_SIZE);
        this.mem.view.setUint32(p, ev, true);
        this.mem.u8.set(i.data, p + 8);
        count++;
      }
      if (count === 0) return undefined;
      this.#writeU32(ret, count);
      return Errno.success;
    };
    const forever = timeout < 0n || timeout >= 0x7fff_ffff_ffff_ffffn;
    const ms = forever ? undefined : Number(timeout / 1_000_000n);
    const sources: Waitable[] = [];
    for (const i of set.interests.values()) {
      const src = sourceOf(i.obj);
      if (src !== undefined) sources.push(src);
      if (i.obj instanceof Socket) sources.push(i.obj);
    }
    const r = this.#until(sources, check, ms);
    const none = (): number => {
      this.#writeU32(ret, 0);
      return Errno.success;
    };
    if (r instanceof Promise) return r.then((v) => v ?? none());
    return r ?? none();
  }

  /** poll_oneoff over every kind of fd and clock; waits without blocking the kernel. */
  #poll(inPtr: number, outPtr: number, nsubs: number, retN: number) {
    const m = this.mem;
    inPtr >>>= 0;
    outPtr >>>= 0;
    retN >>>= 0;
    const count = nsubs >>> 0;
    if (count === 0) return Errno.inval;
    if (
      !m.ok(inPtr, count * SUBSCRIPTION_SIZE) ||
      !m.ok(outPtr, count * EVENT_SIZE) ||
      !m.ok(retN, 4)
    ) {
      return Errno.fault;
    }
    const startNs = monotonicNow();
    interface Sub {
      userdata: bigint;
      type: number;
      fd: number;
      deadlineNs: bigint | undefined;
      bad: boolean;
    }
    const subs: Sub[] = [];
    const sources: Waitable[] = [];
    for (let i = 0; i < count; i++) {
      const p = inPtr + i * SUBSCRIPTION_SIZE;
      const type = m.view.getUint8(p + 8);
      const sub: Sub = {
        userdata: m.view.getBigUint64(p, true),
        type,
        fd: -1,
        deadlineNs: undefined,
        bad: false,
      };
      if (type === Eventtype.clock) {
        const id = m.view.getUint32(p + 16, true);
        const t = m.view.getBigUint64(p + 24, true);
        const abs = (m.view.getUint16(p + 40, true) & SUBCLOCK_ABSTIME) !== 0;
        if (id !== Clockid.realtime && id !== Clockid.monotonic) sub.bad = true;
        else if (abs) sub.deadlineNs = startNs + (t - (clockNow(id) as bigint));
        else sub.deadlineNs = t <= 1n ? startNs : startNs + t;
      } else if (type === Eventtype.fdRead || type === Eventtype.fdWrite) {
        sub.fd = m.view.getUint32(p + 16, true) | 0;
        const obj = this.state.fd(sub.fd)?.obj;
        if (obj !== undefined) {
          const src = sourceOf(obj);
          if (src !== undefined) sources.push(src);
          if (obj instanceof Socket) sources.push(obj);
        }
      } else {
        sub.bad = true;
      }
      subs.push(sub);
    }
    const check = (final: boolean): number | undefined => {
      const now = monotonicNow();
      const ready: { sub: Sub; error: number; nbytes: number; flags: number }[] = [];
      for (const sub of subs) {
        if (sub.bad) {
          ready.push({ sub, error: Errno.inval, nbytes: 0, flags: 0 });
        } else if (sub.type === Eventtype.clock) {
          if (sub.deadlineNs! <= now) ready.push({ sub, error: 0, nbytes: 0, flags: 0 });
        } else {
          const e = this.state.fd(sub.fd);
          if (e === undefined) {
            ready.push({ sub, error: Errno.badf, nbytes: 0, flags: 0 });
            continue;
          }
          const r =
            e.obj === undefined
              ? { read: true, write: true, hangup: false, nbytes: 0 }
              : readiness(e.obj);
          const ok = sub.type === Eventtype.fdRead ? r.read : r.write;
          if (ok || r.hangup) {
            ready.push({ sub, error: 0, nbytes: r.nbytes, flags: r.hangup ? EVENTRW_HANGUP : 0 });
          }
        }
      }
      if (ready.length === 0 && !final) return undefined;
      m.refresh();
      let k = 0;
      for (const r of ready) {
        const ev = outPtr + k * EVENT_SIZE;
        m.u8.fill(0, ev, ev + EVENT_SIZE);
        m.view.setBigUint64(ev, r.sub.userdata, true);
        m.view.setUint16(ev + 8, r.error, true);
        m.view.setUint8(ev + 10, r.sub.type > Eventtype.fdWrite ? 0 : r.sub.type);
        m.view.setBigUint64(ev + 16, BigInt(r.nbytes), true);
        m.view.setUint16(ev + 24, r.flags, true);
        k++;
      }
      m.view.setUint32(retN, k, true);
      return Errno.success;
    };
    let earliest: bigint | undefined;
    for (const s of subs) {
      if (s.deadlineNs !== undefined && (earliest === undefined || s.deadlineNs < earliest)) {
        earliest = s.deadlineNs;
      }
    }
    const first = check(false);
    if (first !== undefined) return first;
    const ms =
      earliest === undefined
        ? undefined
        : Math.max(0, Number((earliest - monotonicNow()) / 1_000_000n)) + 1;
    const r = this.#until(sources, () => check(false), ms);
    const final = (v: number | undefined): number => v ?? check(true)!;
    return r instanceof Promise ? r.then(final) : final(r);
  }
}
