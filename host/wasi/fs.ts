/**
 * `fd_*`: stdio and files/directories of read-only trees.
 *
 * Errno choices follow Linux where preview1 is silent: reading or writing an fd not open for it
 * is `badf` (as wasmtime answers), seeking stdio is `spipe`, reading a directory `isdir`, fsync
 * of a pipe `inval`, and anything that would change a tree `rofs` (or `badf` where Linux checks
 * the open mode first). Rights dropped with `fd_fdstat_set_rights` give `notcapable`.
 *
 * Memory: each call re-reads the memory buffer, checks every guest range before writing any
 * result (results are written only on success), and processes at most `MAX_IOVECS` iovecs per
 * call, returning a short count beyond that, so a huge `iovs_len` costs neither memory nor time.
 */
import {
  DIRENT_SIZE,
  Errno,
  FDFLAGS_ALL,
  FDSTAT_SIZE,
  FILESTAT_SIZE,
  Filetype,
  Fstflags,
  IOVEC_SIZE,
  MAX_ADVICE,
  PRESTAT_SIZE,
  Rights,
  Whence,
} from './constants.ts';
import type { GuestMemory } from './memory.ts';
import { OutputLimitError } from './output.ts';
import { ProcExit } from './proc.ts';
import { FdKind, type OpenFd, type WasiState } from './state.ts';
import type { TreeNode } from './tree.ts';

/** Linux's IOV_MAX. */
export const MAX_IOVECS = 1024;
const U32_MAX = 0xffff_ffff;
const MAX_POSITION = BigInt(Number.MAX_SAFE_INTEGER);

const encoder = new TextEncoder();
const DOT = encoder.encode('.');
const DOTDOT = encoder.encode('..');
/** One dirent header, assembled here so a header cut off by the end of the buffer can be
 *  copied in part. Contexts of one thread run one at a time, so sharing it is safe. */
const direntScratch = new Uint8Array(DIRENT_SIZE);
const direntView = new DataView(direntScratch.buffer);

/** Sum of the first `count` iovec lengths (capped at u32), or -1 if any lies outside memory. */
function iovecTotal(m: GuestMemory, iovs: number, count: number): number {
  // With no iovecs the array pointer is never read, so it can't fault (writev(fd, junk, 0) is 0).
  if (count > 0 && !m.ok(iovs, count * IOVEC_SIZE)) return -1;
  const view = m.view;
  let total = 0;
  for (let i = 0; i < count; i++) {
    const ptr = view.getUint32(iovs + i * IOVEC_SIZE, true);
    const len = view.getUint32(iovs + i * IOVEC_SIZE + 4, true);
    if (!m.ok(ptr, len)) return -1;
    total += len;
  }
  return Math.min(total, U32_MAX);
}

/** Copy `src[pos..]` into the iovecs (already checked); returns the bytes copied. */
function scatter(
  m: GuestMemory,
  iovs: number,
  count: number,
  src: Uint8Array,
  pos: number,
): number {
  const view = m.view;
  const u8 = m.u8;
  let copied = 0;
  for (let i = 0; i < count && pos < src.length; i++) {
    const ptr = view.getUint32(iovs + i * IOVEC_SIZE, true);
    const len = view.getUint32(iovs + i * IOVEC_SIZE + 4, true);
    const n = Math.min(len, src.length - pos, U32_MAX - copied);
    if (n > 0) u8.set(src.subarray(pos, pos + n), ptr);
    pos += n;
    copied += n;
  }
  return copied;
}

function isStdio(e: OpenFd): boolean {
  return e.kind === FdKind.stdin || e.kind === FdKind.stdout || e.kind === FdKind.stderr;
}

function fileData(e: OpenFd): Uint8Array | undefined {
  const node = e.node;
  return node !== undefined && node.kind === 'file' ? node.data : undefined;
}

/** A guest that caught the exception that was meant to end it gets it again here. */
function checkHalted(s: WasiState): void {
  if (s.outputLimit !== undefined) throw s.outputLimit;
  if (s.exitCode !== undefined) throw new ProcExit(s.exitCode);
}

