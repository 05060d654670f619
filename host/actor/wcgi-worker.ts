/**
 * A WCGI worker thread: keeps the compiled modules and file trees it was sent, and runs each job
 * on an instance in the state instantiation leaves it in. A guest that never returns is stopped
 * by the main thread terminating this worker; nothing here needs to be interruptible.
 *
 * Where prepare-module.ts marked a module reusable, an instance serves one request after another:
 * after each run its memory is copied back from the snapshot taken right after instantiation and
 * its mutable globals are set back to their first values, so the next run sees exactly what a
 * fresh instance would. An instance whose memory or tables grew, or whose run failed, is dropped.
 * Otherwise each job gets a fresh instance on a recycled, zeroed memory.
 */
import { parentPort } from 'node:worker_threads';
import { OutputLimitError, ReadOnlyTree, WasiContext } from '../wasi/index.ts';
import { OutboundSession } from '../outbound/guest-http.ts';
import { OutboundPolicy, WEFT_HTTP_MODULE } from '../../lattice/index.ts';
import { MEMORY_IMPORT } from './prepare-module.ts';
import type { OutboundGrant, RunMsg, RunResultMsg, ToWorker } from './worker-protocol.ts';

/** An instance kept between runs, with what it takes to put it back as it was. */
interface Reusable {
  instance: WebAssembly.Instance;
  memory: WebAssembly.Memory;
  /** The memory as instantiation left it. */
  snapshot: Uint8Array;
  globals: { global: WebAssembly.Global; value: unknown }[];
  tables: { table: WebAssembly.Table; length: number }[];
  /** Where the instance's WASI imports forward to: the current run's context. */
  target: { ns: WebAssembly.ModuleImports | undefined };
}

interface CachedModule {
  module: WebAssembly.Module;
  memory?: { initial: number; maximum: number };
  reuse?: { globals: string[] };
  /** Zeroed memories of `initial` pages, ready for the next fresh instance. */
  spare: WebAssembly.Memory[];
  /** Reset instances, ready for the next run. */
  idle: Reusable[];
  /** Imports `weft_http`: runs through JSPI, as a fresh instance each time. */
  outbound: boolean;
}

/** Spare memories and idle instances kept per module: one worker runs one job at a time. */
const SPARE_PER_MODULE = 2;
const PAGE_BYTES = 65536;
const modules = new Map<string, CachedModule>();
const trees = new Map<string, ReadOnlyTree>();
const port = parentPort!;
const EMPTY = new Uint8Array(0);

/** Instantiate a reusable instance whose WASI imports call whatever context it is given. */
function newReusable(cached: CachedModule): Reusable {
  const target: Reusable['target'] = { ns: undefined };
  const imports: WebAssembly.Imports = {};
  for (const imp of WebAssembly.Module.imports(cached.module)) {
    if (imp.kind !== 'function') continue;
    const name = imp.name;
    // Fixed arity: WASI calls take at most 9 arguments, and a rest parameter would allocate.
    (imports[imp.module] ??= {})[name] = (
      a: unknown,
      b: unknown,
      c: unknown,
      d: unknown,
      e: unknown,
      f: unknown,
      g: unknown,
      h: unknown,
      i: unknown,
    ) => (target.ns![name] as (...args: unknown[]) => unknown)(a, b, c, d, e, f, g, h, i);
  }
  const memory = new WebAssembly.Memory(cached.memory!);
  imports[MEMORY_IMPORT.module] = { [MEMORY_IMPORT.name]: memory };
  const instance = new WebAssembly.Instance(cached.module, imports);
  const exports = instance.exports;
  return {
    instance,
    memory,
    snapshot: new Uint8Array(memory.buffer).slice(),
    globals: cached.reuse!.globals.map((n) => {
      const global = exports[n] as WebAssembly.Global;
      return { global, value: global.value };
    }),
    tables: Object.values(exports)
      .filter((e): e is WebAssembly.Table => e instanceof WebAssembly.Table)
      .map((table) => ({ table, length: table.length })),
    target,
  };
}

