/**
 * A WCGI worker thread: keeps compiled modules and file trees it was sent, and runs one fresh
 * instance per job. A guest that never returns is stopped by the main thread terminating this
 * worker; nothing here needs to be interruptible.
 */
import { parentPort } from 'node:worker_threads';
import { OutputLimitError, ReadOnlyTree, WasiContext } from '../wasi/index.ts';
import { MEMORY_IMPORT } from './prepare-module.ts';
import type { RunMsg, RunResultMsg, ToWorker } from './worker-protocol.ts';

interface CachedModule {
  module: WebAssembly.Module;
  memory?: { initial: number; maximum: number };
  /** Zeroed memories of `initial` pages, ready for the next instance. */
  spare: WebAssembly.Memory[];
}

/** Spare memories kept per module: one worker runs one instance at a time. */
const SPARE_MEMORIES = 2;
const PAGE_BYTES = 65536;
const modules = new Map<string, CachedModule>();
const trees = new Map<string, ReadOnlyTree>();
const port = parentPort!;
const EMPTY = new Uint8Array(0);

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
    if (cached.memory) {
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
  if (memory && cached.spare.length < SPARE_MEMORIES) {
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
      modules.set(
        msg.key,
        msg.memory
          ? { module: msg.module, memory: msg.memory, spare: [] }
          : { module: msg.module, spare: [] },
      );
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