export function fd_write(
  s: WasiState,
  fd: number,
  iovs: number,
  iovsLen: number,
  retNwritten: number,
): number {
  checkHalted(s);
  const e = s.fd(fd);
  if (e === undefined || !e.canWrite) return Errno.badf;
  const m = s.mem;
  m.refresh();
  iovs >>>= 0;
  retNwritten >>>= 0;
  const count = Math.min(iovsLen >>> 0, MAX_IOVECS);
  if (!m.ok(retNwritten, 4)) return Errno.fault;
  const total = iovecTotal(m, iovs, count);
  if (total < 0) return Errno.fault;
  if (e.kind === FdKind.stdout) {
    const out = s.stdout;
    if (total > out.remaining()) {
      s.outputLimit = new OutputLimitError(out.limitBytes);
      throw s.outputLimit;
    }
    out.append(m, iovs, count, total);
  } else if (e.kind === FdKind.stderr) {
    const err = s.stderr;
    const kept = err.append(m, iovs, count, Math.min(total, err.remaining()));
    // Report everything as written: a guest must not retry bytes we chose to drop.
    if (kept < total) err.truncated = true;
  } else {
    // Only stdout/stderr are ever writable; tree files never get fd_write.
    return Errno.badf;
  }
  m.view.setUint32(retNwritten, total, true);
  return Errno.success;
}

export function fd_read(
  s: WasiState,
  fd: number,
  iovs: number,
  iovsLen: number,
  retNread: number,
): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (e.kind === FdKind.dir) return Errno.isdir;
  if (!e.canRead) return Errno.badf;
  const m = s.mem;
  m.refresh();
  iovs >>>= 0;
  retNread >>>= 0;
  const count = Math.min(iovsLen >>> 0, MAX_IOVECS);
  if (!m.ok(retNread, 4) || iovecTotal(m, iovs, count) < 0) return Errno.fault;
  let n: number;
  if (e.kind === FdKind.stdin) {
    n = scatter(m, iovs, count, s.stdin, s.stdinPosition);
    s.stdinPosition += n;
  } else {
    const data = fileData(e);
    if (data === undefined) return Errno.badf;
    n = scatter(m, iovs, count, data, e.position);
    e.position += n;
  }
  m.view.setUint32(retNread, n, true);
  return Errno.success;
}

export function fd_pread(
  s: WasiState,
  fd: number,
  iovs: number,
  iovsLen: number,
  offset: bigint,
  retNread: number,
): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (isStdio(e)) return Errno.spipe;
  if (e.kind === FdKind.dir) return Errno.isdir;
  const data = fileData(e);
  if (!e.canRead || data === undefined) return Errno.badf;
  const m = s.mem;
  m.refresh();
  iovs >>>= 0;
  retNread >>>= 0;
  const count = Math.min(iovsLen >>> 0, MAX_IOVECS);
  if (!m.ok(retNread, 4) || iovecTotal(m, iovs, count) < 0) return Errno.fault;
  const at = BigInt.asUintN(64, offset);
  const pos = at >= BigInt(data.length) ? data.length : Number(at);
  m.view.setUint32(retNread, scatter(m, iovs, count, data, pos), true);
  return Errno.success;
}

export function fd_pwrite(
  s: WasiState,
  fd: number,
  _iovs: number,
  _iovsLen: number,
  _offset: bigint,
  _retNwritten: number,
): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (isStdio(e)) return Errno.spipe;
  // Tree files are never open for writing (opening one so is `rofs`).
  return Errno.badf;
}

export function fd_seek(
  s: WasiState,
  fd: number,
  offset: bigint,
  whence: number,
  retNewOffset: number,
): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (isStdio(e)) return Errno.spipe;
  const data = fileData(e);
  if (data === undefined) return Errno.badf;
  // wasi-libc's ftell/lseek(fd, 0, SEEK_CUR) come here too: fd_tell is enough for that.
  const tellOnly = offset === 0n && whence === Whence.cur;
  if (!e.has(tellOnly ? Rights.fdSeek | Rights.fdTell : Rights.fdSeek)) return Errno.notcapable;
  const m = s.mem;
  m.refresh();
  retNewOffset >>>= 0;
  if (!m.ok(retNewOffset, 8)) return Errno.fault;
  let base: number;
  if (whence === Whence.set) base = 0;
  else if (whence === Whence.cur) base = e.position;
  else if (whence === Whence.end) base = data.length;
  else return Errno.inval;
  const next = BigInt(base) + BigInt.asIntN(64, offset);
  if (next < 0n || next > MAX_POSITION) return Errno.inval;
  e.position = Number(next);
  m.view.setBigUint64(retNewOffset, next, true);
  return Errno.success;
}

export function fd_tell(s: WasiState, fd: number, retOffset: number): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (isStdio(e)) return Errno.spipe;
  if (fileData(e) === undefined) return Errno.badf;
  if (!e.has(Rights.fdTell)) return Errno.notcapable;
  const m = s.mem;
  m.refresh();
  retOffset >>>= 0;
  if (!m.ok(retOffset, 8)) return Errno.fault;
  m.view.setBigUint64(retOffset, BigInt(e.position), true);
  return Errno.success;
}

/** Any fd may be closed, stdio and preopens included (the application ABI allows it). */
export function fd_close(s: WasiState, fd: number): number {
  if (s.fd(fd) === undefined) return Errno.badf;
  s.fds[fd] = undefined;
  return Errno.success;
}

