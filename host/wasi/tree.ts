/**
 * An immutable in-memory directory tree that guests see through read-only preopens. Built once
 * (per actor version, say) and shared by every context: contexts keep only their own fd tables,
 * so mounting a tree costs nothing per request. File bytes are held by reference, not copied;
 * callers must not mutate them afterwards.
 *
 * Because the tree never changes, a directory's entry list is fixed at build time and the
 * `fd_readdir` cookie is simply an index into it: stable across calls by construction.
 */

export type TreeEntry = { path: string; data: Uint8Array } | { path: string; dir: true };

export interface FileNode {
  readonly kind: 'file';
  readonly dev: bigint;
  readonly ino: bigint;
  readonly data: Uint8Array;
}

export interface DirNode {
  readonly kind: 'dir';
  readonly dev: bigint;
  readonly ino: bigint;
  /** undefined for the root: `..` from the root is the root itself (and never escapes). */
  readonly parent: DirNode | undefined;
  readonly children: Map<string, TreeNode>;
  /** Children sorted by name, with names pre-encoded for `fd_readdir`. Filled by `fromEntries`. */
  readonly entries: DirEntry[];
}

export type TreeNode = FileNode | DirNode;

export interface DirEntry {
  readonly name: string;
  readonly nameBytes: Uint8Array;
  readonly node: TreeNode;
}

const encoder = new TextEncoder();
/** Device numbers tell trees apart in `filestat.dev`; stdio uses 0. */
let nextDev = 1n;

/** A read-only directory tree to mount as a preopen. */
export class ReadOnlyTree {
  readonly root: DirNode;

  private constructor(root: DirNode) {
    this.root = root;
  }

  /**
   * Build a tree from entries. Paths are relative and '/'-separated (`css/site.css`); parent
   * directories are implied; empty segments are ignored. Throws TypeError for a `.` or `..`
   * segment, an empty path, a duplicate path, or a path that is both a file and a directory.
   */
  static fromEntries(entries: readonly TreeEntry[]): ReadOnlyTree {
    const dev = nextDev++;
    let nextIno = 1n;
    const mkdir = (parent: DirNode | undefined): DirNode => ({
      kind: 'dir',
      dev,
      ino: nextIno++,
      parent,
      children: new Map(),
      entries: [],
    });
    const root = mkdir(undefined);
    for (const entry of entries) {
      const segments = entry.path.split('/').filter((s) => s !== '');
      if (segments.length === 0)
        throw new TypeError(`tree entry has an empty path: '${entry.path}'`);
      let dir = root;
      for (let i = 0; i < segments.length; i++) {
        const name = segments[i] as string;
        if (name === '.' || name === '..' || name.includes('\0')) {
          throw new TypeError(`tree entry path '${entry.path}' has an invalid segment '${name}'`);
        }
        const last = i === segments.length - 1;
        const existing = dir.children.get(name);
        if (!last || 'dir' in entry) {
          if (existing === undefined) {
            const child = mkdir(dir);
            dir.children.set(name, child);
            dir = child;
          } else if (existing.kind === 'dir') {
            dir = existing;
          } else {
            throw new TypeError(`tree entry '${entry.path}': '${name}' is already a file`);
          }
        } else {
          if (existing !== undefined) {
            throw new TypeError(`tree entry '${entry.path}' is given twice or is also a directory`);
          }
          dir.children.set(name, { kind: 'file', dev, ino: nextIno++, data: entry.data });
        }
      }
    }
    fillEntries(root);
    return new ReadOnlyTree(root);
  }
}

/** Sort and encode every directory's children. Iterative: a deep path must not overflow the stack. */
function fillEntries(root: DirNode): void {
  const pending: DirNode[] = [root];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    const names = [...dir.children.keys()].toSorted();
    for (const name of names) {
      const node = dir.children.get(name) as TreeNode;
      dir.entries.push({ name, nameBytes: encoder.encode(name), node });
      if (node.kind === 'dir') pending.push(node);
    }
  }
}
