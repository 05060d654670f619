/**
 * `weft run MODULE.wasm`: run a WASI command module the way `wasmtime run` does. The guest sees
 * exactly the environment given (nothing of the host's), argv[0] is the module's file name,
 * stdin/stdout/stderr are streamed through, host directories are mapped in only as asked (and
 * the guest can never leave them), and the exit code is the guest's: its `proc_exit` code, 0
 * when `_start` returns, 134 after a trap (as a shell reports SIGABRT).
 */
import { readFileSync, readSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { ModuleInvalidError, checkModule } from '../lattice/index.ts';
import { MEMORY_IMPORT, prepareModule, prepareSharedMemoryModule } from './actor/prepare-module.ts';
import { runWasixCommand } from './wasix/instance.ts';
import { HostDir, WasiContext } from './wasi/index.ts';

/** Exit code after a trap, like a process killed by SIGABRT. */
export const TRAP_EXIT_CODE = 134;

export interface RunCommandOptions {
  module: string;
  args: string[];
  env: Record<string, string>;
  /** Host directories mapped at guest paths, read-write. */
  dirs: { host: string; guest: string }[];
  /** Outbound socket grants for a WASIX module (`--allow-connect tcp://host:port`). */
  connect?: string[];
  /** Memory cap (default 4096 MiB, the most a 32-bit module can address). */
  memoryMiB?: number;
  /** Where a trap is reported (default: standard error). */
  onTrap?: (message: string) => void;
}

/** `--allow-connect` given for a module without sockets. */
export function socketsNeedWasix(module: string): ModuleInvalidError {
  return new ModuleInvalidError(
    `${module}: --allow-connect grants WASIX sockets, and this module imports no wasix_32v1 calls (a WASI preview1 module has no sockets)`,
  );
}

/** Stdio of this process as synchronous WASI sources and sinks. */
function fdSource(fd: number): { read(buf: Uint8Array): number } {
  return {
    read(buf) {
      for (;;) {
        try {
          return readSync(fd, buf, 0, buf.length, null);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EOF') return 0;
          // A non-blocking stdin (a terminal Node switched over) has no data yet: wait for it.
          if (code === 'EAGAIN') {
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
            continue;
          }
          throw err;
        }
      }
    },
  };
}

function fdSink(fd: number): { write(bytes: Uint8Array): void } {
  return {
    write(bytes) {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    },
  };
}

/** Run the module to completion; returns the exit code. Throws WEFT_ERR_MODULE_INVALID. */
export async function runCommand(opts: RunCommandOptions): Promise<number> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(opts.module);
  } catch (err) {
    throw new ModuleInvalidError(
      `cannot read ${opts.module}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const summary = await checkModule(bytes, opts.module);
  const onTrap = opts.onTrap ?? ((m: string) => writeSync(2, `weft: guest trapped: ${m}\n`));
  if (opts.connect?.length && !summary.wasix) throw socketsNeedWasix(opts.module);
  if (summary.wasix) {
    // WASIX (sockets, threads): the kernel-thread runtime of proxy actors, stdio passed through.
    const shared = prepareSharedMemoryModule(
      bytes,
      opts.memoryMiB ?? 4096,
      opts.module,
      '--memory-mib',
    );
    const sink = [fdSink(1), fdSink(2)] as const;
    return runWasixCommand({
      module: await WebAssembly.compile(shared.bytes),
      memory: shared.memory,
      args: [basename(opts.module), ...opts.args],
      env: opts.env,
      dirs: opts.dirs,
      connect: opts.connect ?? [],
      write: (fd, b) => sink[fd - 1]!.write(b),
      onTrap,
      onDenied: (m) => writeSync(2, `weft: ${m}\n`),
    });
  }
  const prepared = prepareModule(bytes, opts.memoryMiB ?? 4096, opts.module, '--memory-mib');
  const module = await WebAssembly.compile(prepared.bytes);
  const ctx = new WasiContext({
    args: [basename(opts.module), ...opts.args],
    env: opts.env,
    stdin: fdSource(0),
    stdout: fdSink(1),
    stderr: fdSink(2),
    preopens: opts.dirs.map((d) => ({ guestPath: d.guest, tree: HostDir.open(d.host) })),
  });
  const imports: WebAssembly.Imports = prepared.memory
    ? {
        ...ctx.imports,
        [MEMORY_IMPORT.module]: { [MEMORY_IMPORT.name]: new WebAssembly.Memory(prepared.memory) },
      }
    : ctx.imports;
  const instance = new WebAssembly.Instance(module, imports);
  try {
    return ctx.start(instance);
  } catch (err) {
    onTrap(`${(err as Error).name}: ${(err as Error).message}`);
    return TRAP_EXIT_CODE;
  }
}
