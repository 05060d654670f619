/**
 * The objects behind a WASIX instance's socket, pipe and event fds, all in the kernel thread's
 * memory: byte streams between two ends (a guest socket and the host's HTTP client, two guest
 * sockets, a pipe), listeners with their backlogs, event counters. Nothing here touches a real
 * network: the host's forwarder and `weft run --serve` feed connections into listeners and read
 * what the guest writes back, and `outbound.ts` bridges a granted outbound connection to the
 * host's end of a stream.
 *
 * Every object is `Waitable`: a change of state (bytes arrived, room freed, peer closed, a
 * connection queued) bumps its generation and runs its waiters, which re-check what they wait
 * for. Blocking calls and poll/epoll are built on that alone.
 */
import { Filetype } from '../wasi/constants.ts';
import type { FdObject } from '../wasi/state.ts';

/** Bytes queued towards one end before its writer gets `again` (or waits). */
export const STREAM_HIGH_WATER = 4 * 1024 * 1024;
const EMPTY = new Uint8Array(0);
/** Connections a listener queues before `connect` is refused. */
export const MAX_BACKLOG = 1024;

export type Waiter = () => void;

export class Waitable {
  /** Bumped on every change; epoll's edge-triggered mode reports an fd again only after one. */
  gen = 0;
  #waiters: Waiter[] = [];

  addWaiter(w: Waiter): void {
    this.#waiters.push(w);
  }

  removeWaiter(w: Waiter): void {
    const i = this.#waiters.indexOf(w);
    if (i >= 0) this.#waiters.splice(i, 1);
  }

