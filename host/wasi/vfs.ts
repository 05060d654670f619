/**
 * The file-system interface that the `fd_*` and `path_*` imports are written against. Three
 * mounts implement it: `ReadOnlyTree` (tree.ts), `MemoryTree` (memory-tree.ts) and `HostDir`
 * (host-dir.ts).
 *
 * Path resolution is not the mounts' job: path.ts walks every path itself, one component at a
 * time, asking a directory only for a single name (`lookup`) that is never `.`, `..`, empty,
 * or holding `/` or NUL. Symlinks come back as nodes to be read, never followed by a mount.
 * This is what keeps a guest inside its preopens on every mount; see path.ts.
 *
 * Mounts report failures by throwing: `FsError` carries a WASI errno, and a Node.js system
 * error (`err.code === 'ENOENT'` and the like) is mapped by `errnoOf`. The imports catch both,
 * so a guest sees an errno and never a host exception.
 */
import { Errno, type Filetype } from './constants.ts';
import type { GuestMemory } from './memory.ts';

/** A `filestat`, in the witx's units: times in ns since 1970-01-01Z, sizes in bytes. */
export interface Stat {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly filetype: Filetype;
  readonly nlink: bigint;
  readonly size: bigint;
  readonly atimNs: bigint;
  readonly mtimNs: bigint;
  readonly ctimNs: bigint;
}

/** One mounted tree. Identity decides `xdev`: links and renames never cross mounts. */
export interface Mount {
  readonly readOnly: boolean;
}

interface NodeBase {
  readonly mount: Mount;
  stat(): Stat;
  /** Set the times given (undefined: leave as is). Called on writable mounts only. */
  setTimes(atimNs: bigint | undefined, mtimNs: bigint | undefined): void;
}

/** One entry of a directory listing, as `fd_readdir` reports it. */
export interface DirListing {
  readonly nameBytes: Uint8Array;
  readonly ino: bigint;
  readonly filetype: Filetype;
}

/** A directory's entries at one moment: what a `fd_readdir` cookie indexes into. */
export interface DirSnapshot {
  readonly selfIno: bigint;
  readonly parentIno: bigint;
  readonly entries: readonly DirListing[];
}

/**
 * A directory. Every `name` argument is a single component, already checked (see above). The
 * caller has checked what POSIX checks first (existence, types, emptiness for rename targets,
 * same mount), so these methods do only the change. None is called on a read-only mount.
 */
export interface VDir extends NodeBase {
  readonly kind: 'dir';
  /**
   * Check that this directory is still reachable as it was when it was looked up, throwing
   * (`noent`) if not. Called when an fd's directory is used; directories met during a lookup
   * are fresh. Only a host directory, which is known by its path, can go stale this way.
   */
  revalidate(): void;
  /** The entry `name`, not following a symlink; undefined if there is none. */
  lookup(name: string): VNode | undefined;
  snapshot(): DirSnapshot;
  isEmpty(): boolean;
  /** True when `other` is this directory or lies below it (a rename into itself is `inval`). */
  contains(other: VDir): boolean;
  mkdir(name: string): void;
  /** Create the regular file `name`, which must not exist, and open it. */
  createFile(name: string, read: boolean, write: boolean): VFile;
  unlink(name: string): void;
  rmdir(name: string): void;
  /** Move entry `name` to `to`/`toName`, replacing what is there (an empty dir, or a non-dir). */
  rename(name: string, to: VDir, toName: string): void;
  /** A new entry `name` for `node` (not a directory, same mount). */
  link(node: VNode, name: string): void;
  /** A new symlink `name` holding `target` (non-empty, no NUL). */
  symlink(target: Uint8Array, name: string): void;
}

/** A regular file, not yet open. */
export interface VFileNode extends NodeBase {
  readonly kind: 'file';
  open(read: boolean, write: boolean, truncate: boolean): VFile;
}

export interface VSymlink extends NodeBase {
  readonly kind: 'symlink';
  readlink(): Uint8Array;
}