/** Put a used instance back as instantiation left it; false when that is not possible. */
function reset(r: Reusable): boolean {
  if (r.memory.buffer.byteLength !== r.snapshot.byteLength) return false;
  if (r.tables.some((t) => t.table.length !== t.length)) return false;
  new Uint8Array(r.memory.buffer).set(r.snapshot);
  for (const g of r.globals) g.global.value = g.value;
  r.target.ns = undefined;
  return true;
}

/** Policies by grant: parsed once per allowlist, not per run. */
const policies = new Map<string, OutboundPolicy>();

function policyFor(grant: OutboundGrant): OutboundPolicy {
  const key = grant.allow.join('\n');
  let p = policies.get(key);
  if (p === undefined) {
    p = new OutboundPolicy(grant.allow);
    if (policies.size > 64) policies.clear();
    policies.set(key, p);
  }
  return p;
}

/** Run a job: synchronously, or through JSPI for a module that imports `weft_http`. */
function run(msg: RunMsg): RunResultMsg | Promise<RunResultMsg> {
  const result: RunResultMsg = {
    type: 'result',
    jobId: msg.jobId,
    exitCode: -1,
    stdout: EMPTY,
    stderr: EMPTY,
    stderrTruncated: false,
    startUs: 0,
    runUs: 0,
  };
  if (Date.now() > msg.deadline) {
    result.failure = { kind: 'expired' };
    return result;
  }
  const cached = modules.get(msg.moduleKey);
  if (!cached) {
    result.failure = { kind: 'instantiate', message: `module ${msg.moduleKey} not loaded` };
    return result;
  }
  const t0 = performance.now();
  let ctx: WasiContext;
  let instance: WebAssembly.Instance;
  let memory: WebAssembly.Memory | undefined;
  let reusable: Reusable | undefined;
  let session: OutboundSession | undefined;
  try {
    const preopens = msg.preopens.map((p) => {
      const tree = trees.get(p.treeKey);
      if (!tree) throw new Error(`file tree ${p.treeKey} not loaded`);
      return { guestPath: p.guestPath, tree };
    });
    ctx = new WasiContext({
      args: msg.args,
      env: msg.env,
      stdin: msg.stdin,
      stdoutLimitBytes: msg.stdoutLimitBytes,
      stderrLimitBytes: msg.stderrLimitBytes,
      preopens,
    });
    if (cached.outbound) {
      memory = cached.memory
        ? (cached.spare.pop() ?? new WebAssembly.Memory(cached.memory))
        : undefined;
      const own = memory;
      session = new OutboundSession(
        {
          policy: policyFor(msg.outbound),
          deadline: msg.deadline,
          maxRequests: msg.outbound.maxRequests,
          maxRequestBytes: msg.outbound.maxRequestBytes,
          maxResponseBytes: msg.outbound.maxResponseBytes,
          ...(msg.traceparent === undefined ? {} : { traceparent: msg.traceparent }),
        },
        () => own ?? (instance.exports['memory'] as WebAssembly.Memory),
      );
      instance = new WebAssembly.Instance(cached.module, {
        ...ctx.imports,
        [WEFT_HTTP_MODULE]: session.imports(),
        ...(memory ? { [MEMORY_IMPORT.module]: { [MEMORY_IMPORT.name]: memory } } : {}),
      });
    } else if (cached.reuse) {
      reusable = cached.idle.pop() ?? newReusable(cached);
      reusable.target.ns = ctx.imports['wasi_snapshot_preview1'];
      instance = reusable.instance;
    } else if (cached.memory) {
      memory = cached.spare.pop() ?? new WebAssembly.Memory(cached.memory);
      instance = new WebAssembly.Instance(cached.module, {
        ...ctx.imports,
        [MEMORY_IMPORT.module]: { [MEMORY_IMPORT.name]: memory },
      });
    } else {
      instance = new WebAssembly.Instance(cached.module, ctx.imports);
    }
  } catch (err) {
    result.failure = { kind: 'instantiate', message: (err as Error).message };
    return result;
  }
  const t1 = performance.now();
  result.startUs = (t1 - t0) * 1000;
  const failed = (err: unknown): void => {
    result.failure =
      err instanceof OutputLimitError
        ? { kind: 'output-limit', limitBytes: err.limitBytes }
        : { kind: 'trap', message: (err as Error).message ?? String(err) };
  };
  const done = () => finish(result, t1, ctx, cached, memory, reusable);
  if (session !== undefined) {
    const s = session;
    return ctx
      .startAsync(instance)
      .then(
        (code) => void (result.exitCode = code),
        (err: unknown) => failed(err),
      )
      .then(() => {
        s.close();
        if (s.records.length > 0) result.outbound = s.records;
        return done();
      });
  }
  try {
    result.exitCode = ctx.start(instance);
  } catch (err) {
    failed(err);
  }
  return done();
}

