/**
 * An immutable in-memory directory tree that guests see through read-only preopens. Built once
 * (per actor version, say) and shared by every context: contexts keep only their own fd tables,
 * so mounting a tree costs nothing per request. File bytes are held by reference, not copied;
 * callers must not mutate them afterwards.
 *
 * Because the tree never changes, a directory's listing is built once, at the first
 * `fd_readdir`, and shared: the cookie is simply an index into it, stable by construction. An
 * open file is its node itself (positions live in the fd), so opening allocates nothing.
 */
import { Errno, Filetype } from './constants.ts';
import { scatter } from './iovec.ts';
import type { GuestMemory } from './memory.ts';
import {
  type DirListing,
  type DirSnapshot,
  FsError,
  type Mount,
  nextDevice,
  plainStat,
  type Stat,
  type VDir,
  type VFile,
  type VFileNode,
  type VNode,
} from './vfs.ts';

export type TreeEntry = { path: string; data: Uint8Array } | { path: string; dir: true };

const encoder = new TextEncoder();

function readOnly(): never {
  throw new FsError(Errno.rofs);
}

export class FileNode implements VFileNode, VFile {
  readonly kind = 'file';
  readonly mount: Mount;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly data: Uint8Array;

  constructor(mount: Mount, dev: bigint, ino: bigint, data: Uint8Array) {
    this.mount = mount;
    this.dev = dev;
    this.ino = ino;
    this.data = data;
  }

  stat(): Stat {
    return plainStat(this.dev, this.ino, Filetype.regularFile, this.data.length);
  }
  open(): VFile {
    return this;
  }
  size(): number {
    return this.data.length;
  }
  read(m: GuestMemory, iovs: number, count: number, pos: number): number {
    return scatter(m, iovs, count, this.data, pos);
  }
  write(): number {
    return readOnly();
  }
  setSize(): void {
    readOnly();
  }
  setTimes(): void {
    readOnly();
  }
  sync(): void {}
  close(): void {}
}

/** A child with its name pre-encoded for `fd_readdir`. */
export interface DirEntry extends DirListing {
  readonly name: string;
  readonly node: TreeNode;
}

export class DirNode implements VDir {
  readonly kind = 'dir';
  readonly mount: Mount;
  readonly dev: bigint;
  readonly ino: bigint;
  /** undefined for the root: `..` from the root is the root itself (and never escapes). */
  readonly parent: DirNode | undefined;
  readonly children = new Map<string, TreeNode>();
  #listing: DirSnapshot | undefined;

  constructor(mount: Mount, dev: bigint, ino: bigint, parent: DirNode | undefined) {
    this.mount = mount;
    this.dev = dev;
    this.ino = ino;
    this.parent = parent;
  }

  stat(): Stat {
    return plainStat(this.dev, this.ino, Filetype.directory, 0);
  }
  revalidate(): void {}
  lookup(name: string): VNode | undefined {
    return this.children.get(name);
  }
  /** Children sorted by name; built at the first call and shared from then on. */
  snapshot(): DirSnapshot {
    if (this.#listing === undefined) {
      const entries: DirEntry[] = [];
      for (const name of [...this.children.keys()].toSorted()) {
        const node = this.children.get(name) as TreeNode;
        const filetype = node.kind === 'dir' ? Filetype.directory : Filetype.regularFile;
        entries.push({ name, nameBytes: encoder.encode(name), ino: node.ino, filetype, node });
      }
      const parentIno = (this.parent ?? this).ino;
      this.#listing = { selfIno: this.ino, parentIno, entries };
    }
    return this.#listing;
  }
  isEmpty(): boolean {
    return this.children.size === 0;
  }
  contains(other: VDir): boolean {
    for (let d: DirNode | undefined = other as DirNode; d !== undefined; d = d.parent) {
      if (d === this) return true;
    }
    return false;
  }
  setTimes(): void {
    readOnly();
  }
  mkdir(): void {
    readOnly();
  }
  createFile(): VFile {
    return readOnly();
  }
  unlink(): void {
    readOnly();
  }
  rmdir(): void {
    readOnly();
  }
  rename(): void {
    readOnly();
  }
  link(): void {
    readOnly();
  }
  symlink(): void {
    readOnly();
  }
}

export type TreeNode = FileNode | DirNode;

/**
 * The segments of a tree entry's relative, '/'-separated path; empty segments are dropped.
 * Throws TypeError for an empty path or a `.`, `..` or NUL-holding segment.
 */
export function entrySegments(path: string): string[] {
  const segments = path.split('/').filter((s) => s !== '');
  if (segments.length === 0) throw new TypeError(`tree entry has an empty path: '${path}'`);
  for (const name of segments) {
    if (name === '.' || name === '..' || name.includes('\0')) {
      throw new TypeError(`tree entry path '${path}' has an invalid segment '${name}'`);
    }
  }
  return segments;
}

/** A read-only directory tree to mount as a preopen. */
export class ReadOnlyTree implements Mount {
  readonly readOnly = true;
  readonly root: DirNode;

  private constructor(build: (mount: Mount) => DirNode) {
    this.root = build(this);
  }

  /**
   * Build a tree from entries. Paths are relative and '/'-separated (`css/site.css`); parent
   * directories are implied; empty segments are ignored. Throws TypeError for a `.` or `..`
   * segment, an empty path, a duplicate path, or a path that is both a file and a directory.
   */
  static fromEntries(entries: readonly TreeEntry[]): ReadOnlyTree {
    return new ReadOnlyTree((mount) => {
      const dev = nextDevice();
      let nextIno = 1n;
      const root = new DirNode(mount, dev, nextIno++, undefined);
      for (const entry of entries) {
        const segments = entrySegments(entry.path);
        let dir = root;
        for (let i = 0; i < segments.length; i++) {
          const name = segments[i] as string;
          const last = i === segments.length - 1;
          const existing = dir.children.get(name);
          if (!last || 'dir' in entry) {
            if (existing === undefined) {
              const child = new DirNode(mount, dev, nextIno++, dir);
              dir.children.set(name, child);
              dir = child;
            } else if (existing.kind === 'dir') {
              dir = existing;
            } else {
              throw new TypeError(`tree entry '${entry.path}': '${name}' is already a file`);
            }
          } else {
            if (existing !== undefined) {
              throw new TypeError(
                `tree entry '${entry.path}' is given twice or is also a directory`,
              );
            }
            dir.children.set(name, new FileNode(mount, dev, nextIno++, entry.data));
          }
        }
      }
      return root;
    });
  }
}
