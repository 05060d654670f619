/**
 * Per-context state: the fd table, stdio, argv/environ and the exit status. Everything shared
 * between contexts (trees, constants, import signatures) lives elsewhere, so building a
 * context is a handful of small allocations.
 */
import { Rights, RIGHTS_ALL, RIGHTS_DIR, RIGHTS_STDIN, RIGHTS_STDOUT } from './constants.ts';
import { GuestMemory } from './memory.ts';
import type { OutputBuffer, OutputLimitError, StdinSource } from './output.ts';
import type { DirSnapshot, VDir, VFile } from './vfs.ts';

/** What an fd refers to. */
export const FdKind = {
  stdin: 0,
  stdout: 1,
  stderr: 2,
  file: 3,
  dir: 4,
  /** A socket, pipe, event counter or epoll set of a WASIX kernel (`obj`). */
  object: 5,
} as const;
export type FdKind = (typeof FdKind)[keyof typeof FdKind];

/**
 * Something other than a file that an fd can refer to (a WASIX kernel's sockets, pipes, event
 * counters, epoll sets). Several fds may share one (`fd_dup`): `refs` counts them, and `close()`
 * runs when the last is closed.
 */
export interface FdObject {
  readonly filetype: number;
  refs: number;
  close(): void;
}

/** One entry in the fd table. */
export class OpenFd {
  readonly kind: FdKind;
  /** The directory of a `dir` fd. */
  readonly dir: VDir | undefined;
  /** The open file of a `file` fd. */
  readonly file: VFile | undefined;
  /** Read/write position of a file, in bytes. Kept below 2^53. */
  position = 0;
  rightsBase = 0n;
  rightsInheriting = 0n;
  /** `fd_read`/`fd_write` rights as booleans: the hot paths skip BigInt arithmetic. */
  canRead = false;
  canWrite = false;
  fdflags = 0;
  /** Guest path of a preopen (what `fd_prestat_dir_name` returns); undefined otherwise. */
  readonly preopen: string | undefined;
  preopenBytes: Uint8Array | undefined = undefined;
  /** The listing `fd_readdir` cookies index into: taken at cookie 0, so entries removed or
   *  added between calls can't shift the entries not yet returned. */
  listing: DirSnapshot | undefined = undefined;
  /** The object of an `object` fd. */
  obj: FdObject | undefined = undefined;
  /** WASIX `fdflagsext` (bit 0: close-on-exec); recorded, since nothing here executes. */
  fdflagsExt = 0;

  constructor(
    kind: FdKind,
    dir: VDir | undefined,
    file: VFile | undefined,
    rightsBase: bigint,
    rightsInheriting: bigint,
    preopen?: string,
  ) {
    this.kind = kind;
    this.dir = dir;
    this.file = file;
    this.setRights(rightsBase, rightsInheriting);
    this.preopen = preopen;
  }

  setRights(base: bigint, inheriting: bigint): void {
    this.rightsBase = base;
    this.rightsInheriting = inheriting;
    this.canRead = (base & Rights.fdRead) !== 0n;
    this.canWrite = (base & Rights.fdWrite) !== 0n;
  }

  has(right: bigint): boolean {
    return (this.rightsBase & right) !== 0n;
  }
}

/** Upper bound on the fd table, so a guest opening files in a loop gets `mfile`, not host OOM
 *  (or, on a `HostDir`, all of the process's file descriptors). */
export const MAX_OPEN_FDS = 1024;

/** A mount as the fd table sees it: its root directory. */
export interface Mountable {
  readonly root: VDir;
}

export interface StateOptions {
  args: readonly string[];
  env: Readonly<Record<string, string>> | Uint8Array;
  stdin: Uint8Array;
  stdinSource: StdinSource | undefined;
  stdout: OutputBuffer;
  stderr: OutputBuffer;
  /** Bit n set: stdio fd n reports itself as a terminal. */
  ttyMask: number;
  preopens: readonly { guestPath: string; tree: Mountable }[];
}

/** NUL-terminated strings back to back, with each string's start offset. */
export interface StringBlock {
  readonly bytes: Uint8Array;
  readonly offsets: readonly number[];
}

export class WasiState {
  readonly mem = new GuestMemory();
  readonly fds: (OpenFd | undefined)[];
  readonly stdin: Uint8Array;
  stdinPosition = 0;
  /** Set when stdin is streamed; `stdin` is then empty. */
  readonly stdinSource: StdinSource | undefined;
  readonly stdout: OutputBuffer;
  readonly stderr: OutputBuffer;
  readonly ttyMask: number;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>> | Uint8Array;
  argsBlock: StringBlock | undefined = undefined;
  envBlock: StringBlock | undefined = undefined;
  /**
   * Set once the guest must not go on: `proc_exit` ran or stdout hit its limit. A guest that
   * catches the unwinding exception (Wasm exception handling can catch foreign exceptions) gets
   * it again at its next write, and `start()` reports it even if `_start` then returns.
   */
  exitCode: number | undefined = undefined;
  outputLimit: OutputLimitError | undefined = undefined;

  constructor(opts: StateOptions) {
    this.args = opts.args;
    this.env = opts.env;
    this.stdin = opts.stdin;
    this.stdinSource = opts.stdinSource;
    this.stdout = opts.stdout;
    this.stderr = opts.stderr;
    this.ttyMask = opts.ttyMask;
    const fds: (OpenFd | undefined)[] = [
      new OpenFd(FdKind.stdin, undefined, undefined, RIGHTS_STDIN, 0n),
      new OpenFd(FdKind.stdout, undefined, undefined, RIGHTS_STDOUT, 0n),
      new OpenFd(FdKind.stderr, undefined, undefined, RIGHTS_STDOUT, 0n),
    ];
    for (const p of opts.preopens) {
      fds.push(new OpenFd(FdKind.dir, p.tree.root, undefined, RIGHTS_DIR, RIGHTS_ALL, p.guestPath));
    }
    this.fds = fds;
  }

  /** The entry for a guest fd (an i32), or undefined if it isn't open. */
  fd(fd: number): OpenFd | undefined {
    return fd >= 0 && fd < this.fds.length ? this.fds[fd] : undefined;
  }

  /** Lowest free fd number, or -1 when the table is full. */
  freeFd(): number {
    const fds = this.fds;
    for (let i = 0; i < fds.length; i++) if (fds[i] === undefined) return i;
    return fds.length < MAX_OPEN_FDS ? fds.length : -1;
  }

  /** Close every fd, releasing what open files hold (host fds; unlinked in-memory files).
   *  Errors are ignored: nobody is left to report them to. */
  closeAll(): void {
    const fds = this.fds;
    for (let i = 0; i < fds.length; i++) {
      const e = fds[i];
      fds[i] = undefined;
      try {
        e?.file?.close();
        if (e?.obj !== undefined && --e.obj.refs === 0) e.obj.close();
      } catch {
        // e.g. EIO from close(2) on a host file: the fd is gone either way.
      }
    }
  }
}
