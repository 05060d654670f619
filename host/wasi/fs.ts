/**
 * `fd_*`: stdio, and the files and directories of any mount (vfs.ts).
 *
 * Errno choices follow Linux where preview1 is silent: reading or writing an fd not open for it
 * is `badf` (as wasmtime answers), seeking stdio is `spipe`, reading a directory `isdir`, fsync
 * of a pipe `inval`, and changing a read-only mount `rofs` (or `badf` where Linux checks the
 * open mode first). Rights dropped with `fd_fdstat_set_rights` give `notcapable`.
 *
 * Memory: each call re-reads the memory buffer, checks every guest range before writing any
 * result (results are written only on success), and processes at most `MAX_IOVECS` iovecs per
 * call, returning a short count beyond that, so a huge `iovs_len` costs neither memory nor time.
 *
 * Files are read and written at the fd's own position (`fd_seek` moves only that); with the
 * append flag (at open or from `fd_fdstat_set_flags`) writes go to the end of the file.
 */
import { clockNow } from './clocks.ts';
import {
  Clockid,
  DIRENT_SIZE,
  Errno,
  FDFLAG_APPEND,
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
import { iovecTotal, MAX_IOVECS, scatter } from './iovec.ts';
import type { GuestMemory } from './memory.ts';
import { OutputLimitError } from './output.ts';
import { ProcExit } from './proc.ts';
import { FdKind, type OpenFd, type WasiState } from './state.ts';
import { type DirSnapshot, errnoOf, type Stat } from './vfs.ts';

export { MAX_IOVECS };
const MAX_POSITION = Number.MAX_SAFE_INTEGER;
const MAX_POSITION_BIG = BigInt(MAX_POSITION);

const encoder = new TextEncoder();
const DOT = encoder.encode('.');
const DOTDOT = encoder.encode('..');
/** One dirent header, assembled here so a header cut off by the end of the buffer can be
 *  copied in part. Contexts of one thread run one at a time, so sharing it is safe. */
const direntScratch = new Uint8Array(DIRENT_SIZE);
const direntView = new DataView(direntScratch.buffer);

function isStdio(e: OpenFd): boolean {
  return e.kind === FdKind.stdin || e.kind === FdKind.stdout || e.kind === FdKind.stderr;
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
  let written = total;
  if (e.kind === FdKind.stdout) {
    const out = s.stdout;
    if (total > out.remaining()) {
      s.outputLimit = new OutputLimitError(out.limitBytes);
      throw s.outputLimit;
    }
    try {
      out.append(m, iovs, count, total);
    } catch (err) {
      return errnoOf(err);
    }
  } else if (e.kind === FdKind.stderr) {
    const err = s.stderr;
    let kept: number;
    try {
      kept = err.append(m, iovs, count, Math.min(total, err.remaining()));
    } catch (thrown) {
      return errnoOf(thrown);
    }
    // Report everything as written: a guest must not retry bytes we chose to drop.
    if (kept < total) err.truncated = true;
  } else {
    const file = e.file;
    if (file === undefined) return Errno.badf;
    try {
      const pos = (e.fdflags & FDFLAG_APPEND) !== 0 ? file.size() : e.position;
      if (pos + total > MAX_POSITION) return Errno.fbig;
      written = file.write(m, iovs, count, total, pos);
      e.position = pos + written;
    } catch (err) {
      return errnoOf(err);
    }
  }
  m.view.setUint32(retNwritten, written, true);
  return Errno.success;
}

/** One read from the stdin source, into the first non-empty iovec: a source may block, so
 *  it is asked once per call, and a short read is what a pipe gives too. */
function readSource(s: WasiState, m: GuestMemory, iovs: number, count: number): number {
  const source = s.stdinSource;
  if (source === undefined) {
    const n = scatter(m, iovs, count, s.stdin, s.stdinPosition);
    s.stdinPosition += n;
    return n;
  }
  const view = m.view;
  for (let i = 0; i < count; i++) {
    const len = view.getUint32(iovs + i * IOVEC_SIZE + 4, true);
    if (len === 0) continue;
    const ptr = view.getUint32(iovs + i * IOVEC_SIZE, true);
    const n = source.read(m.u8.subarray(ptr, ptr + len));
    if (!Number.isInteger(n) || n < 0 || n > len) {
      throw new TypeError(`WASI stdin source returned ${n} for a buffer of ${len} bytes`);
    }
    return n;
  }
  return 0;
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
  try {
    if (e.kind === FdKind.stdin) {
      n = readSource(s, m, iovs, count);
    } else {
      const file = e.file;
      if (file === undefined) return Errno.badf;
      n = file.read(m, iovs, count, e.position);
      e.position += n;
    }
  } catch (err) {
    return errnoOf(err);
  }
  m.refresh();
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
  const file = e.file;
  if (!e.canRead || file === undefined) return Errno.badf;
  const m = s.mem;
  m.refresh();
  iovs >>>= 0;
  retNread >>>= 0;
  const count = Math.min(iovsLen >>> 0, MAX_IOVECS);
  if (!m.ok(retNread, 4) || iovecTotal(m, iovs, count) < 0) return Errno.fault;
  const at = BigInt.asUintN(64, offset);
  const pos = at >= MAX_POSITION_BIG ? MAX_POSITION : Number(at);
  let n: number;
  try {
    n = file.read(m, iovs, count, pos);
  } catch (err) {
    return errnoOf(err);
  }
  m.view.setUint32(retNread, n, true);
  return Errno.success;
}

/** Writes at `offset` whatever the append flag says (POSIX; Linux would append). */
export function fd_pwrite(
  s: WasiState,
  fd: number,
  iovs: number,
  iovsLen: number,
  offset: bigint,
  retNwritten: number,
): number {
  checkHalted(s);
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (isStdio(e)) return Errno.spipe;
  const file = e.file;
  if (!e.canWrite || file === undefined) return Errno.badf;
  const m = s.mem;
  m.refresh();
  iovs >>>= 0;
  retNwritten >>>= 0;
  const count = Math.min(iovsLen >>> 0, MAX_IOVECS);
  if (!m.ok(retNwritten, 4)) return Errno.fault;
  const total = iovecTotal(m, iovs, count);
  if (total < 0) return Errno.fault;
  const at = BigInt.asUintN(64, offset);
  if (at + BigInt(total) > MAX_POSITION_BIG) return Errno.fbig;
  let n: number;
  try {
    n = file.write(m, iovs, count, total, Number(at));
  } catch (err) {
    return errnoOf(err);
  }
  m.view.setUint32(retNwritten, n, true);
  return Errno.success;
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
  const file = e.file;
  if (file === undefined) return Errno.badf;
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
  else if (whence === Whence.end) {
    try {
      base = file.size();
    } catch (err) {
      return errnoOf(err);
    }
  } else return Errno.inval;
  const next = BigInt(base) + BigInt.asIntN(64, offset);
  if (next < 0n || next > MAX_POSITION_BIG) return Errno.inval;
  e.position = Number(next);
  m.view.setBigUint64(retNewOffset, next, true);
  return Errno.success;
}

export function fd_tell(s: WasiState, fd: number, retOffset: number): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (isStdio(e)) return Errno.spipe;
  if (e.file === undefined) return Errno.badf;
  if (!e.has(Rights.fdTell)) return Errno.notcapable;
  const m = s.mem;
  m.refresh();
  retOffset >>>= 0;
  if (!m.ok(retOffset, 8)) return Errno.fault;
  m.view.setBigUint64(retOffset, BigInt(e.position), true);
  return Errno.success;
}

