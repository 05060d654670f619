/**
 * `path_*`: lookups and changes below a directory fd, on any mount (vfs.ts).
 *
 * Security model: a directory fd is a capability for its own subtree and nothing else.
 * `resolve` walks a path one component at a time from the fd's directory, keeping the
 * directories it passed through on a stack:
 * - an absolute path is `notcapable`; `..` pops the stack, and popping the starting directory is
 *   `notcapable` (even when that directory is below a preopen);
 * - a symlink is read and its target walked in its place, from the directory holding the link,
 *   under the same rules: an absolute target is `notcapable`, so is one that climbs above the
 *   starting directory, and more than `MAX_SYMLINKS` links in one lookup is `loop`, so no chain
 *   or cycle escapes or spins;
 * - a mount is only ever asked to look up a single name in a directory that the walk reached:
 *   never `.`, `..` or empty, never holding `/` or NUL (host-dir.ts relies on this).
 * The last component is followed if it is a symlink when `lookupflags` say so (or when a `/`
 * comes after it); O_CREAT|O_EXCL never follows one.
 *
 * Paths must be UTF-8 (`ilseq` otherwise), at most `MAX_PATH_BYTES` long with components of at
 * most `MAX_NAME_BYTES` (`nametoolong`), and free of NUL (`inval`). `.`, empty components
 * (`a//b`) and a trailing `/` are accepted; a trailing `/` after a file is `notdir`.
 *
 * Errnos come in the order Linux reports them: lookup errors (`noent`, `notdir`, `exist`,
 * `isdir`…) first, then `rofs` on a read-only mount, then `xdev` between mounts.
 */
import {
  Errno,
  FDFLAGS_ALL,
  FILESTAT_SIZE,
  LOOKUP_SYMLINK_FOLLOW,
  Oflags,
  Rights,
  RIGHTS_DIR,
  RIGHTS_FILE,
  RIGHTS_WRITE,
} from './constants.ts';
import { badFstflags, requestedTimes, writeFilestat } from './fs.ts';
import { FdKind, OpenFd, type WasiState } from './state.ts';
import { errnoOf, type VDir, type VFile, type VNode } from './vfs.ts';

/** Linux's PATH_MAX, NAME_MAX and MAXSYMLINKS. */
export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;
export const MAX_SYMLINKS = 40;
const OFLAGS_ALL = Oflags.creat | Oflags.directory | Oflags.excl | Oflags.trunc;

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Result of a lookup. `node` is set when the path exists. `parent` and `name` are set when the
 * path ends in a name (not `.` or `..`): the directory holding it and the name, even when only
 * that last name is missing (`errno` then `noent`): creating it is all that is left to do.
 */
interface Resolved {
  errno: number;
  parent: VDir | undefined;
  name: string | undefined;
  node: VNode | undefined;
  /** A `/` came after the last name. */
  slash: boolean;
}

function failed(errno: number): Resolved {
  return { errno, parent: undefined, name: undefined, node: undefined, slash: false };
}

/** Walk `path` from `base` (revalidated by the caller); see the security model above. Mounts'
 *  exceptions propagate. */