/** Anything else a host directory can hold (a FIFO, socket or device): stat only. */
export interface VOther extends NodeBase {
  readonly kind: 'other';
}

export type VNode = VDir | VFileNode | VSymlink | VOther;

/**
 * An open regular file. Positions are kept by the fd, not here (every read and write is
 * positional), and are below 2^53. Iovecs are in guest memory and already bounds-checked.
 */
export interface VFile {
  readonly mount: Mount;
  stat(): Stat;
  size(): number;
  /** Fill the `count` iovecs at `iovs` from byte `pos` on; returns the bytes read. */
  read(m: GuestMemory, iovs: number, count: number, pos: number): number;
  /** Write the `count` iovecs (`total` bytes) at `pos`; returns the bytes written. */
  write(m: GuestMemory, iovs: number, count: number, total: number, pos: number): number;
  setSize(size: number): void;
  setTimes(atimNs: bigint | undefined, mtimNs: bigint | undefined): void;
  sync(dataOnly: boolean): void;
  close(): void;
}

/**
 * A WASI errno, thrown by mounts and caught by the imports. Not an Error: there is no stack
 * worth capturing for "file exists".
 */
export class FsError {
  readonly errno: number;
  constructor(errno: number) {
    this.errno = errno;
  }
}

/** Linux errno names (as Node.js reports them in `err.code`) to WASI errnos. */
const SYSTEM_ERRNOS: Readonly<Record<string, number>> = {
  E2BIG: Errno['2big'],
  EACCES: Errno.acces,
  EAGAIN: Errno.again,
  EWOULDBLOCK: Errno.again,
  EBADF: Errno.badf,
  EBUSY: Errno.busy,
  EDQUOT: Errno.dquot,
  EEXIST: Errno.exist,
  EFBIG: Errno.fbig,
  EILSEQ: Errno.ilseq,
  EINTR: Errno.intr,
  EINVAL: Errno.inval,
  EIO: Errno.io,
  EISDIR: Errno.isdir,
  ELOOP: Errno.loop,
  EMFILE: Errno.mfile,
  EMLINK: Errno.mlink,
  ENAMETOOLONG: Errno.nametoolong,
  ENFILE: Errno.nfile,
  ENODEV: Errno.nodev,
  ENOENT: Errno.noent,
  ENOMEM: Errno.nomem,
  ENOSPC: Errno.nospc,
  ENOSYS: Errno.nosys,
  ENOTDIR: Errno.notdir,
  ENOTEMPTY: Errno.notempty,
  ENOTSUP: Errno.notsup,
  EOPNOTSUPP: Errno.notsup,
  ENXIO: Errno.nxio,
  EOVERFLOW: Errno.overflow,
  EPERM: Errno.perm,
  EPIPE: Errno.pipe,
  EROFS: Errno.rofs,
  ESPIPE: Errno.spipe,
  ESTALE: Errno.stale,
  ETXTBSY: Errno.txtbsy,
  EXDEV: Errno.xdev,
};

/**
 * The errno for something a mount, sink or source threw. System errors with an unlisted code
 * become `io`. Anything else (the `ProcExit` and `OutputLimitError` that must unwind the guest,
 * or a host bug) is rethrown.
 */
export function errnoOf(err: unknown): number {
  if (err instanceof FsError) return err.errno;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) {
    return SYSTEM_ERRNOS[code] ?? Errno.io;
  }
  throw err;
}

/** Device numbers tell in-memory trees apart in `filestat.dev`; stdio uses 0. */
let nextDev = 1n;
export function nextDevice(): bigint {
  return nextDev++;
}

export const EMPTY_BYTES = new Uint8Array(0);

/** A stat with zero times, for in-memory nodes that carry none. */
export function plainStat(
  dev: bigint,
  ino: bigint,
  filetype: Filetype,
  size: number,
  nlink = 1n,
): Stat {
  return { dev, ino, filetype, nlink, size: BigInt(size), atimNs: 0n, mtimNs: 0n, ctimNs: 0n };
}
