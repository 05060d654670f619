/**
 * `path_*` on read-only trees.
 *
 * Security model: a directory fd is a capability for its own subtree and nothing else. Paths are
 * resolved component by component from the fd's directory node; an absolute path, or a `..` that
 * would climb above that directory (even if it is below a preopen), is `notcapable`. There are no
 * symlinks, so `lookupflags` change nothing. Nothing ever touches the host file system: trees are
 * in memory.
 *
 * Paths must be UTF-8 (`ilseq` otherwise), at most `MAX_PATH_BYTES` long with components of at
 * most `MAX_NAME_BYTES` (`nametoolong`), and free of NUL (`inval`). `.`, empty components
 * (`a//b`) and a trailing `/` are accepted; a trailing `/` after a file is `notdir`.
 *
 * Anything that would change a tree answers `rofs` once the path itself checks out, as a
 * read-only mount does on Linux (`exist`, `noent`, `isdir`, `notdir` come first where Linux
 * reports them first).
 */
import {
  Errno,
  FDFLAGS_ALL,
  FILESTAT_SIZE,
  Oflags,
  Rights,
  RIGHTS_DIR,
  RIGHTS_FILE,
  RIGHTS_WRITE,
} from './constants.ts';
import { badFstflags, writeFilestat } from './fs.ts';
import { FdKind, OpenFd, type WasiState } from './state.ts';
import type { DirNode, TreeNode } from './tree.ts';

/** Linux's PATH_MAX and NAME_MAX. */
export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;
const OFLAGS_ALL = Oflags.creat | Oflags.directory | Oflags.excl | Oflags.trunc;

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Result of a lookup. `node` is set when the path exists. When only the last component is
 * missing, `errno` is `noent` and `parentExists` is true: creating it is then the only thing
 * in the way (`rofs`).
 */
interface Lookup {
  errno: number;
  node: TreeNode | undefined;
  parentExists: boolean;
}

function fail(errno: number): Lookup {
  return { errno, node: undefined, parentExists: false };
}

/** The directory fd `fd`, or an errno. */
function dirFd(s: WasiState, fd: number, right: bigint): OpenFd | number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (e.kind !== FdKind.dir) return Errno.notdir;
  if (!e.has(right)) return Errno.notcapable;
  return e;
}

/** Decode and resolve the guest path at [ptr, ptr + len) relative to directory `base`. */
function lookup(s: WasiState, base: DirNode, ptr: number, len: number): Lookup {
  const m = s.mem;
  ptr >>>= 0;
  len >>>= 0;
  if (!m.ok(ptr, len)) return fail(Errno.fault);
  if (len > MAX_PATH_BYTES) return fail(Errno.nametoolong);
  let path: string;
  try {
    path = decoder.decode(m.bytesForDecode(ptr, len));
  } catch {
    return fail(Errno.ilseq);
  }
  if (path.includes('\0')) return fail(Errno.inval);
  if (path === '') return fail(Errno.noent);
  if (path.charCodeAt(0) === 0x2f) return fail(Errno.notcapable);
  const parts = path.split('/');
  let node: TreeNode = base;
  let depth = 0;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (part === '') continue; // `a//b`, or the end of `a/`
    if (node.kind !== 'dir') return fail(Errno.notdir);
    if (part === '.') continue;
    if (part === '..') {
      if (depth === 0) return fail(Errno.notcapable);
      depth--;
      node = node.parent ?? node;
      continue;
    }
    // Component lengths count UTF-8 bytes; only long strings can exceed the limit.
    if (part.length * 3 > MAX_NAME_BYTES && Buffer.byteLength(part) > MAX_NAME_BYTES) {
      return fail(Errno.nametoolong);
    }
    const child: TreeNode | undefined = node.children.get(part);
    if (child === undefined) {
      // Creating is possible only when this is the last component (`new`, `new/`).
      let lastReal = true;
      for (let j = i + 1; j < parts.length; j++) if (parts[j] !== '') lastReal = false;
      return { errno: Errno.noent, node: undefined, parentExists: lastReal };
    }
    node = child;
    depth++;
  }
  // `file/` names a directory that isn't one (`file/.` and `file/..` failed above).
  if (node.kind === 'file' && path.endsWith('/')) {
    return fail(Errno.notdir);
  }
  return { errno: Errno.success, node, parentExists: true };
}

/** Resolve relative to directory fd `fd` (which needs `right`). */
function lookupAt(s: WasiState, fd: number, right: bigint, ptr: number, len: number): Lookup {
  const e = dirFd(s, fd, right);
  if (typeof e === 'number') return fail(e);
  s.mem.refresh();
  return lookup(s, e.node as DirNode, ptr, len);
}

