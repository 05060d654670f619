/** The host: runs actors for a lattice. */
export { Host, newHostId } from './host.ts';
export { DEFAULT_HEARTBEAT_MS } from '../lattice/index.ts';
export type { HostOptions } from './host.ts';
export { serveModule } from './serve.ts';
export type { ServeOptions, LocalServer } from './serve.ts';
export { runCommand, TRAP_EXIT_CODE } from './run.ts';
export type { RunCommandOptions } from './run.ts';
