/**
 * A host directory mapped into the guest (`weft run --dir HOST::GUEST`), through synchronous
 * `node:fs` calls.
 *
 * Security model. The guest is untrusted; the mapped directory is all of the host file system
 * it may reach, with the rights of the user running weft, and a read-only mapping changes
 * nothing on the host.
 *
 * - No guest path is handed to the OS as it is. path.ts walks every path itself and gives this
 *   file one checked name at a time (never `.`, `..` or empty, no `/` or NUL, valid UTF-8) to
 *   look up in a directory reached the same way. A lookup is an `lstat` of
 *   `<root>/<names so far>/<name>`, where `lstat` has already seen every earlier name to be a
 *   real directory, not a symlink: the OS follows no symlink while resolving, and `..` is a pop
 *   of the walker's stack of directories, refused (`notcapable`) at the directory the lookup
 *   started from, so it never climbs above the root.
 * - A directory fd knows its directory by path, which the guest can change between calls (move
 *   the directory, put a symlink in its place). So each call on such an fd first checks every
 *   name from the root again to be a real directory, and the last to be the same one (device
 *   and inode); else `noent`. Directories met during one call's walk are fresh.
 * - Symlinks are read here and followed by the walker, component by component and recursively,
 *   at most 40 per lookup (`loop`). An absolute target, or one whose `..` climbs above the
 *   lookup's starting directory, is `notcapable`, as is anything in a chain that does.
 * - A file is opened only at the path so resolved, with O_NOFOLLOW (a symlink swapped in for the
 *   last component is refused by the kernel) and O_NONBLOCK (a FIFO swapped in can't hang the
 *   thread). Then the open file must be the one `lstat` saw (device and inode), and on Linux
 *   `/proc/self/fd` must place it inside the root; else it is closed again (`notcapable`).
 *   Truncation (O_TRUNC) happens only after these checks. An open file is an OS fd: no path is
 *   used again.
 * - Hard links: both paths are resolved as above, so neither end can be outside; links across
 *   mounts are `xdev`. A symlink is hard-linked only on Linux, whose link(2) does not follow it.
 * - A guest may not create a symlink whose target is absolute or climbs (counted lexically from
 *   the link's directory) above the root (`notcapable`). That keeps out the obvious links for
 *   other host programs to follow later, but not all: links that are each lexically inside can
 *   chain outward when the kernel follows them (`sub/q -> ..`, then `d -> sub/q/..`). weft never lets the kernel follow them; host programs that later walk a
 *   directory an untrusted guest wrote to should not follow symlinks either.
 * - A read-only mapping answers `rofs` to every change before touching the host.
 *
 * Limits. A guest's calls are synchronous and one at a time, so it can't race its own checks.
 * Another host process changing the directory at the same moment can: changes by path (mkdir,
 * unlink, rename, link, symlink, utimes, creating a file) let the kernel walk the parent path
 * again, so a directory swapped for a symlink within that window would redirect them. (Opens of
 * existing files are checked afterwards, above.) Don't map directories that hostile processes
 * write to. Times are set through a double of seconds (Node.js has no UTIME_OMIT), so to a
 * fraction of a µs on the host; the exact ns asked for is remembered and reported while the
 * host still holds what was stored (`exactTimes`). POSIX hosts only: `HostDir.open` refuses
 * Windows, whose paths and links differ.
 */
import * as fs from 'node:fs';
import { Errno, Filetype } from './constants.ts';
import { iovecViews } from './iovec.ts';
import type { GuestMemory } from './memory.ts';
import {
  type DirListing,
  type DirSnapshot,
  FsError,
  type Mount,
  type Stat,
  type VDir,
  type VFile,
  type VFileNode,
  type VNode,
  type VOther,
  type VSymlink,
} from './vfs.ts';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL } = fs.constants;
// Defined on every POSIX platform Node.js supports; `HostDir.open` refuses the others.
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = fs.constants.O_NONBLOCK ?? 0;
const PROC_FD = process.platform === 'linux' ? '/proc/self/fd/' : undefined;
const LINK_FOLLOWS_SYMLINKS = process.platform !== 'linux';

/** Options for `HostDir.open`. */
export interface HostDirOptions {
  /** Refuse every change with `rofs` (default false). */
  readOnly?: boolean;
}

function filetypeOf(st: fs.BigIntStats): Filetype {
  if (st.isFile()) return Filetype.regularFile;
  if (st.isDirectory()) return Filetype.directory;
  if (st.isSymbolicLink()) return Filetype.symbolicLink;
  if (st.isCharacterDevice()) return Filetype.characterDevice;
  if (st.isBlockDevice()) return Filetype.blockDevice;
  if (st.isSocket()) return Filetype.socketStream;
  return Filetype.unknown; // FIFOs: preview1 has no type for them
}