function resolve(base: VDir, path: string, follow: boolean): Resolved {
  if (path === '') return failed(Errno.noent);
  if (path.charCodeAt(0) === 0x2f) return failed(Errno.notcapable);
  const stack: VDir[] = [base];
  // Components still to walk, the next one last, so a symlink's target goes on top cheaply;
  // `left` counts the non-empty ones, to know when the last is reached.
  const todo = path.split('/').toReversed();
  let left = 0;
  for (const part of todo) if (part !== '') left++;
  let links = 0;
  while (todo.length > 0) {
    const part = todo.pop() as string;
    if (part === '') continue;
    left--;
    if (part === '.') continue;
    if (part === '..') {
      if (stack.length === 1) return failed(Errno.notcapable);
      stack.pop();
      continue;
    }
    // Component lengths count UTF-8 bytes; only long strings can exceed the limit.
    if (part.length * 3 > MAX_NAME_BYTES && Buffer.byteLength(part) > MAX_NAME_BYTES) {
      return failed(Errno.nametoolong);
    }
    const dir = stack[stack.length - 1] as VDir;
    const last = left === 0;
    const slash = last && todo.length > 0;
    const node = dir.lookup(part);
    if (node === undefined) {
      if (!last) return failed(Errno.noent);
      return { errno: Errno.noent, parent: dir, name: part, node: undefined, slash };
    }
    if (node.kind === 'symlink' && (!last || follow || slash)) {
      if (++links > MAX_SYMLINKS) return failed(Errno.loop);
      const bytes = node.readlink();
      let target: string;
      try {
        target = decoder.decode(bytes);
      } catch {
        return failed(Errno.ilseq);
      }
      if (target === '') return failed(Errno.noent);
      if (target.charCodeAt(0) === 0x2f) return failed(Errno.notcapable);
      if (target.includes('\0')) return failed(Errno.inval);
      const parts = target.split('/');
      for (let i = parts.length - 1; i >= 0; i--) {
        const p = parts[i] as string;
        todo.push(p);
        if (p !== '') left++;
      }
      continue;
    }
    if (node.kind === 'dir') {
      if (!last) {
        stack.push(node);
        continue;
      }
      return { errno: Errno.success, parent: dir, name: part, node, slash };
    }
    if (!last || slash) return failed(Errno.notdir);
    return { errno: Errno.success, parent: dir, name: part, node, slash: false };
  }
  // The path ended in `.` or `..`: it names a directory, not an entry of one.
  const node = stack[stack.length - 1] as VDir;
  return { errno: Errno.success, parent: undefined, name: undefined, node, slash: false };
}

/** The directory fd `fd`, or an errno. */
function dirFd(s: WasiState, fd: number, right: bigint): OpenFd | number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (e.dir === undefined) return Errno.notdir;
  if (!e.has(right)) return Errno.notcapable;
  return e;
}

/** Decode the guest path at [ptr, ptr + len), or an errno. */
function decodePath(s: WasiState, ptr: number, len: number): string | number {
  const m = s.mem;
  ptr >>>= 0;
  len >>>= 0;
  if (!m.ok(ptr, len)) return Errno.fault;
  if (len > MAX_PATH_BYTES) return Errno.nametoolong;
  let path: string;
  try {
    path = decoder.decode(m.bytesForDecode(ptr, len));
  } catch {
    return Errno.ilseq;
  }
  return path.includes('\0') ? Errno.inval : path;
}

/** Resolve the path at [ptr, ptr + len) below directory fd `fd` (which needs `right`). */
function lookupAt(
  s: WasiState,
  fd: number,
  right: bigint,
  ptr: number,
  len: number,
  follow: boolean,
): Resolved {
  const e = dirFd(s, fd, right);
  if (typeof e === 'number') return failed(e);
  s.mem.refresh();
  const path = decodePath(s, ptr, len);
  if (typeof path === 'number') return failed(path);
  const dir = e.dir as VDir;
  dir.revalidate();
  return resolve(dir, path, follow);
}

/** The path names something new: `exist` if it is there, else whatever is in the way. */
function newEntry(r: Resolved): number {
  if (r.node !== undefined) return Errno.exist;
  if (r.errno !== Errno.noent || r.parent === undefined) return r.errno;
  return r.parent.mount.readOnly ? Errno.rofs : Errno.success;
}

