/** Messages and shared data between the host, an instance's kernel thread and its guest threads. */
import type { HeaderPair, HttpRequestHead } from '../../lattice/index.ts';

/** Import modules whose functions the WASIX host provides. */
export const WASIX_MODULES: readonly string[] = [
  'wasi_snapshot_preview1',
  'wasi_unstable',
  'wasix_32v1',
  'wasi',
];

/**
 * Call numbers on a channel: the module's function imports from the WASIX modules, sorted and
 * without repeats. Both ends compute it from the same module.
 */
export function callNames(module: WebAssembly.Module): string[] {
  const names = new Set<string>();
  for (const i of WebAssembly.Module.imports(module)) {
    if (i.kind === 'function' && WASIX_MODULES.includes(i.module)) names.add(i.name);
  }
  // proc_exit is how a thread tells the kernel the process ends, imported or not.
  names.add('proc_exit');
  return [...names].sort();
}

/** `workerData` of a guest thread. */
export interface GuestThreadData {
  kind: 'main' | 'thread';
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  channel: SharedArrayBuffer;
  tid: number;
  startArg: number;
}

export type GuestThreadMsg =
  { type: 'main-returned' } | { type: 'thread-ended' } | { type: 'trap'; message: string };

/** `workerData` of an instance's kernel thread. */
export interface KernelData {
  module: WebAssembly.Module;
  /** Limits of the shared memory to create for the module's memory import (pages). */
  memory: { initial: number; maximum: number };
  args: string[];
  env: Record<string, string>;
  trees: {
    guest: string;
    entries: ({ path: string; data: Uint8Array } | { path: string; dir: true })[];
  }[];
  listenPorts: number[];
  /** Outbound socket grants (`capabilities.sockets.connect`, `weft run --allow-connect`). */
  connect?: string[];
  /** The port requests are forwarded to; the instance is ready once it listens there. */
  servePort: number;
  pid: number;
  maxThreads: number;
  /** Largest response body accepted from the guest, in bytes. */
  maxResponseBytes: number;
  /** Connections the forwarder keeps open to the guest at most. */
  maxConnections: number;
  /** Also accept real TCP connections here and relay them to `servePort` (`weft run --serve`). */
  publish?: { host: string; port: number };
  /** Host directories mounted read-write (`weft run --dir`). */
  hostDirs?: { host: string; guest: string }[];
  /** Send stdout/stderr as raw `output` messages instead of log lines (`weft run`). */
  rawOutput?: boolean;
}

/** Host → kernel. */
export type ToKernel =
  | { type: 'request'; id: number; head: HttpRequestHead; body: Uint8Array; extra: HeaderPair[] }
  | { type: 'cancel'; id: number }
  /** A streamed response's consumer has too much buffered / has room again. */
  | { type: 'pause' | 'resume'; id: number };

/** Kernel → host. */
export type FromKernel =
  | { type: 'listening'; port: number }
  | { type: 'published'; host: string; port: number }
  | { type: 'publish-failed'; message: string }
  | { type: 'denied'; port: number }
  /** A connect or resolve refused by the socket grants (`repeated`: like ones not reported). */
  | {
      type: 'connect-denied';
      op: 'connect' | 'resolve';
      host: string;
      port: number;
      reason: string;
      rule?: string;
      repeated: number;
    }
  | { type: 'log'; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'output'; fd: 1 | 2; bytes: Uint8Array }
  | { type: 'threads-capped'; max: number }
  | {
      type: 'response';
      id: number;
      status: number;
      headers: HeaderPair[];
      body: Uint8Array;
    }
  /**
   * A response not complete soon after its head is streamed: its head (with the body's length
   * when declared), then its body in pieces; a `failure` may end it instead.
   */
  | { type: 'head'; id: number; status: number; headers: HeaderPair[]; length?: number }
  | { type: 'body'; id: number; bytes: Uint8Array; end: boolean }
  | {
      type: 'failure';
      id: number;
      code: string;
      message: string;
      details?: Record<string, unknown> | undefined;
    }
  | { type: 'exit'; code: number }
  | { type: 'crash'; message: string };