/** Close what `e` holds. The fd is gone whatever the answer (as with close(2)). */
function release(e: OpenFd): number {
  try {
    e.file?.close();
    if (e.obj !== undefined && --e.obj.refs === 0) e.obj.close();
  } catch (err) {
    return errnoOf(err);
  }
  return Errno.success;
}

/** Any fd may be closed, stdio and preopens included (the application ABI allows it). */
export function fd_close(s: WasiState, fd: number): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  s.fds[fd] = undefined;
  return release(e);
}

/** Both fds must be open (as wasmtime requires); `to` is closed and `from` becomes free. */
export function fd_renumber(s: WasiState, from: number, to: number): number {
  const e = s.fd(from);
  const old = s.fd(to);
  if (e === undefined || old === undefined) return Errno.badf;
  if (from === to) return Errno.success;
  s.fds[to] = e;
  s.fds[from] = undefined;
  release(old);
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
  // Advice is a hint, and Node.js has no posix_fadvise to pass it on with.
  return Errno.success;
}

/** Grows the file to `offset + len` if it is shorter (posix_fallocate without the
 *  reservation: Node.js can't reserve blocks, and in-memory files have none). */
export function fd_allocate(s: WasiState, fd: number, offset: bigint, len: bigint): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (isStdio(e)) return Errno.spipe;
  const file = e.file;
  // posix_fallocate needs an fd open for writing.
  if (file === undefined || !e.canWrite) return Errno.badf;
  if (!e.has(Rights.fdAllocate)) return Errno.notcapable;
  const length = BigInt.asUintN(64, len);
  if (length === 0n) return Errno.inval;
  const end = BigInt.asUintN(64, offset) + length;
  if (end > MAX_POSITION_BIG) return Errno.fbig;
  try {
    if (Number(end) > file.size()) file.setSize(Number(end));
  } catch (err) {
    return errnoOf(err);
  }
  return Errno.success;
}