/** Times a guest set, to the ns, and what the host stored for them (to the µs, see `seconds`). */
interface ExactTimes {
  atimNs: bigint;
  atimHost: bigint;
  mtimNs: bigint;
  mtimHost: bigint;
}

/**
 * By `dev:ino`: a stat that still finds the host's stored value reports the guest's exact one,
 * so a time set reads back as set (as on a host with ns `utimensat`); any later change on the
 * host shows as it is. Bounded, oldest dropped first.
 */
const exactTimes = new Map<string, ExactTimes>();
const MAX_EXACT_TIMES = 4096;

function rememberTimes(after: fs.BigIntStats, atimNs: bigint, mtimNs: bigint): void {
  const key = `${after.dev}:${after.ino}`;
  exactTimes.delete(key);
  if (exactTimes.size >= MAX_EXACT_TIMES) {
    const oldest = exactTimes.keys().next();
    if (oldest.done !== true) exactTimes.delete(oldest.value);
  }
  exactTimes.set(key, { atimNs, atimHost: after.atimeNs, mtimNs, mtimHost: after.mtimeNs });
}

function toStat(st: fs.BigIntStats): Stat {
  const exact = exactTimes.size === 0 ? undefined : exactTimes.get(`${st.dev}:${st.ino}`);
  return {
    dev: st.dev,
    ino: st.ino,
    filetype: filetypeOf(st),
    nlink: st.nlink,
    size: st.size,
    atimNs: exact !== undefined && exact.atimHost === st.atimeNs ? exact.atimNs : st.atimeNs,
    mtimNs: exact !== undefined && exact.mtimHost === st.mtimeNs ? exact.mtimNs : st.mtimeNs,
    ctimNs: st.ctimeNs,
  };
}

/**
 * ns → the seconds `utimes` takes. Node.js takes a double and has no UTIME_OMIT, so times set
 * here keep a fraction of a µs of precision (today's dates need 31 of a double's 53 bits for
 * the seconds), and a time left as it is gets rewritten with its current value to that precision.
 */
function seconds(ns: bigint): number {
  return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) / 1e9;
}

/** Where a mapping is on the host; shared by its nodes. */
class Base {
  readonly mount: HostDir;
  readonly hostPath: string;
  /** `hostPath` with one trailing '/', to put relative paths after. */
  readonly prefix: string;

  constructor(mount: HostDir, hostPath: string) {
    this.mount = mount;
    this.hostPath = hostPath;
    this.prefix = hostPath.endsWith('/') ? hostPath : hostPath + '/';
  }

  /** The host path of `rel` (names joined by '/', '' for the root). */
  abs(rel: string): string {
    return rel === '' ? this.hostPath : this.prefix + rel;
  }

  /** Close `fd` unless it is a regular file inside the root and the very file `expected` is. */
  check(fd: number, expected: fs.BigIntStats | undefined): void {
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      if (!st.isFile()) throw new FsError(Errno.notcapable);
      if (expected !== undefined && (st.dev !== expected.dev || st.ino !== expected.ino)) {
        throw new FsError(Errno.notcapable);
      }
      if (PROC_FD !== undefined) {
        let real: string | undefined;
        try {
          real = fs.readlinkSync(PROC_FD + fd);
        } catch {
          real = undefined; // no /proc mounted: the checks above are what we have
        }
        if (real !== undefined && real !== this.hostPath && !real.startsWith(this.prefix)) {
          throw new FsError(Errno.notcapable);
        }
      }
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }
}

function join(rel: string, name: string): string {
  return rel === '' ? name : rel + '/' + name;
}

