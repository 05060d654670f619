/**
 * A writable in-memory directory tree, mounted like a `ReadOnlyTree` (`/tmp`, say). One tree
 * may serve one context or many in turn, as the caller decides; it lives on one thread.
 *
 * POSIX semantics where preview1 leaves them to the host: hard links share one file (`nlink`
 * counts the names; a directory's is 2 plus its subdirectories), an unlinked file stays
 * readable through fds still open on it, a removed directory takes no new entries (`noent`),
 * and renaming a directory into itself is `inval`. Times are realtime ns: writes and size
 * changes set a file's mtime and ctime, entry changes those of the directory, and link counts
 * and renames a node's ctime. Reads don't set atime (as with `noatime`).
 *
 * Symlinks are stored as given, whatever their target; path resolution (path.ts) follows them
 * itself and refuses those that lead out of the directory a lookup started from.
 *
 * Memory is bounded: file bytes in total (`maxBytes`, default 1 GiB) and nodes (`maxNodes`,
 * default 1,000,000); past either, the guest gets `nospc`, not the host an out-of-memory crash.
 * Bytes of an unlinked file are released when its last fd closes.
 */
import { Clockid, Errno, Filetype } from './constants.ts';
import { clockNow } from './clocks.ts';
import { gather, scatter } from './iovec.ts';
import type { GuestMemory } from './memory.ts';
import { entrySegments, type TreeEntry } from './tree.ts';
import {
  type DirListing,
  type DirSnapshot,
  EMPTY_BYTES,
  FsError,
  type Mount,
  nextDevice,
  type Stat,
  type VDir,
  type VFile,
  type VFileNode,
  type VNode,
  type VSymlink,
} from './vfs.ts';

export const DEFAULT_MEMORY_TREE_MAX_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_MEMORY_TREE_MAX_NODES = 1_000_000;

/** Limits of a `MemoryTree`. */
export interface MemoryTreeOptions {
  /** File bytes the tree may hold in total (default 1 GiB); past it, writes fail with `nospc`. */
  maxBytes?: number;
  /** Files, directories and symlinks it may hold, the root included (default 1,000,000). */
  maxNodes?: number;
}

