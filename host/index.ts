/** The host: runs actors for a lattice. */
export { Host, newHostId, DEFAULT_HEARTBEAT_MS } from './host.ts';
export type { HostOptions } from './host.ts';
export { serveModule } from './serve.ts';
export type { ServeOptions, LocalServer } from './serve.ts';
export { runCommand, TRAP_EXIT_CODE } from './run.ts';
export type { RunCommandOptions } from './run.ts';
