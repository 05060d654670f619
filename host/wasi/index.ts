/**
 * weft's own WASI preview1 (`wasi_snapshot_preview1`) implementation, used instead of
 * `node:wasi`: guests get exactly the argv, environ, stdio and directories a context is given,
 * never the host's files or environment; output is captured in memory under caps (or streamed
 * to sinks); and contexts are cheap enough to build one per HTTP request. Works on the main
 * thread and in workers.
 *
 * Guest-visible failures are WASI errnos; guest pointers are always bounds-checked (`fault`).
 * Host-side misuse (bad options, a module that isn't a command) throws.
 */

/** A guest's WASI world and its import object; see `WasiOptions` for what it is given. */
export { WasiContext, findStart, unknownImports } from './ctx.ts';
/** Encode an environment once, e.g. on the thread that builds it; a context takes the bytes as `env`. */
export { encodeEnviron } from './args.ts';
/**
 * Options for `WasiContext`: args, env, stdin (bytes or a `StdinSource`), stdout/stderr sinks,
 * output caps, `tty`, and preopens (`WasiPreopen`: a `guestPath` and a `WasiTree`, i.e. a
 * `ReadOnlyTree`, `MemoryTree` or `HostDir`).
 */
export type { WasiOptions, WasiPreopen, WasiTree, WasiTty } from './ctx.ts';
/**
 * Streamed stdio. `OutputSink.write(bytes)` must take all of `bytes` before returning (they are
 * reused after the call); `StdinSource.read(buf)` fills the start of `buf` and returns the
 * count, 0 at end of input. Both synchronous; a Node.js system error they throw (EPIPE, EAGAIN…)
 * becomes the guest's errno.
 */
export type { OutputSink, StdinSource } from './output.ts';
/** Default caps of captured output: stdout 64 MiB (then `OutputLimitError`), stderr 1 MiB (then
 *  truncated). Streamed output has no cap unless one is given. */
export { DEFAULT_STDERR_LIMIT_BYTES, DEFAULT_STDOUT_LIMIT_BYTES } from './ctx.ts';
/** Thrown out of the guest when stdout would pass `stdoutLimitBytes`; carries `limitBytes`. */
export { OutputLimitError } from './output.ts';
/** An immutable in-memory directory tree, built once and mounted read-only by many contexts. */
export { ReadOnlyTree } from './tree.ts';
/** One file (`{ path, data }`) or directory (`{ path, dir: true }`) of a tree. */
export type { TreeEntry } from './tree.ts';
/**
 * A writable in-memory directory tree: `MemoryTree.empty(opts?)` or
 * `MemoryTree.fromEntries(entries, opts?)` (bytes copied); `toEntries()` reads it back. Mount it
 * in one context or several, one after another. Capped by `maxBytes` (default 1 GiB of file
 * data) and `maxNodes` (default 1,000,000); past them the guest gets `nospc`.
 */
export {
  DEFAULT_MEMORY_TREE_MAX_BYTES,
  DEFAULT_MEMORY_TREE_MAX_NODES,
  MemoryTree,
} from './memory-tree.ts';
/** `MemoryTree` limits, and its entries: a `TreeEntry` or a symlink `{ path, symlink }`. */
export type { MemoryTreeEntry, MemoryTreeOptions } from './memory-tree.ts';
/**
 * A host directory mapped into the guest: `HostDir.open(hostPath, { readOnly? })`. The guest can
 * never leave it (every path resolved by weft, symlinks included; see host-dir.ts for the
 * security model). Throws the `node:fs` error if `hostPath` can't be resolved, an Error with
 * code ENOTDIR if it isn't a directory, and an Error on Windows.
 */
export { HostDir } from './host-dir.ts';
/** Options for `HostDir.open`: `readOnly` (default false) answers `rofs` to every change. */
export type { HostDirOptions } from './host-dir.ts';
