/**
 * One long-lived WASIX instance, seen from the host's main thread: a kernel worker (which runs
 * the guest's threads) and the requests forwarded to it. It reports when the guest listens on
 * its port (ready), and ends for good on a crash, an exit, or a start timeout; whoever owns it
 * starts a new one.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import {
  ErrorCode,
  LiveBody,
  WeftError,
  type HeaderPair,
  type HttpRequestHead,
  type HttpResponseHead,
} from '../../lattice/index.ts';
import type { FromKernel, KernelData, ToKernel } from './protocol.ts';

const KERNEL_WORKER = new URL('./kernel-worker.ts', import.meta.url);

export type InstanceState = 'starting' | 'ready' | 'ended';

export interface InstanceOptions extends Omit<KernelData, 'pid'> {
  startTimeoutMs: number;
  log: Logger;
  /** Called once on ready, and once when the instance ends (with why). */
  onReady(): void;
  onEnded(reason: string, crashed: boolean): void;
  /** `publish` only: the real address being served. */
  onPublished?(host: string, port: number): void;
  /** Each line the guest writes to stdout or stderr (default: a log line `actor output`). */
  onOutput?(stream: 'stdout' | 'stderr', line: string): void;
}

export interface ForwardResult {
  head: HttpResponseHead;
  /** The whole body, or a streamed one still arriving. */
  body: Uint8Array | LiveBody;
}

interface InFlight {
  resolve(r: ForwardResult): void;
  reject(err: WeftError): void;
  timer: NodeJS.Timeout;
  /** Once the head of a streamed response came: its body. */
  live?: LiveBody;
}

let nextPid = 100;

/** `host:port` (`[v6]:port`); a resolve without a port hint is the name alone. */
function endpoint(host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return port === 0 ? h : `${h}:${port}`;
}

export class WasixInstance {
  state: InstanceState = 'starting';
  readonly pid = nextPid++;
  inFlight = 0;
  /** Why the instance ended, or (while starting) the last thing that went wrong. */
  reason: string | undefined = undefined;
  readonly #opts: InstanceOptions;
  readonly #worker: Worker;
  readonly #pending = new Map<number, InFlight>();
  #nextId = 1;
  #startTimer: NodeJS.Timeout | undefined;
  #lastStderr = '';

