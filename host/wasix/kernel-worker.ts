/**
 * The kernel thread of one WASIX instance: creates its shared memory and kernel, starts the
 * guest's main thread (and the threads it spawns, up to a cap), and forwards the host's HTTP
 * requests to the guest's listener over keep-alive connections. The host ends the instance by
 * terminating this worker, which ends every guest thread with it.
 *
 * A guest that can spawn threads runs each thread on a worker of its own, and this thread never
 * runs guest code. A guest that cannot (no spawn import) runs its one thread right here: a call
 * that must wait returns a promise, which suspends the guest (JSPI) and frees this event loop
 * until the call completes. Its calls are then plain function calls, with no thread to wake on
 * either side, which is most of what a request costs.
 */
import { createServer, type Socket as NetSocket } from 'node:net';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import {
  ErrorCode,
  WeftError,
  type HeaderPair,
  type HttpRequestHead,
} from '../../lattice/index.ts';
import { ResponseParser, serializeRequest } from '../proxy/http1.ts';
import { HostDir, ReadOnlyTree, type WasiPreopen } from '../wasi/index.ts';
import { ChannelServer, newChannel } from './channel.ts';
import { Kernel } from './kernel.ts';
import { LOOPBACK4, type StreamEnd } from './net.ts';
import { OutboundSockets, type ConnectDenial } from './outbound.ts';
import {
  callNames,
  type FromKernel,
  type GuestThreadData,
  type GuestThreadMsg,
  type KernelData,
  type ToKernel,
  WASIX_MODULES,
} from './protocol.ts';
import { guestImports, ProcExit, ThreadExit, threadCalls } from './thread-calls.ts';

const data = workerData as KernelData;
const GUEST_WORKER = new URL('./guest-worker.ts', import.meta.url);
/** Log lines are cut here. */
const MAX_LOG_LINE = 8 * 1024;

function post(msg: FromKernel, transfer?: ArrayBuffer[]): void {
  parentPort!.postMessage(msg, transfer ?? []);
}

const memory = new WebAssembly.Memory({
  initial: data.memory.initial,
  maximum: data.memory.maximum,
  shared: true,
});

/** Cuts guest output into log lines, or passes it on as it is (`rawOutput`). */
function lineSink(stream: 'stdout' | 'stderr'): { write(bytes: Uint8Array): void } {
  if (data.rawOutput === true) {
    const fd = stream === 'stdout' ? 1 : 2;
    return { write: (bytes) => post({ type: 'output', fd, bytes: bytes.slice() }) };
  }
  let pending = '';
  const decoder = new TextDecoder();
  return {
    write(bytes) {
      pending += decoder.decode(bytes.slice(), { stream: true });
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        post({ type: 'log', stream, text: pending.slice(0, Math.min(nl, MAX_LOG_LINE)) });
        pending = pending.slice(nl + 1);
      }
      if (pending.length > MAX_LOG_LINE) {
        post({ type: 'log', stream, text: pending.slice(0, MAX_LOG_LINE) });
        pending = '';
      }
    },
  };
}

// ---- threads -----------------------------------------------------------------------------

const names = callNames(data.module);
/** Spare guest workers kept for the next spawned thread. */
const MAX_IDLE_WORKERS = 8;

interface GuestWorker {
  worker: Worker;
  server: ChannelServer;
  /** The thread it runs, if any. */
  tid: number | undefined;
}

const threads = new Map<number, { gw: GuestWorker; ended: Promise<void>; done(): void }>();
const idleWorkers: GuestWorker[] = [];
let nextTid = 1;
let exited = false;
let cappedReported = false;

function finish(msg: FromKernel): void {
  if (exited) return;
  exited = true;
  for (const gw of [...[...threads.values()].map((t) => t.gw), ...idleWorkers]) {
    gw.server.stop();
    void gw.worker.terminate();
  }
  kernel.shutdown();
  post(msg);
}

function threadEnded(gw: GuestWorker): void {
  const tid = gw.tid;
  if (tid === undefined) return;
  gw.tid = undefined;
  const t = threads.get(tid);
  threads.delete(tid);
  t?.done();
}

function newGuestWorker(kind: 'main' | 'thread', tid: number, startArg: number): GuestWorker {
  const channel = newChannel();
  const server = new ChannelServer(channel, (fn, args) => {
    const name = names[fn];
    return name === undefined ? 52 : kernel.call(name, args);
  });
  const gd: GuestThreadData = { kind, module: data.module, memory, channel, tid, startArg };
  const gw: GuestWorker = { worker: new Worker(GUEST_WORKER, { workerData: gd }), server, tid };
  gw.worker.on('message', (m: GuestThreadMsg) => {
    if (m.type === 'trap') finish({ type: 'crash', message: m.message });
    else if (m.type === 'main-returned') finish({ type: 'exit', code: 0 });
    else if (m.type === 'thread-ended') {
      threadEnded(gw);
      if (!exited && idleWorkers.length < MAX_IDLE_WORKERS) idleWorkers.push(gw);
      else {
        server.stop();
        void gw.worker.terminate();
      }
    }
  });
  gw.worker.on('error', (err) => finish({ type: 'crash', message: String(err) }));
  gw.worker.on('exit', () => {
    server.stop();
    threadEnded(gw);
    const i = idleWorkers.indexOf(gw);
    if (i >= 0) idleWorkers.splice(i, 1);
  });
  return gw;
}

