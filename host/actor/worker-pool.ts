/**
 * A fixed set of worker threads running WCGI jobs. Each worker runs one job at a time, in the
 * order it was sent them; up to PIPELINE_DEPTH jobs are handed to a worker ahead, so that a busy
 * worker finds its next job waiting instead of sleeping until the main thread wakes it (a thread
 * wake-up costs more than the hello actor itself on a small VM).
 *
 * Every job has a deadline. A job still queued then is dropped; a job still running then has its
 * worker terminated (the only way to stop a guest in an endless loop) and replaced, and the jobs
 * that were waiting behind it in that worker go back to the front of the queue. A worker skips a
 * job whose deadline passed while it waited.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { ErrorCode, TimeoutError, WeftError } from '../../lattice/index.ts';
import type {
  OutboundGrant,
  LoadTreeMsg,
  RunMsg,
  RunResultMsg,
  ToWorker,
} from './worker-protocol.ts';

const WORKER_URL = new URL('./wcgi-worker.ts', import.meta.url);
/** Jobs handed to one worker at once: the running one and those waiting behind it. */
export const PIPELINE_DEPTH = 3;

export interface PoolJob {
  moduleKey: string;
  module: WebAssembly.Module;
  memory: { initial: number; maximum: number } | undefined;
  reuse: { globals: string[] } | undefined;
  trees: { key: string; entries: LoadTreeMsg['entries'] }[];
  args: string[];
  env: Uint8Array;
  stdin: Uint8Array;
  stdoutLimitBytes: number;
  stderrLimitBytes: number;
  preopens: { guestPath: string; treeKey: string }[];
  /** `Date.now()` value after which the job fails with WEFT_ERR_TIMEOUT. */
  deadline: number;
  timeoutMs: number;
  outbound: OutboundGrant;
  /** The invocation's W3C traceparent (outbound requests carry its trace). */
  traceparent?: string;
}

interface Pending {
  job: PoolJob;
  resolve(r: RunResultMsg): void;
  reject(e: unknown): void;
  timer?: NodeJS.Timeout;
  jobId: number;
}

interface Slot {
  worker: Worker;
  loaded: Set<string>;
  /** Jobs sent to this worker, in order; the first is running (or about to). */
  inflight: Pending[];
}

export class WorkerPool {
  readonly size: number;
  readonly #log: Logger;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextJobId = 1;
  #closed = false;
  /** Workers replaced after a timeout or crash (for status and tests). */
  replaced = 0;

  constructor(opts: { size: number; log: Logger }) {
    this.size = opts.size;
    this.#log = opts.log;
    for (let i = 0; i < opts.size; i++) this.#slots.push(this.#spawn());
  }