  constructor(opts: InstanceOptions) {
    this.#opts = opts;
    const {
      log: _log,
      onReady: _r,
      onEnded: _e,
      onPublished: _p,
      onOutput: _o,
      startTimeoutMs: _t,
      ...rest
    } = opts;
    const data: KernelData = { ...rest, pid: this.pid };
    this.#worker = new Worker(KERNEL_WORKER, { workerData: data });
    this.#worker.on('message', (m: FromKernel) => this.#onMessage(m));
    this.#worker.on('error', (err) =>
      this.#end(`the instance's kernel failed: ${String(err)}`, true),
    );
    this.#worker.on('exit', () => this.#end('the instance stopped', false));
    this.#startTimer = setTimeout(() => {
      if (this.state !== 'starting') return;
      const why = this.reason === undefined ? '' : ` (${this.reason})`;
      this.#end(
        `did not listen on port ${opts.servePort} within ${opts.startTimeoutMs} ms (limits.startTimeoutMs)${why}`,
        false,
      );
    }, opts.startTimeoutMs);
  }

  #onMessage(m: FromKernel): void {
    const log = this.#opts.log;
    switch (m.type) {
      case 'listening':
        if (m.port === this.#opts.servePort && this.state === 'starting') {
          clearTimeout(this.#startTimer);
          this.state = 'ready';
          log.info({ guestPid: this.pid, port: m.port }, 'instance listening');
          this.#opts.onReady();
        }
        return;
      case 'denied': {
        const granted = this.#opts.listenPorts.join(', ');
        this.reason = `listen on port ${m.port} denied: not granted by capabilities.sockets.listen or port (granted: ${granted})`;
        log.warn({ guestPid: this.pid, port: m.port }, this.reason);
        return;
      }
      case 'connect-denied':
        log.warn(
          {
            guestPid: this.pid,
            [m.op]: endpoint(m.host, m.port),
            reason: m.reason,
            ...(m.rule === undefined ? {} : { rule: m.rule }),
            ...(m.repeated > 0 ? { repeated: m.repeated } : {}),
          },
          `outbound ${m.op} denied`,
        );
        return;
      case 'threads-capped':
        log.warn(
          { guestPid: this.pid, maxThreads: m.max },
          `instance tried to run more than ${m.max} threads (limits.maxThreads); thread spawns now fail with EAGAIN`,
        );
        return;
      case 'log':
        if (m.stream === 'stderr') this.#lastStderr = m.text;
        if (this.#opts.onOutput !== undefined) this.#opts.onOutput(m.stream, m.text);
        else log.info({ guestPid: this.pid, stream: m.stream, line: m.text }, 'actor output');
        return;
      case 'response': {
        const p = this.#take(m.id);
        p?.resolve({ head: { status: m.status, headers: m.headers }, body: m.body });
        return;
      }
      case 'head': {
        const p = this.#pending.get(m.id);
        if (p === undefined) return;
        const id = m.id;
        const live = new LiveBody({
          ...(m.length === undefined ? {} : { length: m.length }),
          onFlow: (paused) => this.#post({ type: paused ? 'pause' : 'resume', id }),
        });
        live.onAbandon = () => {
          if (this.#take(id) !== undefined) this.#post({ type: 'cancel', id });
        };
        p.live = live;
        p.resolve({ head: { status: m.status, headers: m.headers }, body: live });
        return;
      }
      case 'body': {
        const p = m.end ? this.#take(m.id) : this.#pending.get(m.id);
        p?.live?.push(m.bytes);
        if (m.end) p?.live?.end();
        return;
      }
      case 'failure': {
        const p = this.#take(m.id);
        const err = new WeftError(m.code as ErrorCode, m.message, { details: m.details ?? {} });
        if (p?.live !== undefined) {
          this.#opts.log.warn(
            { guestPid: this.pid, code: err.code, reason: err.message },
            'streamed response failed',
          );
          p.live.fail(err);
        } else p?.reject(err);
        return;
      }
      case 'exit': {
        const why = this.reason === undefined ? '' : ` after: ${this.reason}`;
        const tail = this.#lastStderr ? `; last stderr: ${this.#lastStderr.slice(0, 300)}` : '';
        this.#end(`exited with code ${m.code}${why}${tail}`, m.code !== 0);
        return;
      }
      case 'crash':
        this.#end(`crashed: ${m.message}`, true);
        return;
      case 'published':
        this.#opts.onPublished?.(m.host, m.port);
        return;
      case 'publish-failed':
        this.#end(`could not listen on the published address: ${m.message}`, false);
        return;
    }
  }

  #take(id: number): InFlight | undefined {
    const p = this.#pending.get(id);
    if (p === undefined) return undefined;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    this.inFlight--;
    return p;
  }

  /** Forward one request; rejects with a WeftError (timeout 504, crash 502, bad response 502). */
  request(
    head: HttpRequestHead,
    body: Uint8Array,
    extra: HeaderPair[],
    deadline: number,
    timeoutMs: number,
  ): Promise<ForwardResult> {
    if (this.state === 'ended') {
      return Promise.reject(
        new WeftError(ErrorCode.InstanceCrashed, `the instance ${this.reason ?? 'ended'}`),
      );
    }
    const id = this.#nextId++;
    this.inFlight++;
    return new Promise<ForwardResult>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          const p = this.#take(id);
          if (p === undefined) return;
          this.#post({ type: 'cancel', id });
          const err = new WeftError(
            ErrorCode.Timeout,
            `the actor did not answer within its timeout of ${timeoutMs} ms`,
          );
          // A streamed response is cut at the timeout too: it bounds the whole invocation.
          if (p.live !== undefined) p.live.fail(err);
          else reject(err);
        },
        Math.max(0, deadline - Date.now()),
      );
      this.#pending.set(id, { resolve, reject, timer });
      this.#post({ type: 'request', id, head, body, extra });
    });
  }

  #post(m: ToKernel): void {
    this.#worker.postMessage(m);
  }

  #end(reason: string, crashed: boolean): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.reason = reason;
    clearTimeout(this.#startTimer);
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(p.timer);
      this.inFlight--;
      const err = new WeftError(
        ErrorCode.InstanceCrashed,
        `the instance ${reason} before answering (the request may have been partly processed)`,
      );
      if (p.live !== undefined) p.live.fail(err);
      else p.reject(err);
    }
    void this.#worker.terminate();
    this.#opts.onEnded(reason, crashed);
  }

  /** End the instance now; requests in flight fail. */
  stop(): Promise<void> {
    this.#end('was stopped', false);
    return this.#worker.terminate().then(() => undefined);
  }
}

/**
 * `weft run` of a WASIX module: run it to completion with stdout and stderr passed through;
 * resolves with its exit code (134 after a trap). stdin is empty.
 */
export function runWasixCommand(opts: {
  module: WebAssembly.Module;
  memory: { initial: number; maximum: number };
  args: string[];
  env: Record<string, string>;
  dirs: { host: string; guest: string }[];
  /** Outbound socket grants (`--allow-connect`). */
  connect?: string[];
  write(fd: 1 | 2, bytes: Uint8Array): void;
  onTrap(message: string): void;
  /** A connect or resolve the grants refused, as one line. */
  onDenied?(message: string): void;
}): Promise<number> {
  const data: KernelData = {
    module: opts.module,
    memory: opts.memory,
    args: opts.args,
    env: opts.env,
    trees: [],
    hostDirs: opts.dirs,
    listenPorts: [],
    connect: opts.connect ?? [],
    servePort: 0,
    pid: nextPid++,
    maxThreads: 256,
    maxResponseBytes: 0,
    maxConnections: 0,
    rawOutput: true,
  };
  const worker = new Worker(KERNEL_WORKER, { workerData: data });
  return new Promise((resolve) => {
    const done = (code: number): void => {
      void worker.terminate();
      resolve(code);
    };
    worker.on('message', (m: FromKernel) => {
      if (m.type === 'output') opts.write(m.fd, m.bytes);
      else if (m.type === 'connect-denied') {
        opts.onDenied?.(`${m.op} ${endpoint(m.host, m.port)} denied: ${m.reason}`);
      } else if (m.type === 'exit') done(m.code);
      else if (m.type === 'crash') {
        opts.onTrap(m.message);
        done(134);
      }
    });
    worker.on('error', (err) => {
      opts.onTrap(String(err));
      done(134);
    });
  });
}