function startThread(kind: 'main' | 'thread', startArg: number): number | undefined {
  if (exited) return undefined;
  // The main thread doesn't count against the cap.
  if (kind === 'thread' && threads.size - (threads.has(1) ? 1 : 0) >= data.maxThreads) {
    if (!cappedReported) {
      cappedReported = true;
      post({ type: 'threads-capped', max: data.maxThreads });
    }
    return undefined;
  }
  const tid = nextTid++;
  let done!: () => void;
  const ended = new Promise<void>((r) => (done = r));
  let gw = kind === 'thread' ? idleWorkers.pop() : undefined;
  if (gw !== undefined) {
    gw.tid = tid;
    gw.worker.postMessage({ type: 'run', tid, startArg });
  } else {
    gw = newGuestWorker(kind, tid, startArg);
  }
  threads.set(tid, { gw, ended, done });
  return tid;
}

// ---- the kernel ----------------------------------------------------------------------------

const preopens: WasiPreopen[] = [
  ...data.trees.map((t) => ({ guestPath: t.guest, tree: ReadOnlyTree.fromEntries(t.entries) })),
  ...(data.hostDirs ?? []).map((d) => ({ guestPath: d.guest, tree: HostDir.open(d.host) })),
];

/** A refusal is reported once per this long for the same address, port and reason. */
const DENIAL_REPORT_INTERVAL_MS = 60_000;
const MAX_DENIAL_KEYS = 1024;
const denials = new Map<string, { at: number; repeated: number }>();

/** Report a refused connect or resolve; a guest retrying in a loop is reported once a minute. */
function connectDenied(d: ConnectDenial): void {
  const key = `${d.host}\n${d.port}\n${d.reason}`;
  const now = Date.now();
  const seen = denials.get(key);
  if (seen !== undefined && now - seen.at < DENIAL_REPORT_INTERVAL_MS) {
    seen.repeated++;
    return;
  }
  denials.delete(key);
  if (denials.size >= MAX_DENIAL_KEYS) denials.delete(denials.keys().next().value!);
  denials.set(key, { at: now, repeated: 0 });
  post({ type: 'connect-denied', ...d, repeated: seen?.repeated ?? 0 });
}

const kernel = new Kernel({
  memory,
  args: data.args,
  env: data.env,
  preopens,
  stdout: lineSink('stdout'),
  stderr: lineSink('stderr'),
  listenPorts: new Set(data.listenPorts),
  pid: data.pid,
  onListen(port) {
    post({ type: 'listening', port });
    if (port === data.servePort) pump();
  },
  onDenied(port) {
    post({ type: 'denied', port });
  },
  outbound: new OutboundSockets(data.connect ?? []),
  onConnectDenied: connectDenied,
  spawnThread: (startArg) => startThread('thread', startArg),
  joinThread: (tid) => threads.get(tid)?.ended ?? Promise.resolve(),
  exit: (code) => finish({ type: 'exit', code }),
});

// ---- forwarding ----------------------------------------------------------------------------

interface Conn {
  end: StreamEnd;
  parser: ResponseParser | undefined;
  request: Pending | undefined;
  dead: boolean;
}

interface Pending {
  id: number;
  bytes: Uint8Array;
  method: string;
  conn: Conn | undefined;
  /** The head went to the host; the body follows in pieces. */
  streaming: boolean;
  /** Starts streaming a response still incomplete this long after its head. */
  streamTimer: NodeJS.Timeout | undefined;
}

/**
 * A response is passed on whole when it is complete soon after its head, which is what almost
 * every response is; one still incomplete STREAM_AFTER_MS after its head, or with
 * STREAM_AFTER_BYTES of body waiting, is streamed from then on (server-sent events, long
 * downloads, a slow generator), so that the client sees its bytes as the guest writes them.
 */
const STREAM_AFTER_MS = 5;
const STREAM_AFTER_BYTES = 64 * 1024;

const idle: Conn[] = [];
const queue: Pending[] = [];
const byId = new Map<number, Pending>();
let open = 0;

function settle(p: Pending): void {
  byId.delete(p.id);
  clearTimeout(p.streamTimer);
}

