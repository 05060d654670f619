/**
 * WASI preview1 numbers, from the witx (`preview1/witx/typenames.witx`). Only what this
 * implementation uses; names follow the witx so they can be grepped against it.
 */

/** `errno` (u16). Every import but `proc_exit` returns one of these as i32. */
export const Errno = {
  success: 0,
  '2big': 1,
  acces: 2,
  again: 6,
  badf: 8,
  busy: 10,
  dquot: 19,
  exist: 20,
  fault: 21,
  fbig: 22,
  ilseq: 25,
  intr: 27,
  inval: 28,
  io: 29,
  isdir: 31,
  loop: 32,
  mfile: 33,
  mlink: 34,
  nametoolong: 37,
  nfile: 41,
  nodev: 43,
  noent: 44,
  nomem: 48,
  nospc: 51,
  nosys: 52,
  notdir: 54,
  notempty: 55,
  notsock: 57,
  notsup: 58,
  nxio: 60,
  overflow: 61,
  perm: 63,
  pipe: 64,
  rofs: 69,
  spipe: 70,
  stale: 72,
  txtbsy: 74,
  xdev: 75,
  notcapable: 76,
} as const;
export type Errno = (typeof Errno)[keyof typeof Errno];

/** Highest errno preview1 defines; WASIX's 77–80 are never returned here. */
export const MAX_ERRNO = 76;

/** `filetype` (u8). */
export const Filetype = {
  unknown: 0,
  blockDevice: 1,
  characterDevice: 2,
  directory: 3,
  regularFile: 4,
  socketDgram: 5,
  socketStream: 6,
  symbolicLink: 7,
} as const;
export type Filetype = (typeof Filetype)[keyof typeof Filetype];

/** `clockid` (u32). */
export const Clockid = {
  realtime: 0,
  monotonic: 1,
  processCputime: 2,
  threadCputime: 3,
} as const;

/** `whence` (u8). */
export const Whence = { set: 0, cur: 1, end: 2 } as const;

/** `eventtype` (u8). */
export const Eventtype = { clock: 0, fdRead: 1, fdWrite: 2 } as const;

/** `oflags` (u16). */
export const Oflags = { creat: 1, directory: 2, excl: 4, trunc: 8 } as const;

/** `fdflags` (u16): append, dsync, nonblock, rsync, sync. */
export const FDFLAGS_ALL = 0x1f;
export const FDFLAG_APPEND = 1;

/** `lookupflags` bit 0: follow a symlink in the last component. */
export const LOOKUP_SYMLINK_FOLLOW = 1;

/** `subclockflags` bit 0. */
export const SUBCLOCK_ABSTIME = 1;

/** `eventrwflags` bit 0. */
export const EVENTRW_HANGUP = 1;

/** `fstflags` (u16): atim, atim_now, mtim, mtim_now. */
export const Fstflags = { atim: 1, atimNow: 2, mtim: 4, mtimNow: 8 } as const;

/** `advice` (u8) values are 0..5. */
export const MAX_ADVICE = 5;

/** `rights` (u64) bits. */
export const Rights = {
  fdDatasync: 1n << 0n,
  fdRead: 1n << 1n,
  fdSeek: 1n << 2n,
  fdFdstatSetFlags: 1n << 3n,
  fdSync: 1n << 4n,
  fdTell: 1n << 5n,
  fdWrite: 1n << 6n,
  fdAdvise: 1n << 7n,
  fdAllocate: 1n << 8n,
  pathCreateDirectory: 1n << 9n,
  pathCreateFile: 1n << 10n,
  pathLinkSource: 1n << 11n,
  pathLinkTarget: 1n << 12n,
  pathOpen: 1n << 13n,
  fdReaddir: 1n << 14n,
  pathReadlink: 1n << 15n,
  pathRenameSource: 1n << 16n,
  pathRenameTarget: 1n << 17n,
  pathFilestatGet: 1n << 18n,
  pathFilestatSetSize: 1n << 19n,
  pathFilestatSetTimes: 1n << 20n,
  fdFilestatGet: 1n << 21n,
  fdFilestatSetSize: 1n << 22n,
  fdFilestatSetTimes: 1n << 23n,
  pathSymlink: 1n << 24n,
  pathRemoveDirectory: 1n << 25n,
  pathUnlinkFile: 1n << 26n,
  pollFdReadwrite: 1n << 27n,
  sockShutdown: 1n << 28n,
  sockAccept: 1n << 29n,
} as const;

/** Every defined right. Preopens report this as `fs_rights_inheriting`: wasi-libc's `open()`
 *  asks for `wanted & inheriting`, so anything less silently strips rights from opened files. */
export const RIGHTS_ALL = 0x3fffffffn;

/** Rights that only make sense for writing; asking for one on a read-only mount is `rofs`. */
export const RIGHTS_WRITE = Rights.fdWrite | Rights.fdAllocate | Rights.fdFilestatSetSize;

/** Rights a regular file can have. The write rights are granted only where asked for (and
 *  refused on read-only mounts before anything is opened). */
export const RIGHTS_FILE =
  Rights.fdDatasync |
  Rights.fdRead |
  Rights.fdSeek |
  Rights.fdFdstatSetFlags |
  Rights.fdSync |
  Rights.fdTell |
  Rights.fdAdvise |
  Rights.fdFilestatGet |
  Rights.fdFilestatSetTimes |
  Rights.pollFdReadwrite |
  RIGHTS_WRITE;

/** Rights a directory can have. The mutating path rights stay even on read-only mounts, so
 *  that those calls reach the mount and answer `rofs` (what a program expects there) instead
 *  of `notcapable`. */
export const RIGHTS_DIR =
  Rights.fdDatasync |
  Rights.fdFdstatSetFlags |
  Rights.fdSync |
  Rights.pathCreateDirectory |
  Rights.pathCreateFile |
  Rights.pathLinkSource |
  Rights.pathLinkTarget |
  Rights.pathOpen |
  Rights.fdReaddir |
  Rights.pathReadlink |
  Rights.pathRenameSource |
  Rights.pathRenameTarget |
  Rights.pathFilestatGet |
  Rights.pathFilestatSetSize |
  Rights.pathFilestatSetTimes |
  Rights.fdFilestatGet |
  Rights.fdFilestatSetTimes |
  Rights.pathSymlink |
  Rights.pathRemoveDirectory |
  Rights.pathUnlinkFile;

/** stdin: readable, pollable, no seek/tell (a pipe, so `isatty()` is false either way). */
export const RIGHTS_STDIN =
  Rights.fdRead | Rights.fdFdstatSetFlags | Rights.fdFilestatGet | Rights.pollFdReadwrite;

/** stdout/stderr: writable, pollable, no seek/tell. */
export const RIGHTS_STDOUT =
  Rights.fdWrite | Rights.fdFdstatSetFlags | Rights.fdFilestatGet | Rights.pollFdReadwrite;

/** Struct sizes (wasm32), from the static asserts in wasix-libc's `api_wasi.h`. */
export const IOVEC_SIZE = 8;
export const FDSTAT_SIZE = 24;
export const FILESTAT_SIZE = 64;
export const DIRENT_SIZE = 24;
export const PRESTAT_SIZE = 8;
export const SUBSCRIPTION_SIZE = 48;
export const EVENT_SIZE = 32;