  /** Jobs waiting for a worker: queued here, or handed to a worker behind its running job. */
  get queued(): number {
    let n = this.#queue.length;
    for (const s of this.#slots) n += Math.max(0, s.inflight.length - 1);
    return n;
  }

  run(job: PoolJob): Promise<RunResultMsg> {
    if (this.#closed) return Promise.reject(new WeftError(ErrorCode.Internal, 'host is stopping'));
    return new Promise<RunResultMsg>((resolve, reject) => {
      const p: Pending = { job, resolve, reject, jobId: this.#nextJobId++ };
      p.timer = setTimeout(() => this.#expire(p), Math.max(0, job.deadline - Date.now()));
      this.#queue.push(p);
      this.#pump();
    });
  }

  /** Drop a module or tree from every worker's cache. */
  forget(key: string): void {
    for (const s of this.#slots) {
      if (s.loaded.delete(key)) s.worker.postMessage({ type: 'forget', key } satisfies ToWorker);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const stopping = new WeftError(ErrorCode.Internal, 'host is stopping');
    for (const p of [...this.#queue.splice(0), ...this.#slots.flatMap((s) => s.inflight)]) {
      clearTimeout(p.timer);
      p.reject(stopping);
    }
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }

  #spawn(): Slot {
    // A larger young generation: each request leaves an instance and its buffers behind, and
    // fewer, larger scavenges cost less than many small ones.
    const worker = new Worker(WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: 48 } });
    const slot: Slot = { worker, loaded: new Set(), inflight: [] };
    worker.on('message', (msg: RunResultMsg) => {
      const i = slot.inflight.findIndex((p) => p.jobId === msg.jobId);
      if (i < 0) return;
      const [p] = slot.inflight.splice(i, 1);
      clearTimeout(p!.timer);
      p!.resolve(msg);
      this.#pump();
    });
    worker.on('error', (err) => {
      this.#log.error({ err }, 'WCGI worker failed');
      this.#replace(slot, new WeftError(ErrorCode.Internal, `worker failed: ${err.message}`));
    });
    worker.on('exit', (code) => {
      if (this.#closed || !this.#slots.includes(slot)) return;
      this.#log.error({ code }, 'WCGI worker exited');
      this.#replace(slot, new WeftError(ErrorCode.Internal, `worker exited with code ${code}`));
    });
    worker.unref();
    return slot;
  }

  /** Terminate a worker: its running job fails with `reason`, the rest are queued again. */
  #replace(slot: Slot, reason: unknown): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    const [running, ...waiting] = slot.inflight;
    slot.inflight = [];
    void slot.worker.terminate();
    this.replaced++;
    if (!this.#closed) this.#slots[i] = this.#spawn();
    this.#queue.unshift(...waiting);
    if (running) {
      clearTimeout(running.timer);
      running.reject(reason);
    }
    this.#pump();
  }

  #expire(p: Pending): void {
    const err = new TimeoutError(`invocation exceeded its timeout of ${p.job.timeoutMs} ms`, {
      details: { timeoutMs: p.job.timeoutMs },
    });
    const qi = this.#queue.indexOf(p);
    if (qi >= 0) {
      this.#queue.splice(qi, 1);
      p.reject(err);
      return;
    }
    const slot = this.#slots.find((s) => s.inflight.includes(p));
    if (!slot) return;
    if (slot.inflight[0] === p) {
      this.#replace(slot, err);
    } else {
      // Waiting behind another job: fail it now; the worker will skip it (its deadline passed).
      slot.inflight.splice(slot.inflight.indexOf(p), 1);
      p.reject(err);
    }
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let slot: Slot | undefined;
      for (const s of this.#slots) {
        if (
          s.inflight.length < PIPELINE_DEPTH &&
          (!slot || s.inflight.length < slot.inflight.length)
        ) {
          slot = s;
        }
      }
      if (!slot) return;
      const p = this.#queue.shift()!;
      slot.inflight.push(p);
      this.#send(slot, p);
    }
  }

  #send(slot: Slot, p: Pending): void {
    const { job } = p;
    if (!slot.loaded.has(job.moduleKey)) {
      slot.worker.postMessage({
        type: 'module',
        key: job.moduleKey,
        module: job.module,
        ...(job.memory ? { memory: job.memory } : {}),
        ...(job.reuse ? { reuse: job.reuse } : {}),
      } satisfies ToWorker);
      slot.loaded.add(job.moduleKey);
    }
    for (const t of job.trees) {
      if (slot.loaded.has(t.key)) continue;
      slot.worker.postMessage({ type: 'tree', key: t.key, entries: t.entries } satisfies ToWorker);
      slot.loaded.add(t.key);
    }
    const msg: RunMsg = {
      type: 'run',
      jobId: p.jobId,
      moduleKey: job.moduleKey,
      args: job.args,
      env: job.env,
      stdin: job.stdin,
      stdoutLimitBytes: job.stdoutLimitBytes,
      stderrLimitBytes: job.stderrLimitBytes,
      preopens: job.preopens,
      deadline: job.deadline,
      outbound: job.outbound,
      ...(job.traceparent === undefined ? {} : { traceparent: job.traceparent }),
    };
    slot.worker.postMessage(msg);
  }
}