function fail(p: Pending, err: WeftError): void {
  settle(p);
  post({ type: 'failure', id: p.id, code: err.code, message: err.message, details: err.details });
}

function drop(c: Conn): void {
  if (c.dead) return;
  c.dead = true;
  open--;
  const i = idle.indexOf(c);
  if (i >= 0) idle.splice(i, 1);
  c.end.close();
  pump();
}

function openConn(): Conn | undefined {
  const end = kernel.connect(data.servePort);
  if (end === undefined) return undefined;
  const c: Conn = { end, parser: undefined, request: undefined, dead: false };
  open++;
  end.sink = {
    data(bytes) {
      const p = c.request;
      if (p === undefined || c.parser === undefined) {
        // Bytes with no request outstanding: the connection can't be trusted with the next one.
        drop(c);
        return;
      }
      try {
        if (c.parser.push(bytes)) complete(c, p);
        else if (c.parser.headComplete) progress(c, p);
      } catch (err) {
        c.request = undefined;
        drop(c);
        fail(p, asWeftError(err));
      }
    },
    end(reset) {
      const p = c.request;
      c.request = undefined;
      if (p !== undefined && c.parser !== undefined) {
        try {
          c.parser.end();
          if (!reset) {
            complete(c, p, true);
            return;
          }
          fail(p, new WeftError(ErrorCode.InstanceCrashed, 'the actor reset the connection'));
        } catch (err) {
          fail(p, asWeftError(err));
        }
      }
      drop(c);
    },
  };
  return c;
}

function asWeftError(err: unknown): WeftError {
  return err instanceof WeftError ? err : new WeftError(ErrorCode.Internal, String(err));
}

function complete(c: Conn, p: Pending, closing = false): void {
  const parser = c.parser!;
  const r = parser.result();
  c.request = undefined;
  c.parser = undefined;
  settle(p);
  if (p.streaming) {
    const rest = r.body.slice();
    post({ type: 'body', id: p.id, bytes: rest, end: true }, [rest.buffer]);
  } else {
    const body = r.body;
    post(
      { type: 'response', id: p.id, status: r.status, headers: r.headers, body },
      body.byteOffset === 0 &&
        body.byteLength === body.buffer.byteLength &&
        !(body.buffer instanceof SharedArrayBuffer)
        ? [body.buffer as ArrayBuffer]
        : [],
    );
  }
  if (closing || !r.keepAlive || parser.leftover.length > 0) drop(c);
  else {
    idle.push(c);
    pump();
  }
}

/** More of an incomplete response arrived: pass it on if streaming, or decide to stream. */
function progress(c: Conn, p: Pending): void {
  const parser = c.parser!;
  if (p.streaming) {
    const bytes = parser.takeBody();
    if (bytes.length > 0) post({ type: 'body', id: p.id, bytes, end: false }, [bytes.buffer]);
  } else if (parser.untakenBytes >= STREAM_AFTER_BYTES) {
    startStreaming(c, p);
  } else {
    p.streamTimer ??= setTimeout(() => {
      if (c.request === p && !p.streaming) startStreaming(c, p);
    }, STREAM_AFTER_MS);
  }
}

function startStreaming(c: Conn, p: Pending): void {
  const parser = c.parser!;
  p.streaming = true;
  clearTimeout(p.streamTimer);
  const length = parser.declaredLength;
  post({
    type: 'head',
    id: p.id,
    status: parser.status!,
    headers: parser.headers,
    ...(length === undefined ? {} : { length }),
  });
  progress(c, p);
}

function send(c: Conn, p: Pending): void {
  p.conn = c;
  c.request = p;
  c.parser = new ResponseParser({ method: p.method, maxBodyBytes: data.maxResponseBytes });
  c.end.send(p.bytes);
}

function pump(): void {
  while (queue.length > 0) {
    if (!kernel.listening(data.servePort)) return;
    let c = idle.pop();
    if (c === undefined) {
      if (open >= data.maxConnections) return;
      c = openConn();
      if (c === undefined) return;
    }
    send(c, queue.shift()!);
  }
}

function request(id: number, head: HttpRequestHead, body: Uint8Array, extra: HeaderPair[]): void {
  let bytes: Uint8Array;
  try {
    bytes = serializeRequest(head, body, extra);
  } catch (err) {
    post({ type: 'failure', id, code: asWeftError(err).code, message: asWeftError(err).message });
    return;
  }
  const p: Pending = {
    id,
    bytes,
    method: head.method,
    conn: undefined,
    streaming: false,
    streamTimer: undefined,
  };
  byId.set(id, p);
  queue.push(p);
  pump();
}

