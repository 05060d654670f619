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
import { MEMORY_IMPORT } from './prepare-module.ts';
import type { RunMsg, RunResultMsg, ToWorker } from './worker-protocol.ts';

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

function run(msg: RunMsg): RunResultMsg {
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
    if (cached.reuse) {
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
  try {
    result.exitCode = ctx.start(instance);
  } catch (err) {
    result.failure =
      err instanceof OutputLimitError
        ? { kind: 'output-limit', limitBytes: err.limitBytes }
        : { kind: 'trap', message: (err as Error).message ?? String(err) };
  }
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
      });
      break;
    case 'tree':
      trees.set(msg.key, ReadOnlyTree.fromEntries(msg.entries));
      break;
    case 'forget':
      modules.delete(msg.key);
      trees.delete(msg.key);
      break;
    case 'run': {
      const r = run(msg);
      const transfer: ArrayBuffer[] = [];
      if (r.stdout.byteLength > 0) transfer.push(r.stdout.buffer as ArrayBuffer);
      if (r.stderr.byteLength > 0) transfer.push(r.stderr.buffer as ArrayBuffer);
      port.postMessage(r, transfer);
      break;
    }
  }
});