function openFlags(read: boolean, write: boolean): number {
  return (write ? (read ? O_RDWR : O_WRONLY) : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK;
}

/** What every node shares: where it is, and stat/times by path without following. */
class HostNode {
  readonly base: Base;
  readonly rel: string;

  constructor(base: Base, rel: string) {
    this.base = base;
    this.rel = rel;
  }

  get mount(): Mount {
    return this.base.mount;
  }

  get path(): string {
    return this.base.abs(this.rel);
  }

  stat(): Stat {
    return toStat(fs.lstatSync(this.path, { bigint: true }));
  }

  setTimes(atimNs: bigint | undefined, mtimNs: bigint | undefined): void {
    const path = this.path;
    const now = toStat(fs.lstatSync(path, { bigint: true }));
    const atim = atimNs ?? now.atimNs;
    const mtim = mtimNs ?? now.mtimNs;
    fs.lutimesSync(path, seconds(atim), seconds(mtim));
    rememberTimes(fs.lstatSync(path, { bigint: true }), atim, mtim);
  }
}

class HostFileNode extends HostNode implements VFileNode {
  readonly kind = 'file';
  /** What the lookup saw; the file opened must be this one. */
  readonly seen: fs.BigIntStats;

  constructor(base: Base, rel: string, seen: fs.BigIntStats) {
    super(base, rel);
    this.seen = seen;
  }

  open(read: boolean, write: boolean, truncate: boolean): VFile {
    const fd = fs.openSync(this.path, openFlags(read, write));
    this.base.check(fd, this.seen);
    const file = new HostFile(this.base.mount, fd);
    if (truncate) {
      try {
        fs.ftruncateSync(fd, 0);
      } catch (err) {
        file.close();
        throw err;
      }
    }
    return file;
  }
}

class HostSymlink extends HostNode implements VSymlink {
  readonly kind = 'symlink';

  readlink(): Uint8Array {
    return fs.readlinkSync(this.path, { encoding: 'buffer' });
  }
}

class HostOther extends HostNode implements VOther {
  readonly kind = 'other';
}

class HostDirNode extends HostNode implements VDir {
  readonly kind = 'dir';
  /** Names between the root and here, for the symlink-target check. */
  readonly depth: number;
  /** What the lookup saw (undefined for the root): an fd on this directory must find it again. */
  readonly seen: fs.BigIntStats | undefined;

  constructor(base: Base, rel: string, seen: fs.BigIntStats | undefined) {
    super(base, rel);
    this.depth = rel === '' ? 0 : rel.split('/').length;
    this.seen = seen;
  }

  /**
   * An fd knows its directory by path, and the guest may since have moved it and put a symlink
   * in its place (one whose chain leads out of the root, say). So before the fd is used, every
   * name from the root is checked again to be a real directory, and the last to be the same one.
   */
  revalidate(): void {
    const seen = this.seen;
    if (seen === undefined) return;
    let rel = '';
    let st: fs.BigIntStats | undefined;
    for (const name of this.rel.split('/')) {
      rel = join(rel, name);
      st = fs.lstatSync(this.base.abs(rel), { bigint: true, throwIfNoEntry: false });
      if (st === undefined || !st.isDirectory()) throw new FsError(Errno.noent);
    }
    if (st === undefined || st.dev !== seen.dev || st.ino !== seen.ino) {
      throw new FsError(Errno.noent);
    }
  }

  lookup(name: string): VNode | undefined {
    const rel = join(this.rel, name);
    const st = fs.lstatSync(this.base.abs(rel), { bigint: true, throwIfNoEntry: false });
    if (st === undefined) return undefined;
    if (st.isDirectory()) return new HostDirNode(this.base, rel, st);
    if (st.isFile()) return new HostFileNode(this.base, rel, st);
    if (st.isSymbolicLink()) return new HostSymlink(this.base, rel);
    return new HostOther(this.base, rel);
  }

  /** Entries in byte order of their names, which are passed on as the host has them. */
  snapshot(): DirSnapshot {
    const path = this.path;
    const names = fs.readdirSync(path, { encoding: 'buffer' });
    names.sort(Buffer.compare);
    const prefix = Buffer.from(path.endsWith('/') ? path : path + '/');
    const entries: DirListing[] = [];
    for (const name of names) {
      const st = fs.lstatSync(Buffer.concat([prefix, name]), {
        bigint: true,
        throwIfNoEntry: false,
      });
      if (st === undefined) continue; // removed since readdir
      entries.push({ nameBytes: name, ino: st.ino, filetype: filetypeOf(st) });
    }
    const selfIno = fs.lstatSync(path, { bigint: true }).ino;
    const slash = this.rel.lastIndexOf('/');
    // `..` of the root is the root: nothing about the host above it is shown.
    const parentIno =
      this.rel === ''
        ? selfIno
        : fs.lstatSync(this.base.abs(slash < 0 ? '' : this.rel.slice(0, slash)), {
            bigint: true,
          }).ino;
    return { selfIno, parentIno, entries };
  }

  isEmpty(): boolean {
    const dir = fs.opendirSync(this.path);
    try {
      return dir.readSync() === null;
    } finally {
      dir.closeSync();
    }
  }

  contains(other: VDir): boolean {
    if (!(other instanceof HostDirNode) || other.base !== this.base) return false;
    return this.rel === '' || other.rel === this.rel || other.rel.startsWith(this.rel + '/');
  }

  mkdir(name: string): void {
    fs.mkdirSync(this.base.abs(join(this.rel, name)));
  }

  createFile(name: string, read: boolean, write: boolean): VFile {
    const path = this.base.abs(join(this.rel, name));
    const fd = fs.openSync(path, openFlags(read, write) | O_CREAT | O_EXCL, 0o666);
    this.base.check(fd, undefined);
    return new HostFile(this.base.mount, fd);
  }

  unlink(name: string): void {
    fs.unlinkSync(this.base.abs(join(this.rel, name)));
  }

  rmdir(name: string): void {
    fs.rmdirSync(this.base.abs(join(this.rel, name)));
  }

  rename(name: string, to: VDir, toName: string): void {
    const target = to as HostDirNode;
    fs.renameSync(this.base.abs(join(this.rel, name)), target.base.abs(join(target.rel, toName)));
  }

  link(node: VNode, name: string): void {
    const source = node as HostNode & VNode;
    if (source.base !== this.base) throw new FsError(Errno.xdev);
    if (source.kind === 'dir') throw new FsError(Errno.perm);
    // Elsewhere link(2) may follow a symlink source, to wherever it points.
    if (source.kind === 'symlink' && LINK_FOLLOWS_SYMLINKS) throw new FsError(Errno.notsup);
    fs.linkSync(source.path, this.base.abs(join(this.rel, name)));
  }

  symlink(target: Uint8Array, name: string): void {
    const text = Buffer.from(target.buffer, target.byteOffset, target.length);
    if (text[0] === 0x2f) throw new FsError(Errno.notcapable);
    let depth = this.depth;
    for (const part of text.toString('utf8').split('/')) {
      if (part === '' || part === '.') continue;
      depth += part === '..' ? -1 : 1;
      if (depth < 0) throw new FsError(Errno.notcapable);
    }
    fs.symlinkSync(text, this.base.abs(join(this.rel, name)));
  }
}

/** An open host file. Reads and writes are positional; the fd keeps the position. */
class HostFile implements VFile {
  readonly mount: Mount;
  readonly fd: number;
  #closed = false;

  constructor(mount: Mount, fd: number) {
    this.mount = mount;
    this.fd = fd;
  }

  stat(): Stat {
    return toStat(fs.fstatSync(this.fd, { bigint: true }));
  }

  size(): number {
    return fs.fstatSync(this.fd).size;
  }

  read(m: GuestMemory, iovs: number, count: number, pos: number): number {
    const views = iovecViews(m, iovs, count, 0xffff_ffff);
    return views.length === 0 ? 0 : fs.readvSync(this.fd, views, pos);
  }

  write(m: GuestMemory, iovs: number, count: number, total: number, pos: number): number {
    const views = iovecViews(m, iovs, count, total);
    return views.length === 0 ? 0 : fs.writevSync(this.fd, views, pos);
  }

  setSize(size: number): void {
    fs.ftruncateSync(this.fd, size);
  }

  setTimes(atimNs: bigint | undefined, mtimNs: bigint | undefined): void {
    const now = toStat(fs.fstatSync(this.fd, { bigint: true }));
    const atim = atimNs ?? now.atimNs;
    const mtim = mtimNs ?? now.mtimNs;
    fs.futimesSync(this.fd, seconds(atim), seconds(mtim));
    rememberTimes(fs.fstatSync(this.fd, { bigint: true }), atim, mtim);
  }

  sync(dataOnly: boolean): void {
    if (dataOnly) fs.fdatasyncSync(this.fd);
    else fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    fs.closeSync(this.fd);
  }
}

/** A host directory to mount as a preopen. See the security model above. */
export class HostDir implements Mount {
  readonly readOnly: boolean;
  /** The mapped directory's canonical host path (symlinks in it resolved once, by `open`). */
  readonly hostPath: string;
  readonly root: VDir;

  private constructor(hostPath: string, readOnly: boolean) {
    this.readOnly = readOnly;
    this.hostPath = hostPath;
    this.root = new HostDirNode(new Base(this, hostPath), '', undefined);
  }

  /**
   * Map the host directory `hostPath` (resolved with `realpath` now; later changes to the
   * path's symlinks don't move the mapping). Throws the `node:fs` error when it can't be
   * resolved (`err.code` ENOENT, EACCES…), an Error with code ENOTDIR when it isn't a
   * directory, and an Error on Windows, which HostDir doesn't support.
   */
  static open(hostPath: string, opts: HostDirOptions = {}): HostDir {
    if (process.platform === 'win32') {
      throw new Error('HostDir needs a POSIX host (Linux, macOS); Windows is not supported');
    }
    if (typeof hostPath !== 'string' || hostPath === '' || hostPath.includes('\0')) {
      throw new TypeError(`HostDir path must be a non-empty string without NUL`);
    }
    const real = fs.realpathSync(hostPath);
    if (!fs.statSync(real).isDirectory()) {
      throw Object.assign(new Error(`HostDir: '${hostPath}' is not a directory`), {
        code: 'ENOTDIR',
      });
    }
    return new HostDir(real, opts.readOnly === true);
  }
}
