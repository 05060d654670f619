/** Messages between the host's main thread and its WCGI worker threads. */
import type { OutboundRecord } from '../outbound/guest-http.ts';

export interface LoadModuleMsg {
  type: 'module';
  key: string;
  module: WebAssembly.Module;
  /** The module imports `weft.memory` with these limits (pages): recycle memories for it. */
  memory?: { initial: number; maximum: number };
  /** The module's instances may be reset and reused (prepare-module.ts). */
  reuse?: { globals: string[] };
}

export interface LoadTreeMsg {
  type: 'tree';
  key: string;
  entries: ({ path: string; data: Uint8Array } | { path: string; dir: true })[];
}

export interface RunMsg {
  type: 'run';
  jobId: number;
  moduleKey: string;
  args: string[];
  /** `KEY=VALUE\0…`, from `encodeEnviron` on the main thread: one buffer to copy, not 30 strings. */
  env: Uint8Array;
  stdin: Uint8Array;
  stdoutLimitBytes: number;
  stderrLimitBytes: number;
  preopens: { guestPath: string; treeKey: string }[];
  /** `Date.now()` after which the job is skipped instead of run (its caller has given up). */
  deadline: number;
  /** The outbound HTTP grant (`weft_http` imports), for modules that import it. */
  outbound: OutboundGrant;
  /** The invocation's W3C traceparent, passed on (with new span ids) to outbound requests. */
  traceparent?: string;
}

export interface OutboundGrant {
  /** `capabilities.outboundHttp`. */
  allow: string[];
  maxRequests: number;
  maxRequestBytes: number;
  maxResponseBytes: number;
}

export type ToWorker = LoadModuleMsg | LoadTreeMsg | RunMsg | { type: 'forget'; key: string };

export type RunFailure =
  | { kind: 'trap'; message: string }
  | { kind: 'output-limit'; limitBytes: number }
  | { kind: 'instantiate'; message: string }
  | { kind: 'expired' };

export interface RunResultMsg {
  type: 'result';
  jobId: number;
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  stderrTruncated: boolean;
  /** Context + instance creation, microseconds. */
  startUs: number;
  /** `_start` until return or exit, microseconds. */
  runUs: number;
  failure?: RunFailure;
  /** Outbound HTTP requests the run made (the first ones), for the host's log. */
  outbound?: OutboundRecord[];
}
