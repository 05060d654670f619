/**
 * `WasiContext`: one guest run's WASI world (argv, environ, stdio, preopened trees) and the
 * import object that exposes it. Built per request by the WCGI executor, so construction does
 * no encoding and no copying: argv/environ are encoded on first use, trees are shared, and the
 * output buffers start empty.
 */
import { validateArgsEnv } from './args.ts';
import { createImports, WASI_MODULE_NAMES } from './imports.ts';
import type { OutputLimitError } from './output.ts';
import { ProcExit } from './proc.ts';
import { MAX_OPEN_FDS, WasiState } from './state.ts';
import type { ReadOnlyTree } from './tree.ts';

export const DEFAULT_STDOUT_LIMIT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_STDERR_LIMIT_BYTES = 1024 * 1024;

const EMPTY_STDIN = new Uint8Array(0);

/** What a guest sees. */
export interface WasiOptions {
  /** Full argv; argv[0] is the program name. */
  args: readonly string[];
  /** Exactly this environment; nothing of the host's leaks in. Either the variables, or the
   *  bytes `encodeEnviron` made of them. */
  env: Readonly<Record<string, string>> | Uint8Array;
  /** The whole of stdin; reads past its end return 0 (EOF). Default: empty. */
  stdin?: Uint8Array;
  /** stdout cap in bytes (default 64 MiB). A write that would pass it throws `OutputLimitError`
   *  out of the guest. */
  stdoutLimitBytes?: number;
  /** stderr cap in bytes (default 1 MiB). Excess is dropped and `stderrTruncated` set; the guest
   *  runs on. */
  stderrLimitBytes?: number;
  /** Read-only mounts, numbered fd 3, 4, … in this order. `guestPath` is what the guest resolves
   *  absolute paths against (e.g. `/site`). */
  preopens?: readonly { guestPath: string; tree: ReadOnlyTree }[];
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
    }
    this.#s = new WasiState({
      args: opts.args,
      env: opts.env,
      stdin: opts.stdin ?? EMPTY_STDIN,
      stdoutLimitBytes: checkLimit(
        'stdoutLimitBytes',
        opts.stdoutLimitBytes,
        DEFAULT_STDOUT_LIMIT_BYTES,
      ),
      stderrLimitBytes: checkLimit(
        'stderrLimitBytes',
        opts.stderrLimitBytes,
        DEFAULT_STDERR_LIMIT_BYTES,
      ),
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
   * is no `_start`, and if called twice.
   */
  start(instance: WebAssembly.Instance): number {
    if (this.#started) throw new Error('WasiContext.start() runs _start once per context');
    const start = findStart(instance);
    this.bind(instance);
    this.#started = true;
    const s = this.#s;
    try {
      start();
    } catch (err) {
      if (err instanceof ProcExit) return err.code;
      throw err;
    }
    // `_start` returned, but a guest may have caught the exception that was to end it.
    const limit: OutputLimitError | undefined = s.outputLimit;
    if (limit !== undefined) throw limit;
    return s.exitCode ?? 0;
  }

  /** Bytes written to fd 1: a view of the capture buffer, valid until the next guest write. */
  stdout(): Uint8Array {
    return this.#s.stdout.view();
  }

  /** Bytes written to fd 2 (at most `stderrLimitBytes`): a view, like `stdout()`. */
  stderr(): Uint8Array {
    return this.#s.stderr.view();
  }

  /** True when stderr output was dropped because it passed `stderrLimitBytes`. */
  get stderrTruncated(): boolean {
    return this.#s.stderr.truncated;
  }
}