/** After a run: copy out its output, and keep its instance or memory for the next one. */
function finish(
  result: RunResultMsg,
  t1: number,
  ctx: WasiContext,
  cached: CachedModule,
  memory: WebAssembly.Memory | undefined,
  reusable: Reusable | undefined,
): RunResultMsg {
  result.runUs = (performance.now() - t1) * 1000;
  // Copy out of the context's growable buffers so the transfer moves exactly these bytes.
  result.stdout = ctx.stdout().slice();
  result.stderr = ctx.stderr().slice();
  result.stderrTruncated = ctx.stderrTruncated;
  // Reset now, not before the next run, so that no request's bytes stay in an idle instance.
  if (reusable && !result.failure && cached.idle.length < SPARE_PER_MODULE && reset(reusable)) {
    cached.idle.push(reusable);
  }
  if (memory && cached.spare.length < SPARE_PER_MODULE) {
    // A memory that grew cannot shrink back: only an untouched size is recycled, zeroed now so
    // that no byte of this request reaches the next one.
    if (memory.buffer.byteLength === cached.memory!.initial * PAGE_BYTES) {
      new Uint8Array(memory.buffer).fill(0);
      cached.spare.push(memory);
    }
  }
  return result;
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'module':
      modules.set(msg.key, {
        module: msg.module,
        ...(msg.memory ? { memory: msg.memory } : {}),
        ...(msg.reuse ? { reuse: msg.reuse } : {}),
        spare: [],
        idle: [],
        outbound: WebAssembly.Module.imports(msg.module).some((i) => i.module === WEFT_HTTP_MODULE),
      });
      break;
    case 'tree':
      trees.set(msg.key, ReadOnlyTree.fromEntries(msg.entries));
      break;
    case 'forget':
      modules.delete(msg.key);
      trees.delete(msg.key);
      break;
    case 'run':
      // One job at a time: a job that waits (outbound HTTP) holds back the next ones, which the
      // pool may already have sent, so that a timeout's termination ends the right job.
      if (busy) waiting.push(msg);
      else start(msg);
      break;
  }
});

let busy = false;
const waiting: RunMsg[] = [];

function post(r: RunResultMsg): void {
  const transfer: ArrayBuffer[] = [];
  if (r.stdout.byteLength > 0) transfer.push(r.stdout.buffer as ArrayBuffer);
  if (r.stderr.byteLength > 0) transfer.push(r.stderr.buffer as ArrayBuffer);
  port.postMessage(r, transfer);
}

function start(msg: RunMsg): void {
  const r = run(msg);
  if (!(r instanceof Promise)) {
    post(r);
    return;
  }
  busy = true;
  void r.then((res) => {
    post(res);
    busy = false;
    // Messages that arrived meanwhile, in order; a later waiting one may wait again.
    while (!busy && waiting.length > 0) start(waiting.shift()!);
  });
}