/** A `TreeEntry`, or a symlink `{ path, symlink: target }`. */
export type MemoryTreeEntry = TreeEntry | { path: string; symlink: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function now(): bigint {
  return clockNow(Clockid.realtime) as bigint;
}

function checkLimit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`MemoryTree ${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

/** Bookkeeping shared by a tree's nodes: inode numbers and the two limits. */
class Store {
  readonly dev = nextDevice();
  readonly maxBytes: number;
  readonly maxNodes: number;
  usedBytes = 0;
  nodes = 0;
  #nextIno = 1n;

  constructor(maxBytes: number, maxNodes: number) {
    this.maxBytes = maxBytes;
    this.maxNodes = maxNodes;
  }

  newNode(): bigint {
    if (this.nodes >= this.maxNodes) throw new FsError(Errno.nospc);
    this.nodes++;
    return this.#nextIno++;
  }

  /** Account for `delta` more bytes (negative: fewer). */
  reserve(delta: number): void {
    if (delta > 0 && delta > this.maxBytes - this.usedBytes) throw new FsError(Errno.nospc);
    this.usedBytes += delta;
  }
}

class MemFile implements VFileNode, VFile {
  readonly kind = 'file';
  readonly mount: MemoryTree;
  readonly store: Store;
  readonly ino: bigint;
  /** Bytes past `length` are always zero, so growing needs no fill. */
  data: Uint8Array = EMPTY_BYTES;
  length = 0;
  nlink = 0;
  /** Open fds on this file: an unlinked file lives while there are any. */
  opened = 0;
  gone = false;
  atimNs: bigint;
  mtimNs: bigint;
  ctimNs: bigint;

  constructor(mount: MemoryTree, store: Store, t: bigint) {
    this.mount = mount;
    this.store = store;
    this.ino = store.newNode();
    this.atimNs = this.mtimNs = this.ctimNs = t;
  }

  stat(): Stat {
    return {
      dev: this.store.dev,
      ino: this.ino,
      filetype: Filetype.regularFile,
      nlink: BigInt(this.nlink),
      size: BigInt(this.length),
      atimNs: this.atimNs,
      mtimNs: this.mtimNs,
      ctimNs: this.ctimNs,
    };
  }

  setTimes(atimNs: bigint | undefined, mtimNs: bigint | undefined): void {
    if (atimNs !== undefined) this.atimNs = atimNs;
    if (mtimNs !== undefined) this.mtimNs = mtimNs;
    this.ctimNs = now();
  }

  open(_read: boolean, _write: boolean, truncate: boolean): VFile {
    if (truncate && this.length > 0) this.setSize(0);
    this.opened++;
    return this;
  }

  size(): number {
    return this.length;
  }

  read(m: GuestMemory, iovs: number, count: number, pos: number): number {
    return scatter(m, iovs, count, this.data.subarray(0, this.length), pos);
  }

  write(m: GuestMemory, iovs: number, count: number, total: number, pos: number): number {
    // A zero-byte write changes nothing, not even the size when `pos` is past the end.
    if (total === 0) return 0;
    const end = pos + total;
    if (end > this.length) this.resize(end);
    gather(m, iovs, count, total, this.data, pos);
    this.mtimNs = this.ctimNs = now();
    return total;
  }

  setSize(size: number): void {
    this.resize(size);
    this.mtimNs = this.ctimNs = now();
  }

  private resize(size: number): void {
    if (size > Number.MAX_SAFE_INTEGER) throw new FsError(Errno.fbig);
    this.store.reserve(size - this.length);
    if (size > this.data.length) {
      // Double, so a file written in small appends is copied O(log n) times; never past the
      // tree's limit, which `reserve` has just checked `size` against.
      const capacity = Math.max(size, Math.min(this.data.length * 2, this.store.maxBytes));
      const next = new Uint8Array(capacity);
      next.set(this.data.subarray(0, this.length));
      this.data = next;
    } else if (size < this.length) {
      this.data.fill(0, size, this.length);
    }
    this.length = size;
  }

  sync(): void {}

  close(): void {
    this.opened--;
    this.releaseIfGone();
  }

  /** After the last name and the last fd are gone, give the bytes back. */
  releaseIfGone(): void {
    if (this.nlink > 0 || this.opened > 0 || this.gone) return;
    this.gone = true;
    this.store.reserve(-this.length);
    this.store.nodes--;
    this.data = EMPTY_BYTES;
    this.length = 0;
  }
}

class MemSymlink implements VSymlink {
  readonly kind = 'symlink';
  readonly mount: MemoryTree;
  readonly store: Store;
  readonly ino: bigint;
  readonly target: Uint8Array;
  nlink = 0;
  atimNs: bigint;
  mtimNs: bigint;
  ctimNs: bigint;

  constructor(mount: MemoryTree, store: Store, target: Uint8Array, t: bigint) {
    this.mount = mount;
    this.store = store;
    this.ino = store.newNode();
    this.target = target;
    this.atimNs = this.mtimNs = this.ctimNs = t;
  }

  stat(): Stat {
    return {
      dev: this.store.dev,
      ino: this.ino,
      filetype: Filetype.symbolicLink,
      nlink: BigInt(this.nlink),
      size: BigInt(this.target.length),
      atimNs: this.atimNs,
      mtimNs: this.mtimNs,
      ctimNs: this.ctimNs,
    };
  }

  setTimes(atimNs: bigint | undefined, mtimNs: bigint | undefined): void {
    if (atimNs !== undefined) this.atimNs = atimNs;
    if (mtimNs !== undefined) this.mtimNs = mtimNs;
    this.ctimNs = now();
  }

  readlink(): Uint8Array {
    return this.target;
  }

  releaseIfGone(): void {
    if (this.nlink === 0) this.store.nodes--;
  }
}

type MemNode = MemFile | MemSymlink | MemDir;

class MemDir implements VDir {
  readonly kind = 'dir';
  readonly mount: MemoryTree;
  readonly store: Store;
  readonly ino: bigint;
  /** undefined for the root. Changes when the directory is renamed. */
  parent: MemDir | undefined;
  readonly children = new Map<string, MemNode>();
  subdirs = 0;
  /** Set by rmdir: fds may still name this directory, but it takes no new entries. */
  removed = false;
  atimNs: bigint;
  mtimNs: bigint;
  ctimNs: bigint;

  constructor(mount: MemoryTree, store: Store, parent: MemDir | undefined, t: bigint) {
    this.mount = mount;
    this.store = store;
    this.ino = store.newNode();
    this.parent = parent;
    this.atimNs = this.mtimNs = this.ctimNs = t;
  }

  stat(): Stat {
    return {
      dev: this.store.dev,
      ino: this.ino,
      filetype: Filetype.directory,
      nlink: BigInt(this.removed ? 0 : 2 + this.subdirs),
      size: 0n,
      atimNs: this.atimNs,
      mtimNs: this.mtimNs,
      ctimNs: this.ctimNs,
    };
  }

  setTimes(atimNs: bigint | undefined, mtimNs: bigint | undefined): void {
    if (atimNs !== undefined) this.atimNs = atimNs;
    if (mtimNs !== undefined) this.mtimNs = mtimNs;
    this.ctimNs = now();
  }

  /** A directory fd holds this node itself, wherever it has moved: nothing can go stale. */
  revalidate(): void {}

  lookup(name: string): VNode | undefined {
    return this.children.get(name);
  }

  snapshot(): DirSnapshot {
    const entries: DirListing[] = [];
    for (const name of [...this.children.keys()].toSorted()) {
      const node = this.children.get(name) as MemNode;
      const filetype =
        node.kind === 'dir'
          ? Filetype.directory
          : node.kind === 'file'
            ? Filetype.regularFile
            : Filetype.symbolicLink;
      entries.push({ nameBytes: encoder.encode(name), ino: node.ino, filetype });
    }
    return { selfIno: this.ino, parentIno: (this.parent ?? this).ino, entries };
  }

  isEmpty(): boolean {
    return this.children.size === 0;
  }

  contains(other: VDir): boolean {
    for (let d: MemDir | undefined = other as MemDir; d !== undefined; d = d.parent) {
      if (d === this) return true;
    }
    return false;
  }

  private live(): void {
    if (this.removed) throw new FsError(Errno.noent);
  }

  private touch(t: bigint): void {
    this.mtimNs = this.ctimNs = t;
  }

  mkdir(name: string): void {
    this.live();
    const t = now();
    this.children.set(name, new MemDir(this.mount, this.store, this, t));
    this.subdirs++;
    this.touch(t);
  }

  createFile(name: string, read: boolean, write: boolean): VFile {
    this.live();
    const t = now();
    const file = new MemFile(this.mount, this.store, t);
    file.nlink = 1;
    this.children.set(name, file);
    this.touch(t);
    return file.open(read, write, false);
  }

  unlink(name: string): void {
    const node = this.children.get(name);
    if (node === undefined) throw new FsError(Errno.noent);
    if (node.kind === 'dir') throw new FsError(Errno.isdir);
    const t = now();
    this.children.delete(name);
    node.nlink--;
    node.ctimNs = t;
    node.releaseIfGone();
    this.touch(t);
  }

  rmdir(name: string): void {
    const node = this.children.get(name);
    if (node === undefined) throw new FsError(Errno.noent);
    if (node.kind !== 'dir') throw new FsError(Errno.notdir);
    if (node.children.size > 0) throw new FsError(Errno.notempty);
    this.children.delete(name);
    this.drop(node);
    this.touch(now());
  }

  /** Forget the (empty) subdirectory `dir`, already taken out of `children`. */
  private drop(dir: MemDir): void {
    dir.removed = true;
    this.subdirs--;
    this.store.nodes--;
  }

  rename(name: string, to: VDir, toName: string): void {
    const target = to as MemDir;
    target.live();
    const node = this.children.get(name);
    if (node === undefined) throw new FsError(Errno.noent);
    const existing = target.children.get(toName);
    // Two names of one file: POSIX says rename does nothing.
    if (existing === node) return;
    const t = now();
    if (existing !== undefined) {
      if (existing.kind === 'dir') {
        if (existing.children.size > 0) throw new FsError(Errno.notempty);
        target.drop(existing);
      } else {
        existing.nlink--;
        existing.ctimNs = t;
        existing.releaseIfGone();
      }
    }
    this.children.delete(name);
    target.children.set(toName, node);
    if (node.kind === 'dir') {
      this.subdirs--;
      target.subdirs++;
      node.parent = target;
    }
    node.ctimNs = t;
    this.touch(t);
    target.touch(t);
  }

  link(node: VNode, name: string): void {
    this.live();
    if (node.kind !== 'file' && node.kind !== 'symlink') throw new FsError(Errno.perm);
    const n = node as MemFile | MemSymlink;
    const t = now();
    n.nlink++;
    n.ctimNs = t;
    this.children.set(name, n);
    this.touch(t);
  }

  symlink(target: Uint8Array, name: string): void {
    this.live();
    const t = now();
    const link = new MemSymlink(this.mount, this.store, target.slice(), t);
    link.nlink = 1;
    this.children.set(name, link);
    this.touch(t);
  }
}

/** A writable in-memory tree to mount as a preopen. */
export class MemoryTree implements Mount {
  readonly readOnly = false;
  readonly root: MemDir;
  readonly #store: Store;

  private constructor(opts: MemoryTreeOptions) {
    this.#store = new Store(
      checkLimit('maxBytes', opts.maxBytes, DEFAULT_MEMORY_TREE_MAX_BYTES),
      checkLimit('maxNodes', opts.maxNodes, DEFAULT_MEMORY_TREE_MAX_NODES),
    );
    if (this.#store.maxNodes < 1) throw new TypeError('MemoryTree maxNodes must be at least 1');
    this.root = new MemDir(this, this.#store, undefined, now());
  }

  /** An empty tree. Throws TypeError for limits that aren't non-negative integers. */
  static empty(opts: MemoryTreeOptions = {}): MemoryTree {
    return new MemoryTree(opts);
  }

  /**
   * A tree holding `entries`, whose file bytes are copied (the caller may reuse them). Paths
   * as for `ReadOnlyTree.fromEntries`, and TypeError for the same mistakes; a symlink target
   * must be non-empty and free of NUL. Throws RangeError if the entries pass the limits.
   */
  static fromEntries(
    entries: readonly MemoryTreeEntry[],
    opts: MemoryTreeOptions = {},
  ): MemoryTree {
    const tree = new MemoryTree(opts);
    try {
      for (const entry of entries) tree.#add(entry);
    } catch (err) {
      if (err instanceof FsError) {
        throw new RangeError('MemoryTree entries pass the tree limits (maxBytes, maxNodes)');
      }
      throw err;
    }
    return tree;
  }

  #add(entry: MemoryTreeEntry): void {
    const segments = entrySegments(entry.path);
    let dir = this.root;
    for (let i = 0; i < segments.length; i++) {
      const name = segments[i] as string;
      const last = i === segments.length - 1;
      const existing = dir.children.get(name);
      if (!last || 'dir' in entry) {
        if (existing === undefined) {
          dir.mkdir(name);
          dir = dir.children.get(name) as MemDir;
        } else if (existing.kind === 'dir') {
          dir = existing;
        } else {
          throw new TypeError(`tree entry '${entry.path}': '${name}' is not a directory`);
        }
        continue;
      }
      if (existing !== undefined) {
        throw new TypeError(`tree entry '${entry.path}' is given twice or is also a directory`);
      }
      if ('symlink' in entry) {
        if (entry.symlink === '' || entry.symlink.includes('\0')) {
          throw new TypeError(`tree entry '${entry.path}' has an empty or NUL-holding target`);
        }
        dir.symlink(encoder.encode(entry.symlink), name);
      } else {
        const file = dir.createFile(name, false, true) as MemFile;
        file.close();
        file.setSize(entry.data.length);
        file.data.set(entry.data);
      }
    }
  }

  /** File bytes held now (what `maxBytes` limits). */
  get usedBytes(): number {
    return this.#store.usedBytes;
  }

  /**
   * The tree's contents as entries, parents before children and siblings by name: every
   * directory, each file with a copy of its bytes (once per name for hard links), each symlink
   * with its target (decoded as UTF-8). `MemoryTree.fromEntries` of the result rebuilds it.
   */
  toEntries(): MemoryTreeEntry[] {
    const out: MemoryTreeEntry[] = [];
    const pending: [string, MemDir][] = [['', this.root]];
    for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
      const [prefix, dir] = next;
      const subdirs: [string, MemDir][] = [];
      for (const name of [...dir.children.keys()].toSorted()) {
        const node = dir.children.get(name) as MemNode;
        const path = prefix + name;
        if (node.kind === 'dir') {
          out.push({ path, dir: true });
          subdirs.push([path + '/', node]);
        } else if (node.kind === 'file') {
          out.push({ path, data: node.data.slice(0, node.length) });
        } else {
          out.push({ path, symlink: decoder.decode(node.target) });
        }
      }
      // Reversed onto the stack, so they come off in name order.
      for (let i = subdirs.length - 1; i >= 0; i--) pending.push(subdirs[i] as [string, MemDir]);
    }
    return out;
  }
}
