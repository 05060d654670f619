/**
 * weft's own WASI preview1 (`wasi_snapshot_preview1`) implementation, used instead of
 * `node:wasi`: guests get exactly the argv, environ, stdin and read-only trees a context is given,
 * never the host's files or environment; output is captured in memory under caps; and contexts
 * are cheap enough to build one per HTTP request. Works on the main thread and in workers.
 *
 * Guest-visible failures are WASI errnos; guest pointers are always bounds-checked (`fault`).
 * Host-side misuse (bad options, a module that isn't a command) throws.
 */

/** A guest's WASI world and its import object; see `WasiOptions` for what it is given. */
export { WasiContext, findStart, unknownImports } from './ctx.ts';
/** Encode an environment once, e.g. on the thread that builds it; a context takes the bytes as `env`. */
export { encodeEnviron } from './args.ts';
/** Options for `WasiContext`: args, env, stdin, output caps, preopens. */
export type { WasiOptions } from './ctx.ts';
/** Default caps: stdout 64 MiB (then `OutputLimitError`), stderr 1 MiB (then truncated). */
export { DEFAULT_STDERR_LIMIT_BYTES, DEFAULT_STDOUT_LIMIT_BYTES } from './ctx.ts';
/** Thrown out of the guest when stdout would pass `stdoutLimitBytes`; carries `limitBytes`. */
export { OutputLimitError } from './output.ts';
/** An immutable in-memory directory tree, built once and mounted read-only by many contexts. */
export { ReadOnlyTree } from './tree.ts';
/** One file (`{ path, data }`) or directory (`{ path, dir: true }`) of a tree. */
export type { TreeEntry } from './tree.ts';