/** Both fds must be open (as wasmtime requires); `to` is closed and `from` becomes free. */
export function fd_renumber(s: WasiState, from: number, to: number): number {
  const e = s.fd(from);
  if (e === undefined || s.fd(to) === undefined) return Errno.badf;
  if (from === to) return Errno.success;
  s.fds[to] = e;
  s.fds[from] = undefined;
  return Errno.success;
}

export function fd_advise(
  s: WasiState,
  fd: number,
  _offset: bigint,
  _len: bigint,
  advice: number,
): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (isStdio(e)) return Errno.spipe;
  if (advice < 0 || advice > MAX_ADVICE) return Errno.inval;
  // Advice changes nothing for bytes already in memory.
  return Errno.success;
}

export function fd_allocate(s: WasiState, fd: number, _offset: bigint, _len: bigint): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (isStdio(e)) return Errno.spipe;
  // posix_fallocate needs an fd open for writing; no tree fd is.
  return Errno.badf;
}

function sync(s: WasiState, fd: number): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  // fsync of a pipe is EINVAL on Linux; a read-only file has nothing to flush.
  return isStdio(e) ? Errno.inval : Errno.success;
}

export function fd_sync(s: WasiState, fd: number): number {
  return sync(s, fd);
}

export function fd_datasync(s: WasiState, fd: number): number {
  return sync(s, fd);
}

function filetypeOf(e: OpenFd): Filetype {
  // stdio is a pipe: `unknown`, never `character_device`, so wasi-libc's isatty() is false.
  if (e.node === undefined) return Filetype.unknown;
  return e.node.kind === 'dir' ? Filetype.directory : Filetype.regularFile;
}

export function fd_fdstat_get(s: WasiState, fd: number, retFdstat: number): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  const m = s.mem;
  m.refresh();
  retFdstat >>>= 0;
  if (!m.ok(retFdstat, FDSTAT_SIZE)) return Errno.fault;
  m.u8.fill(0, retFdstat, retFdstat + 8);
  m.view.setUint8(retFdstat, filetypeOf(e));
  m.view.setUint16(retFdstat + 2, e.fdflags, true);
  m.view.setBigUint64(retFdstat + 8, e.rightsBase, true);
  m.view.setBigUint64(retFdstat + 16, e.rightsInheriting, true);
  return Errno.success;
}

/** Flags are recorded and reported back; none changes behaviour (no writes, no blocking). */
export function fd_fdstat_set_flags(s: WasiState, fd: number, flags: number): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if ((flags & ~FDFLAGS_ALL) !== 0) return Errno.inval;
  if (!e.has(Rights.fdFdstatSetFlags)) return Errno.notcapable;
  e.fdflags = flags;
  return Errno.success;
}

export function fd_fdstat_set_rights(
  s: WasiState,
  fd: number,
  base: bigint,
  inheriting: bigint,
): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  const b = BigInt.asUintN(64, base);
  const i = BigInt.asUintN(64, inheriting);
  if ((b & ~e.rightsBase) !== 0n || (i & ~e.rightsInheriting) !== 0n) return Errno.notcapable;
  e.setRights(b, i);
  return Errno.success;
}

/** Write a 64-byte `filestat`. Times are 0: trees carry none, and stable values keep responses
 *  (ETag, Last-Modified) reproducible. */
export function writeFilestat(m: GuestMemory, ptr: number, node: TreeNode | undefined): void {
  const view = m.view;
  m.u8.fill(0, ptr, ptr + FILESTAT_SIZE);
  if (node === undefined) {
    view.setUint8(ptr + 16, Filetype.unknown);
    view.setBigUint64(ptr + 24, 1n, true);
    return;
  }
  view.setBigUint64(ptr, node.dev, true);
  view.setBigUint64(ptr + 8, node.ino, true);
  view.setUint8(ptr + 16, node.kind === 'dir' ? Filetype.directory : Filetype.regularFile);
  view.setBigUint64(ptr + 24, 1n, true);
  view.setBigUint64(ptr + 32, node.kind === 'file' ? BigInt(node.data.length) : 0n, true);
}

export function fd_filestat_get(s: WasiState, fd: number, retFilestat: number): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (!e.has(Rights.fdFilestatGet)) return Errno.notcapable;
  const m = s.mem;
  m.refresh();
  retFilestat >>>= 0;
  if (!m.ok(retFilestat, FILESTAT_SIZE)) return Errno.fault;
  writeFilestat(m, retFilestat, e.node);
  return Errno.success;
}

