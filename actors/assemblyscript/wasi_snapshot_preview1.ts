/**
 * The WASI preview1 calls the AssemblyScript actors use, as imports of the module
 * "wasi_snapshot_preview1": AssemblyScript imports a `declare`d function from the module named
 * after the file that declares it, under the function's own name. Each returns a WASI errno
 * (0 is success); results come back through pointers into the module's memory.
 */

/** Write the iovecs (`{ buf: usize, len: usize }` pairs) at `iovs` to `fd`. */
export declare function fd_write(fd: u32, iovs: usize, iovsLen: usize, nwritten: usize): u16;

/** Read from `fd` into the iovecs at `iovs`; 0 bytes read is end of file. */
export declare function fd_read(fd: u32, iovs: usize, iovsLen: usize, nread: usize): u16;

/** How many environment variables there are, and the bytes their `KEY=VALUE\0` strings take. */
export declare function environ_sizes_get(count: usize, bufSize: usize): u16;

/** The environment: a pointer per variable at `environ`, the strings at `buf`. */
export declare function environ_get(environ: usize, buf: usize): u16;

/** End the program with `code`. */
export declare function proc_exit(code: u32): void;