function cancel(id: number): void {
  const p = byId.get(id);
  if (p === undefined) return;
  settle(p);
  const qi = queue.indexOf(p);
  if (qi >= 0) queue.splice(qi, 1);
  if (p.conn !== undefined && p.conn.request === p) {
    p.conn.request = undefined;
    drop(p.conn);
  }
}

/** The consumer of a streamed response is full (`pause`) or has room again. */
function flow(id: number, paused: boolean): void {
  const c = byId.get(id)?.conn;
  if (c === undefined || c.request?.id !== id) return;
  if (paused) c.end.sinkPaused = true;
  else c.end.resumeSink();
}

parentPort!.on('message', (m: ToKernel) => {
  if (m.type === 'request') request(m.id, m.head, m.body, m.extra);
  else if (m.type === 'cancel') cancel(m.id);
  else flow(m.id, m.type === 'pause');
});

// ---- `weft run --serve`: real TCP connections relayed to the guest ------------------------

function relay(sock: NetSocket): void {
  const remote = {
    ...LOOPBACK4,
    port: sock.remotePort ?? 0,
  };
  const end = kernel.connect(data.servePort, remote);
  if (end === undefined) {
    sock.destroy();
    return;
  }
  end.sink = {
    // TCP's own send buffer absorbs what the guest writes; it is never paused for it.
    data: (bytes) => sock.write(bytes),
    end: (reset) => (reset ? sock.destroy() : sock.end()),
  };
  const guestEnd = end.peer!;
  guestEnd.onDrain = () => {
    if (sock.isPaused() && guestEnd.rxBytes < 1024 * 1024) sock.resume();
  };
  sock.on('data', (chunk: Buffer) => {
    end.send(new Uint8Array(chunk));
    if (guestEnd.rxBytes > 4 * 1024 * 1024) sock.pause();
  });
  sock.on('end', () => end.shutdownWrite());
  sock.on('error', () => end.close());
  sock.on('close', () => end.close());
}

// ---- the guest's main thread -----------------------------------------------------------------

/** Imports that start a thread: a guest without them can only ever have its main thread. */
const SPAWN_CALLS = ['thread_spawn', 'thread_spawn_v2', 'thread-spawn'];

function canSpawn(module: WebAssembly.Module): boolean {
  return WebAssembly.Module.imports(module).some(
    (i) =>
      i.kind === 'function' && WASIX_MODULES.includes(i.module) && SPAWN_CALLS.includes(i.name),
  );
}

/** One kernel call for the guest thread running here; a kernel bug answers `io`. */
function kernelCall(name: string, args: (number | bigint)[]): number | Promise<number> {
  let r: number | Promise<number> | undefined;
  try {
    r = kernel.call(name, args);
  } catch {
    return 29;
  }
  if (r instanceof Promise)
    return r.then(
      (v) => v ?? 0,
      () => 29,
    );
  return r ?? 0;
}

/** Run the guest's only thread on this thread, suspended by JSPI whenever a call waits. */
function runHere(): void {
  const tid = nextTid++;
  const local = threadCalls({
    memory,
    tid: () => tid,
    blocking: 'async',
    procExit: (code) => void kernel.call('proc_exit', [code]),
  });
  const mayWait = new Set(['futex_wait', 'thread_sleep']);
  const imports = guestImports(data.module, memory, (name) => {
    const f = local[name];
    if (f !== undefined && !mayWait.has(name)) return f;
    return new WebAssembly.Suspending(
      f ?? ((...args: (number | bigint)[]) => kernelCall(name, args)),
    );
  });
  const crashed = (err: unknown) =>
    finish({
      type: 'crash',
      message: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    });
  let start: WebAssembly.ExportValue | undefined;
  try {
    start = new WebAssembly.Instance(data.module, imports).exports['_start'];
    if (typeof start !== 'function') throw new Error('module has no _start export');
  } catch (err) {
    crashed(err);
    return;
  }
  WebAssembly.promising(start as () => void)().then(
    () => finish({ type: 'exit', code: 0 }),
    (err: unknown) => {
      // proc_exit: the kernel has the code already. thread_exit of the only thread ends it.
      if (err instanceof ProcExit) return;
      if (err instanceof ThreadExit) finish({ type: 'exit', code: 0 });
      else crashed(err);
    },
  );
}

function startGuest(): void {
  if (canSpawn(data.module)) startThread('main', 0);
  else runHere();
}

if (data.publish !== undefined) {
  const { host, port } = data.publish;
  const server = createServer({ noDelay: true }, relay);
  server.on('error', (err) => post({ type: 'publish-failed', message: err.message }));
  server.listen(port, host, () => {
    const a = server.address();
    post({
      type: 'published',
      host,
      port: typeof a === 'object' && a !== null ? a.port : port,
    });
    // Started once the real address is known, so that it is known before the guest is ready.
    startGuest();
  });
} else {
  startGuest();
}
