/**
 * `WasiContext`: one guest run's WASI world (argv, environ, stdio, preopened trees) and the
 * import object that exposes it. Built per request by the WCGI executor, so construction does
 * no encoding and no copying: argv/environ are encoded on first use, trees are shared, and the
 * output buffers start empty.
 */
import { validateArgsEnv } from './args.ts';
import { HostDir } from './host-dir.ts';
import { createImports, WASI_MODULE_NAMES } from './imports.ts';
import { MemoryTree } from './memory-tree.ts';
import {
  OutputBuffer,
  type OutputLimitError,
  type OutputSink,
  type StdinSource,
  UNLIMITED_BYTES,
} from './output.ts';
import { ProcExit } from './proc.ts';
import { MAX_OPEN_FDS, WasiState } from './state.ts';
import { ReadOnlyTree } from './tree.ts';

export const DEFAULT_STDOUT_LIMIT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_STDERR_LIMIT_BYTES = 1024 * 1024;

const EMPTY_STDIN = new Uint8Array(0);

/** Something to mount as a preopen. */
export type WasiTree = ReadOnlyTree | MemoryTree | HostDir;

/** One preopened directory. */
export interface WasiPreopen {
  /** What the guest resolves absolute paths against, e.g. `/site`. */
  guestPath: string;
  tree: WasiTree;
}

/** Which stdio fds claim to be terminals; see `WasiOptions.tty`. */
export interface WasiTty {
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
}

/** What a guest sees. */
export interface WasiOptions {
  /** Full argv; argv[0] is the program name. */
  args: readonly string[];
  /** Exactly this environment; nothing of the host's leaks in. Either the variables, or the
   *  bytes `encodeEnviron` made of them. */
  env: Readonly<Record<string, string>> | Uint8Array;
  /** The whole of stdin, after which reads return 0 (EOF); or a source read as the guest reads,
   *  e.g. `{ read: (buf) => fs.readSync(0, buf) }`. Default: empty. */
  stdin?: Uint8Array | StdinSource;
  /** Stream stdout to this sink instead of capturing it (`stdout()` then stays empty). */
  stdout?: OutputSink;
  /** Stream stderr to this sink instead of capturing it (`stderr()` then stays empty). */
  stderr?: OutputSink;
  /** stdout cap in bytes (default 64 MiB when captured, none when streamed). A write that would
   *  pass it throws `OutputLimitError` out of the guest. */
  stdoutLimitBytes?: number;
  /** stderr cap in bytes (default 1 MiB when captured, none when streamed). Excess is dropped
   *  and `stderrTruncated` set; the guest runs on. */
  stderrLimitBytes?: number;
  /** Report stdio fds as terminals (`character_device`, which makes wasi-libc's isatty() true
   *  and its stdout line-buffered): `true` for all three, or per fd. Default: none. */
  tty?: boolean | WasiTty;
  /** Mounts, numbered fd 3, 4, … in this order: `ReadOnlyTree`, `MemoryTree` or `HostDir`. */
  preopens?: readonly WasiPreopen[];
}

function ttyMask(tty: boolean | WasiTty | undefined): number {
  if (tty === undefined || tty === false) return 0;
  if (tty === true) return 0b111;
  return (
    (tty.stdin === true ? 1 : 0) | (tty.stdout === true ? 2 : 0) | (tty.stderr === true ? 4 : 0)
  );
}

function checkSink(name: string, sink: OutputSink | undefined): OutputSink | undefined {
  if (sink !== undefined && typeof (sink as Partial<OutputSink>).write !== 'function') {
    throw new TypeError(`WASI ${name} must be an object with a write(bytes) method`);
  }
  return sink;
}