function sync(s: WasiState, fd: number, dataOnly: boolean): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  // fsync of a pipe is EINVAL on Linux.
  if (isStdio(e)) return Errno.inval;
  try {
    e.file?.sync(dataOnly);
  } catch (err) {
    return errnoOf(err);
  }
  return Errno.success;
}

export function fd_sync(s: WasiState, fd: number): number {
  return sync(s, fd, false);
}

export function fd_datasync(s: WasiState, fd: number): number {
  return sync(s, fd, true);
}

/** stdio is a pipe (`unknown`) unless the context says it is a terminal (`character_device`);
 *  it never has seek/tell rights, so wasi-libc's isatty() is true exactly for the latter. */
function stdioFiletype(s: WasiState, e: OpenFd): Filetype {
  return (s.ttyMask & (1 << e.kind)) !== 0 ? Filetype.characterDevice : Filetype.unknown;
}

function filetypeOf(s: WasiState, e: OpenFd): Filetype {
  if (e.obj !== undefined) return e.obj.filetype as Filetype;
  if (e.dir !== undefined) return Filetype.directory;
  if (e.file !== undefined) return Filetype.regularFile;
  return stdioFiletype(s, e);
}

export function fd_fdstat_get(s: WasiState, fd: number, retFdstat: number): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  const m = s.mem;
  m.refresh();
  retFdstat >>>= 0;
  if (!m.ok(retFdstat, FDSTAT_SIZE)) return Errno.fault;
  m.u8.fill(0, retFdstat, retFdstat + 8);
  m.view.setUint8(retFdstat, filetypeOf(s, e));
  m.view.setUint16(retFdstat + 2, e.fdflags, true);
  m.view.setBigUint64(retFdstat + 8, e.rightsBase, true);
  m.view.setBigUint64(retFdstat + 16, e.rightsInheriting, true);
  return Errno.success;
}

/** Flags are recorded and reported back; of them, only append changes behaviour (writes go to
 *  the end). Nothing here blocks, and syncing is up to `fd_sync`. */
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

/** Write a 64-byte `filestat`; `stat` undefined is stdio: zeros, one link, type `filetype`.
 *  (Read-only trees carry zero times: stable values keep responses reproducible.) */
export function writeFilestat(
  m: GuestMemory,
  ptr: number,
  stat: Stat | undefined,
  filetype: Filetype = Filetype.unknown,
): void {
  const view = m.view;
  m.u8.fill(0, ptr, ptr + FILESTAT_SIZE);
  if (stat === undefined) {
    view.setUint8(ptr + 16, filetype);
    view.setBigUint64(ptr + 24, 1n, true);
    return;
  }
  view.setBigUint64(ptr, stat.dev, true);
  view.setBigUint64(ptr + 8, stat.ino, true);
  view.setUint8(ptr + 16, stat.filetype);
  view.setBigUint64(ptr + 24, stat.nlink, true);
  view.setBigUint64(ptr + 32, stat.size, true);
  view.setBigUint64(ptr + 40, stat.atimNs, true);
  view.setBigUint64(ptr + 48, stat.mtimNs, true);
  view.setBigUint64(ptr + 56, stat.ctimNs, true);
}

export function fd_filestat_get(s: WasiState, fd: number, retFilestat: number): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (!e.has(Rights.fdFilestatGet)) return Errno.notcapable;
  const m = s.mem;
  m.refresh();
  retFilestat >>>= 0;
  if (!m.ok(retFilestat, FILESTAT_SIZE)) return Errno.fault;
  let stat: Stat | undefined;
  try {
    e.dir?.revalidate();
    stat = (e.file ?? e.dir)?.stat();
  } catch (err) {
    return errnoOf(err);
  }
  writeFilestat(m, retFilestat, stat, stdioFiletype(s, e));
  return Errno.success;
}

export function fd_filestat_set_size(s: WasiState, fd: number, size: bigint): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  // ftruncate: EINVAL for a pipe or a directory, EBADF for a file not open for writing.
  const file = e.file;
  if (file === undefined) return Errno.inval;
  if (!e.canWrite) return Errno.badf;
  if (!e.has(Rights.fdFilestatSetSize)) return Errno.notcapable;
  const bytes = BigInt.asUintN(64, size);
  if (bytes > MAX_POSITION_BIG) return Errno.fbig;
  try {
    file.setSize(Number(bytes));
  } catch (err) {
    return errnoOf(err);
  }
  return Errno.success;
}