export function path_open(
  s: WasiState,
  fd: number,
  _dirflags: number,
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
  const found = lookup(s, dir.node as DirNode, pathPtr, pathLen);
  const node = found.node;
  if (node === undefined) {
    const creating = (oflags & Oflags.creat) !== 0 && found.errno === Errno.noent;
    return creating && found.parentExists ? Errno.rofs : found.errno;
  }
  if ((oflags & (Oflags.creat | Oflags.excl)) === (Oflags.creat | Oflags.excl)) return Errno.exist;
  const base = BigInt.asUintN(64, rightsBase);
  const inheriting = BigInt.asUintN(64, rightsInheriting);
  const writing = (oflags & Oflags.trunc) !== 0 || (base & RIGHTS_WRITE) !== 0n;
  if (node.kind === 'dir') {
    if (writing) return Errno.isdir;
  } else {
    if ((oflags & Oflags.directory) !== 0) return Errno.notdir;
    if (writing) return Errno.rofs;
  }
  // Rights beyond what the directory may hand down are refused, as the witx says.
  if ((base & ~dir.rightsInheriting) !== 0n || (inheriting & ~dir.rightsInheriting) !== 0n) {
    return Errno.notcapable;
  }
  const newFd = s.freeFd();
  if (newFd < 0) return Errno.mfile;
  const isDir = node.kind === 'dir';
  // Rights that don't apply to the file type are dropped, which the witx allows.
  const entry = new OpenFd(
    isDir ? FdKind.dir : FdKind.file,
    node,
    base & (isDir ? RIGHTS_DIR : RIGHTS_FILE),
    isDir ? inheriting : 0n,
  );
  entry.fdflags = fdflags;
  s.fds[newFd] = entry;
  m.view.setUint32(retFd, newFd, true);
  return Errno.success;
}

export function path_filestat_get(
  s: WasiState,
  fd: number,
  _flags: number,
  pathPtr: number,
  pathLen: number,
  retFilestat: number,
): number {
  const found = lookupAt(s, fd, Rights.pathFilestatGet, pathPtr, pathLen);
  if (found.node === undefined) return found.errno;
  const m = s.mem;
  retFilestat >>>= 0;
  if (!m.ok(retFilestat, FILESTAT_SIZE)) return Errno.fault;
  writeFilestat(m, retFilestat, found.node);
  return Errno.success;
}

/** Trees hold no symlinks: an existing path is `inval`, as readlink(2) says for a non-link. */
export function path_readlink(
  s: WasiState,
  fd: number,
  pathPtr: number,
  pathLen: number,
  buf: number,
  bufLen: number,
  retBufused: number,
): number {
  const found = lookupAt(s, fd, Rights.pathReadlink, pathPtr, pathLen);
  if (found.node === undefined) return found.errno;
  if (!s.mem.ok(buf >>> 0, bufLen >>> 0) || !s.mem.ok(retBufused >>> 0, 4)) return Errno.fault;
  return Errno.inval;
}

export function path_filestat_set_times(
  s: WasiState,
  fd: number,
  _flags: number,
  pathPtr: number,
  pathLen: number,
  _atim: bigint,
  _mtim: bigint,
  fstFlags: number,
): number {
  const found = lookupAt(s, fd, Rights.pathFilestatSetTimes, pathPtr, pathLen);
  if (found.node === undefined) return found.errno;
  return badFstflags(fstFlags) ? Errno.inval : Errno.rofs;
}

/** For a path to be created: `exist` if it is there, `rofs` if only the creating is missing. */
function createAt(s: WasiState, fd: number, right: bigint, ptr: number, len: number): number {
  const found = lookupAt(s, fd, right, ptr, len);
  if (found.node !== undefined) return Errno.exist;
  return found.errno === Errno.noent && found.parentExists ? Errno.rofs : found.errno;
}

export function path_create_directory(
  s: WasiState,
  fd: number,
  pathPtr: number,
  pathLen: number,
): number {
  return createAt(s, fd, Rights.pathCreateDirectory, pathPtr, pathLen);
}

export function path_remove_directory(
  s: WasiState,
  fd: number,
  pathPtr: number,
  pathLen: number,
): number {
  const found = lookupAt(s, fd, Rights.pathRemoveDirectory, pathPtr, pathLen);
  if (found.node === undefined) return found.errno;
  return found.node.kind === 'dir' ? Errno.rofs : Errno.notdir;
}

export function path_unlink_file(
  s: WasiState,
  fd: number,
  pathPtr: number,
  pathLen: number,
): number {
  const found = lookupAt(s, fd, Rights.pathUnlinkFile, pathPtr, pathLen);
  if (found.node === undefined) return found.errno;
  return found.node.kind === 'dir' ? Errno.isdir : Errno.rofs;
}

export function path_rename(
  s: WasiState,
  fd: number,
  oldPtr: number,
  oldLen: number,
  newFd: number,
  newPtr: number,
  newLen: number,
): number {
  const from = lookupAt(s, fd, Rights.pathRenameSource, oldPtr, oldLen);
  if (from.node === undefined) return from.errno;
  const to = lookupAt(s, newFd, Rights.pathRenameTarget, newPtr, newLen);
  if (to.node === undefined && !(to.errno === Errno.noent && to.parentExists)) return to.errno;
  return Errno.rofs;
}

export function path_link(
  s: WasiState,
  oldFd: number,
  _oldFlags: number,
  oldPtr: number,
  oldLen: number,
  newFd: number,
  newPtr: number,
  newLen: number,
): number {
  const from = lookupAt(s, oldFd, Rights.pathLinkSource, oldPtr, oldLen);
  if (from.node === undefined) return from.errno;
  return createAt(s, newFd, Rights.pathLinkTarget, newPtr, newLen);
}

/** Note the witx argument order: the link's target text comes first, then fd and new path. */
export function path_symlink(
  s: WasiState,
  oldPtr: number,
  oldLen: number,
  fd: number,
  newPtr: number,
  newLen: number,
): number {
  s.mem.refresh();
  if (!s.mem.ok(oldPtr >>> 0, oldLen >>> 0)) return Errno.fault;
  return createAt(s, fd, Rights.pathSymlink, newPtr, newLen);
}