function checkLimit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`WASI ${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

/**
 * The `_start` export of an instance. Throws an Error naming the module's exports when there is
 * none (a reactor, or a library), since "not a command" is easier to act on than "not a function".
 */
export function findStart(instance: WebAssembly.Instance): () => unknown {
  const start = instance.exports['_start'];
  if (typeof start === 'function') return start as () => unknown;
  const names = Object.keys(instance.exports);
  throw new Error(
    `module has no _start export, so it is not a WASI command; it exports: ${names.join(', ') || 'nothing'}`,
  );
}

/** Names (`module.name`) of imports a module needs from modules other than the WASI ones. */
export function unknownImports(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.imports(module)
    .filter((i) => !WASI_MODULE_NAMES.includes(i.module))
    .map((i) => `${i.module}.${i.name}`);
}

/** A WASI preview1 world for one guest instance. */
export class WasiContext {
  readonly #s: WasiState;
  #imports: WebAssembly.Imports | undefined;
  #started = false;

  constructor(opts: WasiOptions) {
    validateArgsEnv(opts.args, opts.env);
    const preopens = opts.preopens ?? [];
    if (preopens.length > MAX_OPEN_FDS - 3) throw new TypeError('too many WASI preopens');
    for (const p of preopens) {
      if (p.guestPath === '' || p.guestPath.includes('\0')) {
        throw new TypeError(`WASI preopen path '${p.guestPath}' is empty or contains NUL`);
      }
      const t = p.tree;
      if (!(t instanceof ReadOnlyTree || t instanceof MemoryTree || t instanceof HostDir)) {
        throw new TypeError(
          `WASI preopen '${p.guestPath}' is not a ReadOnlyTree, MemoryTree or HostDir`,
        );
      }
    }
    const stdin = opts.stdin ?? EMPTY_STDIN;
    let source: StdinSource | undefined;
    // By shape, not `instanceof`: bytes from another realm are still bytes.
    if (typeof (stdin as Partial<StdinSource>).read === 'function') {
      source = stdin as StdinSource;
    } else if (!ArrayBuffer.isView(stdin)) {
      throw new TypeError('WASI stdin must be a Uint8Array or an object with a read(buf) method');
    }
    const stdoutSink = checkSink('stdout', opts.stdout);
    const stderrSink = checkSink('stderr', opts.stderr);
    const stdoutLimit = checkLimit(
      'stdoutLimitBytes',
      opts.stdoutLimitBytes,
      stdoutSink === undefined ? DEFAULT_STDOUT_LIMIT_BYTES : UNLIMITED_BYTES,
    );
    const stderrLimit = checkLimit(
      'stderrLimitBytes',
      opts.stderrLimitBytes,
      stderrSink === undefined ? DEFAULT_STDERR_LIMIT_BYTES : UNLIMITED_BYTES,
    );
    this.#s = new WasiState({
      args: opts.args,
      env: opts.env,
      stdin: source === undefined ? (stdin as Uint8Array) : EMPTY_STDIN,
      stdinSource: source,
      stdout: new OutputBuffer(stdoutLimit, stdoutSink),
      stderr: new OutputBuffer(stderrLimit, stderrSink),
      ttyMask: ttyMask(opts.tty),
      preopens,
    });
  }

  /** `{ wasi_snapshot_preview1, wasi_unstable }`, both the same 46 functions. Pass to
   *  `new WebAssembly.Instance(module, ctx.imports)`, spread into a larger object if need be. */
  get imports(): WebAssembly.Imports {
    return (this.#imports ??= createImports(this.#s));
  }

  /**
   * Point the imports at `instance`'s exported `memory`, without running anything. `start()`
   * does this itself; call it directly for reactors or to drive imports by hand. Until a memory
   * is bound, every guest pointer is out of bounds (`fault`).
   */
  bind(instance: WebAssembly.Instance): void {
    const memory = instance.exports['memory'];
    if (!(memory instanceof WebAssembly.Memory)) {
      throw new Error('module exports no memory named "memory", which WASI requires');
    }
    this.#s.mem.bind(memory);
  }

  /**
   * Bind the instance's memory and call `_start` (once per context). Returns the exit code: what
   * the guest passed to `proc_exit` (an i32, e.g. 3 for `exit(3)`), or 0 when `_start` returns.
   * Traps (`WebAssembly.RuntimeError`) and other exceptions propagate unchanged, as does
   * `OutputLimitError` when stdout passes its limit. Throws an Error naming the exports if there
   * is no `_start`, and if called twice. However it ends, the guest's fds are closed (`close()`).
   */
  start(instance: WebAssembly.Instance): number {
    const start = this.#begin(instance);
    try {
      start();
    } catch (err) {
      return this.#exitCodeOf(err);
    } finally {
      this.#s.closeAll();
    }
    return this.#returned();
  }

  /**
   * `start()` for a guest whose imports include JSPI suspending ones (`WebAssembly.Suspending`):
   * `_start` runs through `WebAssembly.promising`, and the exit code comes when it ends.
   */
  async startAsync(instance: WebAssembly.Instance): Promise<number> {
    const start = WebAssembly.promising(this.#begin(instance));
    try {
      await start();
    } catch (err) {
      return this.#exitCodeOf(err);
    } finally {
      this.#s.closeAll();
    }
    return this.#returned();
  }

  /** `_start`, with the memory bound; once per context. */
  #begin(instance: WebAssembly.Instance): () => unknown {
    if (this.#started) throw new Error('WasiContext.start() runs _start once per context');
    const start = findStart(instance);
    this.bind(instance);
    this.#started = true;
    return start;
  }

  /** `proc_exit`'s code; any other exception propagates. */
  #exitCodeOf(err: unknown): number {
    if (err instanceof ProcExit) return err.code;
    throw err;
  }

  /** `_start` returned, but a guest may have caught the exception that was to end it. */
  #returned(): number {
    const limit: OutputLimitError | undefined = this.#s.outputLimit;
    if (limit !== undefined) throw limit;
    return this.#s.exitCode ?? 0;
  }

  /**
   * Close every fd the guest has open, preopens and stdio included, releasing host file
   * descriptors of `HostDir` files and the bytes of unlinked `MemoryTree` files. `start()` does
   * this when the guest ends; call it after driving a reactor or imports by hand. Idempotent;
   * later guest calls on those fds get `badf`.
   */
  close(): void {
    this.#s.closeAll();
  }

  /** Bytes written to fd 1 (empty when stdout is streamed): a view of the capture buffer, valid
   *  until the next guest write. */
  stdout(): Uint8Array {
    return this.#s.stdout.view();
  }

  /** Bytes written to fd 2 (at most `stderrLimitBytes`; empty when streamed): a view, like
   *  `stdout()`. */
  stderr(): Uint8Array {
    return this.#s.stderr.view();
  }

  /** True when stderr output was dropped because it passed `stderrLimitBytes`. */
  get stderrTruncated(): boolean {
    return this.#s.stderr.truncated;
  }
}