export function fd_filestat_set_size(s: WasiState, fd: number, _size: bigint): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  // ftruncate: EINVAL for a pipe or a directory, EBADF for a file not open for writing.
  return e.kind === FdKind.file ? Errno.badf : Errno.inval;
}

/** Invalid `fstflags`: unknown bits, or a time both given and "now". */
export function badFstflags(flags: number): boolean {
  return (
    (flags & ~0xf) !== 0 ||
    (flags & (Fstflags.atim | Fstflags.atimNow)) === (Fstflags.atim | Fstflags.atimNow) ||
    (flags & (Fstflags.mtim | Fstflags.mtimNow)) === (Fstflags.mtim | Fstflags.mtimNow)
  );
}

export function fd_filestat_set_times(
  s: WasiState,
  fd: number,
  _atim: bigint,
  _mtim: bigint,
  fstFlags: number,
): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (badFstflags(fstFlags)) return Errno.inval;
  // A pipe's times are not observable here: accept as a no-op. Tree nodes are read-only.
  return isStdio(e) ? Errno.success : Errno.rofs;
}

export function fd_prestat_get(s: WasiState, fd: number, retPrestat: number): number {
  const e = s.fd(fd);
  // wasi-libc scans fds 3, 4, … and stops at the first badf; anything else ends the program.
  if (e === undefined || e.preopen === undefined) return Errno.badf;
  const m = s.mem;
  m.refresh();
  retPrestat >>>= 0;
  if (!m.ok(retPrestat, PRESTAT_SIZE)) return Errno.fault;
  const name = (e.preopenBytes ??= encoder.encode(e.preopen));
  m.view.setUint32(retPrestat, 0, true); // tag 0 = dir, plus padding
  m.view.setUint32(retPrestat + 4, name.length, true);
  return Errno.success;
}

/** Writes the name without a NUL. A buffer shorter than the name is `nametoolong` (as wasmtime
 *  answers) rather than a truncated name the guest could mistake for another directory. */
export function fd_prestat_dir_name(
  s: WasiState,
  fd: number,
  path: number,
  pathLen: number,
): number {
  const e = s.fd(fd);
  if (e === undefined || e.preopen === undefined) return Errno.badf;
  const m = s.mem;
  m.refresh();
  path >>>= 0;
  pathLen >>>= 0;
  const name = (e.preopenBytes ??= encoder.encode(e.preopen));
  if (pathLen < name.length) return Errno.nametoolong;
  if (!m.ok(path, name.length)) return Errno.fault;
  m.u8.set(name, path);
  return Errno.success;
}

/**
 * Entries are `.`, `..`, then the children in name order; the cookie is the index, stable
 * because trees never change. The buffer is filled as far as it goes, the last entry cut off
 * if need be: wasi-libc takes a short fill as end-of-directory and re-asks from the last
 * complete entry's `d_next` with a bigger buffer when one is cut off.
 */
export function fd_readdir(
  s: WasiState,
  fd: number,
  buf: number,
  bufLen: number,
  cookie: bigint,
  retBufused: number,
): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  const dir = e.node;
  if (dir === undefined || dir.kind !== 'dir') return Errno.notdir;
  if (!e.has(Rights.fdReaddir)) return Errno.notcapable;
  const m = s.mem;
  m.refresh();
  buf >>>= 0;
  bufLen >>>= 0;
  retBufused >>>= 0;
  if (!m.ok(buf, bufLen) || !m.ok(retBufused, 4)) return Errno.fault;
  const u8 = m.u8;
  const total = dir.entries.length + 2;
  const start = BigInt.asUintN(64, cookie);
  let used = 0;
  for (let i = start >= BigInt(total) ? total : Number(start); i < total && used < bufLen; i++) {
    let name: Uint8Array;
    let node: TreeNode;
    if (i === 0) {
      name = DOT;
      node = dir;
    } else if (i === 1) {
      name = DOTDOT;
      node = dir.parent ?? dir;
    } else {
      const entry = dir.entries[i - 2];
      if (entry === undefined) break;
      name = entry.nameBytes;
      node = entry.node;
    }
    direntView.setBigUint64(0, BigInt(i + 1), true);
    direntView.setBigUint64(8, node.ino, true);
    direntView.setUint32(16, name.length, true);
    direntView.setUint32(20, node.kind === 'dir' ? Filetype.directory : Filetype.regularFile, true);
    const header = Math.min(DIRENT_SIZE, bufLen - used);
    u8.set(header === DIRENT_SIZE ? direntScratch : direntScratch.subarray(0, header), buf + used);
    used += header;
    const n = Math.min(name.length, bufLen - used);
    if (n > 0) u8.set(n === name.length ? name : name.subarray(0, n), buf + used);
    used += n;
  }
  m.view.setUint32(retBufused, used, true);
  return Errno.success;
}