export function path_open(
  s: WasiState,
  fd: number,
  dirflags: number,
  pathPtr: number,
  pathLen: number,
  oflags: number,
  rightsBase: bigint,
  rightsInheriting: bigint,
  fdflags: number,
  retFd: number,
): number {
  const dir = dirFd(s, fd, Rights.pathOpen);
  if (typeof dir === 'number') return dir;
  const m = s.mem;
  m.refresh();
  retFd >>>= 0;
  if (!m.ok(retFd, 4)) return Errno.fault;
  if ((oflags & ~OFLAGS_ALL) !== 0 || (fdflags & ~FDFLAGS_ALL) !== 0) return Errno.inval;
  // Truncating at open sets a size through the directory, so it needs the directory's right.
  if ((oflags & Oflags.trunc) !== 0 && !dir.has(Rights.pathFilestatSetSize)) {
    return Errno.notcapable;
  }
  const path = decodePath(s, pathPtr, pathLen);
  if (typeof path === 'number') return path;
  const creat = (oflags & Oflags.creat) !== 0;
  const excl = creat && (oflags & Oflags.excl) !== 0;
  const base = BigInt.asUintN(64, rightsBase);
  const inheriting = BigInt.asUintN(64, rightsInheriting);
  const writing = (oflags & Oflags.trunc) !== 0 || (base & RIGHTS_WRITE) !== 0n;
  const reading = (base & Rights.fdRead) !== 0n;
  // Rights beyond what the directory may hand down are refused, as the witx says.
  const tooMuch =
    (base & ~dir.rightsInheriting) !== 0n || (inheriting & ~dir.rightsInheriting) !== 0n;
  let dirOpened: VDir | undefined;
  let fileOpened: VFile | undefined;
  let newFd: number;
  try {
    const start = dir.dir as VDir;
    start.revalidate();
    const r = resolve(start, path, !excl && (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    const node = r.node;
    if (node === undefined) {
      if (!creat || r.errno !== Errno.noent || r.parent === undefined) return r.errno;
      if (r.parent.mount.readOnly) return Errno.rofs;
      // open("new/", O_CREAT) can only mean a directory, which open doesn't make.
      if (r.slash) return Errno.isdir;
      if ((oflags & Oflags.directory) !== 0) return Errno.inval;
      if (tooMuch) return Errno.notcapable;
      newFd = s.freeFd();
      if (newFd < 0) return Errno.mfile;
      fileOpened = r.parent.createFile(r.name as string, reading, writing);
    } else {
      if (excl) return Errno.exist;
      if (node.kind === 'dir') {
        if (writing) return Errno.isdir;
      } else {
        if ((oflags & Oflags.directory) !== 0) return Errno.notdir;
        // What open(O_NOFOLLOW) answers for a symlink.
        if (node.kind === 'symlink') return Errno.loop;
        // FIFOs, sockets and devices a host directory may hold: not opened, lest one block.
        if (node.kind === 'other') return Errno.notsup;
        if (writing && node.mount.readOnly) return Errno.rofs;
      }
      if (tooMuch) return Errno.notcapable;
      newFd = s.freeFd();
      if (newFd < 0) return Errno.mfile;
      if (node.kind === 'dir') dirOpened = node;
      else fileOpened = node.open(reading, writing, (oflags & Oflags.trunc) !== 0);
    }
  } catch (err) {
    return errnoOf(err);
  }
  // Rights that don't apply to the file type are dropped, which the witx allows.
  const entry =
    dirOpened !== undefined
      ? new OpenFd(FdKind.dir, dirOpened, undefined, base & RIGHTS_DIR, inheriting)
      : new OpenFd(FdKind.file, undefined, fileOpened, base & RIGHTS_FILE, 0n);
  entry.fdflags = fdflags;
  s.fds[newFd] = entry;
  m.view.setUint32(retFd, newFd, true);
  return Errno.success;
}

export function path_filestat_get(
  s: WasiState,
  fd: number,
  flags: number,
  pathPtr: number,
  pathLen: number,
  retFilestat: number,
): number {
  try {
    const follow = (flags & LOOKUP_SYMLINK_FOLLOW) !== 0;
    const found = lookupAt(s, fd, Rights.pathFilestatGet, pathPtr, pathLen, follow);
    if (found.node === undefined) return found.errno;
    const stat = found.node.stat();
    const m = s.mem;
    retFilestat >>>= 0;
    if (!m.ok(retFilestat, FILESTAT_SIZE)) return Errno.fault;
    writeFilestat(m, retFilestat, stat);
    return Errno.success;
  } catch (err) {
    return errnoOf(err);
  }
}

/** The target's bytes, cut to `buf_len` if longer (as readlink(2) does). A path that is not a
 *  symlink is `inval`. */
export function path_readlink(
  s: WasiState,
  fd: number,
  pathPtr: number,
  pathLen: number,
  buf: number,
  bufLen: number,
  retBufused: number,
): number {
  try {
    const found = lookupAt(s, fd, Rights.pathReadlink, pathPtr, pathLen, false);
    if (found.node === undefined) return found.errno;
    const m = s.mem;
    buf >>>= 0;
    bufLen >>>= 0;
    retBufused >>>= 0;
    if (!m.ok(buf, bufLen) || !m.ok(retBufused, 4)) return Errno.fault;
    if (found.node.kind !== 'symlink') return Errno.inval;
    const target = found.node.readlink();
    const n = Math.min(target.length, bufLen);
    m.u8.set(n === target.length ? target : target.subarray(0, n), buf);
    m.view.setUint32(retBufused, n, true);
    return Errno.success;
  } catch (err) {
    return errnoOf(err);
  }
}

export function path_filestat_set_times(
  s: WasiState,
  fd: number,
  flags: number,
  pathPtr: number,
  pathLen: number,
  atim: bigint,
  mtim: bigint,
  fstFlags: number,
): number {
  try {
    const follow = (flags & LOOKUP_SYMLINK_FOLLOW) !== 0;
    const found = lookupAt(s, fd, Rights.pathFilestatSetTimes, pathPtr, pathLen, follow);
    const node = found.node;
    if (node === undefined) return found.errno;
    if (badFstflags(fstFlags)) return Errno.inval;
    if (node.mount.readOnly) return Errno.rofs;
    const [a, m] = requestedTimes(atim, mtim, fstFlags);
    if (a !== undefined || m !== undefined) node.setTimes(a, m);
    return Errno.success;
  } catch (err) {
    return errnoOf(err);
  }
}

export function path_create_directory(
  s: WasiState,
  fd: number,
  pathPtr: number,
  pathLen: number,
): number {
  try {
    const r = lookupAt(s, fd, Rights.pathCreateDirectory, pathPtr, pathLen, false);
    const errno = newEntry(r);
    if (errno !== Errno.success) return errno;
    (r.parent as VDir).mkdir(r.name as string);
    return Errno.success;
  } catch (err) {
    return errnoOf(err);
  }
}

/** Whether the guest's path ends in `..` (ignoring trailing slashes): rmdir("..") is
 *  `notempty` on Linux, rmdir(".") `inval`. */
function endsInDotDot(s: WasiState, ptr: number, len: number): boolean {
  const path = decodePath(s, ptr, len);
  return typeof path === 'string' && /(^|\/)\.\.\/*$/.test(path);
}

export function path_remove_directory(
  s: WasiState,
  fd: number,
  pathPtr: number,
  pathLen: number,
): number {
  try {
    const r = lookupAt(s, fd, Rights.pathRemoveDirectory, pathPtr, pathLen, false);
    const node = r.node;
    if (node === undefined) return r.errno;
    if (node.kind !== 'dir') return Errno.notdir;
    if (r.parent === undefined) {
      return endsInDotDot(s, pathPtr, pathLen) ? Errno.notempty : Errno.inval;
    }
    if (node.mount.readOnly) return Errno.rofs;
    r.parent.rmdir(r.name as string);
    return Errno.success;
  } catch (err) {
    return errnoOf(err);
  }
}

export function path_unlink_file(
  s: WasiState,
  fd: number,
  pathPtr: number,
  pathLen: number,
): number {
  try {
    const r = lookupAt(s, fd, Rights.pathUnlinkFile, pathPtr, pathLen, false);
    const node = r.node;
    if (node === undefined) return r.errno;
    if (node.kind === 'dir' || r.parent === undefined) return Errno.isdir;
    if (node.mount.readOnly) return Errno.rofs;
    r.parent.unlink(r.name as string);
    return Errno.success;
  } catch (err) {
    return errnoOf(err);
  }
}

/**
 * rename(2): a file replaces a file (`isdir` if the target is a directory), a directory
 * replaces an empty directory (`notdir` if the target isn't one, `notempty` if it isn't
 * empty) and can't move into itself (`inval`). Renaming a name onto itself does nothing.
 */
export function path_rename(
  s: WasiState,
  fd: number,
  oldPtr: number,
  oldLen: number,
  newFd: number,
  newPtr: number,
  newLen: number,
): number {
  try {
    const from = lookupAt(s, fd, Rights.pathRenameSource, oldPtr, oldLen, false);
    const src = from.node;
    if (src === undefined) return from.errno;
    const to = lookupAt(s, newFd, Rights.pathRenameTarget, newPtr, newLen, false);
    const dst = to.node;
    if (dst === undefined && (to.errno !== Errno.noent || to.parent === undefined)) {
      return to.errno;
    }
    const fromDir = from.parent;
    const toDir = to.parent;
    // `.`, `..`, or a preopen itself, on either side.
    if (fromDir === undefined || toDir === undefined) return Errno.busy;
    const fromName = from.name as string;
    const toName = to.name as string;
    if (src.kind === 'dir') {
      if (dst !== undefined && dst.kind !== 'dir') return Errno.notdir;
    } else {
      if (dst !== undefined && dst.kind === 'dir') return Errno.isdir;
      if (to.slash) return Errno.notdir;
    }
    if (fromDir.mount.readOnly || toDir.mount.readOnly) return Errno.rofs;
    if (fromDir.mount !== toDir.mount) return Errno.xdev;
    if (fromName === toName && fromDir.contains(toDir) && toDir.contains(fromDir)) {
      return Errno.success;
    }
    if (src.kind === 'dir') {
      if (src.contains(toDir)) return Errno.inval;
      if (dst !== undefined && dst.kind === 'dir' && !dst.isEmpty()) return Errno.notempty;
    }
    fromDir.rename(fromName, toDir, toName);
    return Errno.success;
  } catch (err) {
    return errnoOf(err);
  }
}

/** A hard link: within one mount (`xdev` otherwise), never to a directory (`perm`). */
export function path_link(
  s: WasiState,
  oldFd: number,
  oldFlags: number,
  oldPtr: number,
  oldLen: number,
  newFd: number,
  newPtr: number,
  newLen: number,
): number {
  try {
    const follow = (oldFlags & LOOKUP_SYMLINK_FOLLOW) !== 0;
    const from = lookupAt(s, oldFd, Rights.pathLinkSource, oldPtr, oldLen, follow);
    const src = from.node;
    if (src === undefined) return from.errno;
    const to = lookupAt(s, newFd, Rights.pathLinkTarget, newPtr, newLen, false);
    const errno = newEntry(to);
    if (errno !== Errno.success) return errno;
    if (to.slash) return Errno.noent;
    const toDir = to.parent as VDir;
    if (src.mount !== toDir.mount) return Errno.xdev;
    if (src.kind === 'dir') return Errno.perm;
    toDir.link(src, to.name as string);
    return Errno.success;
  } catch (err) {
    return errnoOf(err);
  }
}

/**
 * Note the witx argument order: the link's target text comes first, then fd and new path. The
 * target must be UTF-8 like any path; it is stored as given (mounts may refuse some, see
 * host-dir.ts) and checked when followed.
 */
export function path_symlink(
  s: WasiState,
  oldPtr: number,
  oldLen: number,
  fd: number,
  newPtr: number,
  newLen: number,
): number {
  const m = s.mem;
  m.refresh();
  oldPtr >>>= 0;
  oldLen >>>= 0;
  if (!m.ok(oldPtr, oldLen)) return Errno.fault;
  try {
    const to = lookupAt(s, fd, Rights.pathSymlink, newPtr, newLen, false);
    const errno = newEntry(to);
    if (errno !== Errno.success) return errno;
    if (to.slash) return Errno.noent;
    const target = decodePath(s, oldPtr, oldLen);
    if (typeof target === 'number') return target;
    if (target === '') return Errno.noent;
    (to.parent as VDir).symlink(m.u8.slice(oldPtr, oldPtr + oldLen), to.name as string);
    return Errno.success;
  } catch (err) {
    return errnoOf(err);
  }
}