/** Invalid `fstflags`: unknown bits, or a time both given and "now". */
export function badFstflags(flags: number): boolean {
  return (
    (flags & ~0xf) !== 0 ||
    (flags & (Fstflags.atim | Fstflags.atimNow)) === (Fstflags.atim | Fstflags.atimNow) ||
    (flags & (Fstflags.mtim | Fstflags.mtimNow)) === (Fstflags.mtim | Fstflags.mtimNow)
  );
}

/** The times `fstflags` ask for (already checked): undefined leaves one as it is. */
export function requestedTimes(
  atim: bigint,
  mtim: bigint,
  flags: number,
): [bigint | undefined, bigint | undefined] {
  const now =
    (flags & (Fstflags.atimNow | Fstflags.mtimNow)) !== 0
      ? (clockNow(Clockid.realtime) as bigint)
      : 0n;
  const a =
    (flags & Fstflags.atimNow) !== 0
      ? now
      : (flags & Fstflags.atim) !== 0
        ? BigInt.asUintN(64, atim)
        : undefined;
  const m =
    (flags & Fstflags.mtimNow) !== 0
      ? now
      : (flags & Fstflags.mtim) !== 0
        ? BigInt.asUintN(64, mtim)
        : undefined;
  return [a, m];
}

export function fd_filestat_set_times(
  s: WasiState,
  fd: number,
  atim: bigint,
  mtim: bigint,
  fstFlags: number,
): number {
  const e = s.fd(fd);
  if (e === undefined) return Errno.badf;
  if (badFstflags(fstFlags)) return Errno.inval;
  const target = e.file ?? e.dir;
  // A pipe's times are not observable here: accept as a no-op.
  if (target === undefined) return Errno.success;
  if (target.mount.readOnly) return Errno.rofs;
  if (!e.has(Rights.fdFilestatSetTimes)) return Errno.notcapable;
  const [a, m] = requestedTimes(atim, mtim, fstFlags);
  if (a === undefined && m === undefined) return Errno.success;
  try {
    e.dir?.revalidate();
    target.setTimes(a, m);
  } catch (err) {
    return errnoOf(err);
  }
  return Errno.success;
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
 * Entries are `.`, `..`, then the directory's entries; the cookie is an index into a listing
 * the fd keeps from the call with cookie 0 (read-only trees share one listing per directory),
 * so removing or adding entries between calls never skips or repeats one that stays. The
 * buffer is filled as far as it goes, the last entry cut off if need be: wasi-libc takes a
 * short fill as end-of-directory and re-asks from the last complete entry's `d_next` with a
 * bigger buffer when one is cut off.
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
  const dir = e.dir;
  if (dir === undefined) return Errno.notdir;
  if (!e.has(Rights.fdReaddir)) return Errno.notcapable;
  const m = s.mem;
  m.refresh();
  buf >>>= 0;
  bufLen >>>= 0;
  retBufused >>>= 0;
  if (!m.ok(buf, bufLen) || !m.ok(retBufused, 4)) return Errno.fault;
  const start = BigInt.asUintN(64, cookie);
  let listing: DirSnapshot;
  try {
    if (start === 0n || e.listing === undefined) {
      dir.revalidate();
      e.listing = dir.snapshot();
    }
    listing = e.listing;
  } catch (err) {
    return errnoOf(err);
  }
  const u8 = m.u8;
  const entries = listing.entries;
  const total = entries.length + 2;
  let used = 0;
  for (let i = start >= BigInt(total) ? total : Number(start); i < total && used < bufLen; i++) {
    let name: Uint8Array;
    let ino: bigint;
    let filetype: Filetype;
    if (i === 0) {
      name = DOT;
      ino = listing.selfIno;
      filetype = Filetype.directory;
    } else if (i === 1) {
      name = DOTDOT;
      ino = listing.parentIno;
      filetype = Filetype.directory;
    } else {
      const entry = entries[i - 2];
      if (entry === undefined) break;
      name = entry.nameBytes;
      ino = entry.ino;
      filetype = entry.filetype;
    }
    direntView.setBigUint64(0, BigInt(i + 1), true);
    direntView.setBigUint64(8, ino, true);
    direntView.setUint32(16, name.length, true);
    direntView.setUint32(20, filetype, true);
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