  /** Something changed: run every waiter (each re-checks its own condition). */
  wake(): void {
    this.gen++;
    if (this.#waiters.length === 0) return;
    for (const w of this.#waiters.slice()) w();
  }
}

/** An IPv4/IPv6 socket address as the kernel keeps it. */
export interface SockAddr {
  /** 1 inet4, 2 inet6 (WASIX `address_family`). */
  family: number;
  /** 4 or 16 bytes, network order. */
  addr: Uint8Array;
  port: number;
}

export const ANY4: SockAddr = { family: 1, addr: new Uint8Array(4), port: 0 };
export const LOOPBACK4: SockAddr = { family: 1, addr: Uint8Array.of(127, 0, 0, 1), port: 0 };

export function withPort(a: SockAddr, port: number): SockAddr {
  return { family: a.family, addr: a.addr, port };
}

/** What a JS consumer of a stream end (the host's HTTP client, a TCP relay) is told. */
export interface StreamSink {
  /** Bytes the guest wrote; owned by the callee. */
  data(bytes: Uint8Array): void;
  /** The guest shut down writing or closed; `reset` when it closed with unread input. */
  end(reset: boolean): void;
}

/**
 * One end of a byte stream. Bytes written here are queued at the peer (`rx`), or handed at once
 * to the peer's `sink` when a JS consumer owns it.
 */
export class StreamEnd extends Waitable {
  peer: StreamEnd | undefined = undefined;
  readonly rx: Uint8Array[] = [];
  /** Offset of the first unread byte of `rx[0]`. */
  rxHead = 0;
  rxBytes = 0;
  /** The peer shut down writing or closed: reads return 0 once `rx` is drained. */
  rxEof = false;
  /** The peer closed with data unread (or the connection was aborted): `connreset`. */
  reset = false;
  /** This end shut down writing. */
  txShut = false;
  closed = false;
  sink: StreamSink | undefined = undefined;
  /**
   * The sink asked for no more bytes for now: they queue in `rx` as for a guest reader, so the
   * writer blocks at the high-water mark, until `resumeSink()` hands them over.
   */
  sinkPaused = false;
  /** Called when queued bytes are read, so a JS producer may resume. */
  onDrain: (() => void) | undefined = undefined;
  local: SockAddr;
  remote: SockAddr;

  constructor(local: SockAddr, remote: SockAddr) {
    super();
    this.local = local;
    this.remote = remote;
  }

  readable(): boolean {
    return this.rxBytes > 0 || this.rxEof || this.reset || this.closed;
  }

  /** Room at the peer for more bytes (JS sinks take everything). */
  room(): number {
    const p = this.peer;
    if (p === undefined || p.closed) return 0;
    if (p.sink !== undefined && !p.sinkPaused) return STREAM_HIGH_WATER;
    return Math.max(0, STREAM_HIGH_WATER - p.rxBytes);
  }

  writable(): boolean {
    const p = this.peer;
    return this.txShut || this.reset || p === undefined || p.closed || this.room() > 0;
  }

  /** The peer is gone (closed, or reset): writing fails with `pipe`. */
  peerGone(): boolean {
    const p = this.peer;
    return this.reset || p === undefined || p.closed;
  }

  /** Queue `bytes` (copied by the caller, now owned) at the peer. */
  send(bytes: Uint8Array): void {
    const p = this.peer;
    if (p === undefined || p.closed || bytes.length === 0) return;
    if (p.sink !== undefined && !p.sinkPaused) {
      p.sink.data(bytes);
      return;
    }
    p.rx.push(bytes);
    p.rxBytes += bytes.length;
    p.wake();
  }

  /**
   * Up to `max` queued bytes, taken off the queue unless `peek`: a view of the first chunk when
   * it holds them, else one copy.
   */
  receive(max: number, peek: boolean): Uint8Array {
    const n = Math.min(max, this.rxBytes);
    const first = this.rx[0];
    if (first === undefined || n <= 0) return EMPTY;
    let out: Uint8Array;
    if (first.length - this.rxHead >= n) {
      out = first.subarray(this.rxHead, this.rxHead + n);
    } else {
      out = new Uint8Array(n);
      let pos = 0;
      let head = this.rxHead;
      for (let i = 0; pos < n; i++, head = 0) {
        const c = this.rx[i]!;
        const len = Math.min(c.length - head, n - pos);
        out.set(c.subarray(head, head + len), pos);
        pos += len;
      }
    }
    if (!peek) {
      let left = n;
      while (left > 0) {
        const avail = this.rx[0]!.length - this.rxHead;
        if (avail > left) {
          this.rxHead += left;
          break;
        }
        this.rx.shift();
        this.rxHead = 0;
        left -= avail;
      }
      this.rxBytes -= n;
      // The writer may have been waiting for room.
      this.peer?.wake();
      this.onDrain?.();
    }
    return out;
  }

  shutdownWrite(): void {
    if (this.txShut) return;
    this.txShut = true;
    const p = this.peer;
    if (p !== undefined && !p.closed) {
      if (p.sink !== undefined && !p.sinkPaused) p.sink.end(false);
      else {
        p.rxEof = true;
        p.wake();
      }
    }
    this.wake();
  }

  /** Hand the bytes queued while paused to the sink (and the end, if it came), then go on. */
  resumeSink(): void {
    if (!this.sinkPaused) return;
    this.sinkPaused = false;
    const sink = this.sink;
    if (sink === undefined) return;
    if (this.rxBytes > 0) sink.data(this.receive(this.rxBytes, false).slice());
    if (this.rxEof && !this.closed) sink.end(this.reset);
  }

  /** The connection broke (a reset from the network): reads fail with `connreset` once the
   *  queued bytes are read, writes with `pipe`. */
  abort(): void {
    this.reset = true;
    this.rxEof = true;
    this.wake();
  }

  /** Close this end; unread input makes it an abortive close (the peer sees a reset). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const abort = this.rxBytes > 0 && !this.rxEof;
    this.rx.length = 0;
    this.rxBytes = 0;
    const p = this.peer;
    if (p !== undefined && !p.closed) {
      if (p.sink !== undefined && !p.sinkPaused) p.sink.end(abort);
      else {
        p.rxEof = true;
        if (abort) p.reset = true;
        p.wake();
      }
    }
    this.wake();
  }
}

/** Two connected ends; `a`'s writes arrive at `b` and the other way round. */
export function streamPair(aAddr: SockAddr, bAddr: SockAddr): [StreamEnd, StreamEnd] {
  const a = new StreamEnd(aAddr, bAddr);
  const b = new StreamEnd(bAddr, aAddr);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** A listening socket's queue of connections waiting for `accept`. */
export class Listener extends Waitable {
  readonly backlog: StreamEnd[] = [];
  closed = false;
  readonly addr: SockAddr;
  readonly capacity: number;

  constructor(addr: SockAddr, capacity: number) {
    super();
    this.addr = addr;
    this.capacity = Math.max(1, Math.min(capacity, MAX_BACKLOG));
  }

  /** Queue the server end of a new connection; false when the backlog is full or closed. */
  enqueue(end: StreamEnd): boolean {
    if (this.closed || this.backlog.length >= this.capacity) return false;
    this.backlog.push(end);
    this.wake();
    return true;
  }

  close(): void {
    this.closed = true;
    for (const end of this.backlog.splice(0)) end.close();
    this.wake();
  }
}

/** Socket state, as `sock_open` leaves it and as bind/listen/connect/accept move it on. */
export const SockState = { fresh: 0, listening: 1, connected: 2, closed: 3 } as const;

/** The fd object of a socket: its options and addresses, then its listener or stream. */
export class Socket extends Waitable implements FdObject {
  readonly filetype: number;
  refs = 1;
  readonly family: number;
  readonly type: number;
  readonly proto: number;
  state: number = SockState.fresh;
  bound: SockAddr | undefined = undefined;
  listener: Listener | undefined = undefined;
  stream: StreamEnd | undefined = undefined;
  /** `sock_set_opt_*` values, reported back by `sock_get_opt_*`. */
  readonly flags = new Map<number, boolean>();
  readonly times = new Map<number, bigint | undefined>();
  readonly sizes = new Map<number, bigint>();
  /** Set by the kernel when the socket listens: unregisters the port. */
  onClose: (() => void) | undefined = undefined;
  /** An outbound connect is under way (non-blocking, or a blocking one not yet settled). */
  connecting = false;
  /** Gives up on the connect under way (the socket was closed first). */
  abortConnect: (() => void) | undefined = undefined;
  /** Why the last connect failed (a WASIX errno): reads and writes report it. */
  connectError: number | undefined = undefined;

  constructor(family: number, type: number, proto: number) {
    super();
    this.family = family;
    this.type = type;
    this.proto = proto;
    this.filetype = type === 2 ? Filetype.socketDgram : Filetype.socketStream;
  }

  /** The object whose changes matter to a waiter on this socket. */
  source(): Waitable {
    return this.listener ?? this.stream ?? this;
  }

  readable(): boolean {
    if (this.listener !== undefined)
      return this.listener.backlog.length > 0 || this.listener.closed;
    if (this.stream !== undefined) return this.stream.readable();
    return this.state === SockState.closed || this.connectError !== undefined;
  }

  /** A connect that completes (or fails) makes the socket writable, as poll reports it. */
  writable(): boolean {
    if (this.stream !== undefined) return this.stream.writable();
    return this.state === SockState.closed || this.connectError !== undefined;
  }

  hangup(): boolean {
    const s = this.stream;
    if (s === undefined) return this.connectError !== undefined;
    return (s.rxEof || s.reset) && s.rxBytes === 0;
  }

  close(): void {
    this.state = SockState.closed;
    this.abortConnect?.();
    this.abortConnect = undefined;
    this.listener?.close();
    this.stream?.close();
    this.onClose?.();
    this.wake();
  }
}

/** An `fd_event` counter (eventfd): reads take the count (or 1, as a semaphore), writes add. */
export class EventCounter extends Waitable implements FdObject {
  readonly filetype = Filetype.unknown;
  refs = 1;
  value: bigint;
  readonly semaphore: boolean;

  constructor(initial: bigint, semaphore: boolean) {
    super();
    this.value = initial;
    this.semaphore = semaphore;
  }

  close(): void {
    this.wake();
  }
}

/** A pipe end: a stream end used one way. */
export class PipeEnd implements FdObject {
  readonly filetype = Filetype.unknown;
  refs = 1;
  readonly end: StreamEnd;
  readonly reading: boolean;

  constructor(end: StreamEnd, reading: boolean) {
    this.end = end;
    this.reading = reading;
  }

  close(): void {
    this.end.close();
  }
}
