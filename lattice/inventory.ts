/** What a host reports about itself on ping, get and every heartbeat. */

export interface ActorInventory {
  app: string;
  name: string;
  /** Module digest. */
  module: string;
  mode: string;
  /** `specDigest` of the spec it runs: which version of the actor this is. */
  spec?: string;
  state: 'starting' | 'running' | 'failed';
  /** Why it failed, when it did. */
  error?: string;
  invocations: number;
  errors: number;
  inFlight: number;
  /** proxy actors: each instance's state (`starting`, `ready`, `restarting`) and restarts. */
  instances?: { index: number; state: string; pid?: number; restarts: number }[];
}

export interface HostInventory {
  hostId: string;
  lattice: string;
  hostname: string;
  labels: Record<string, string>;
  version: string;
  startedAt: string;
  uptimeMs: number;
  workers: number;
  /** Worker threads terminated and replaced (a guest past its timeout, or a crash). */
  workersReplaced: number;
  /** Stopping: takes no new invocations; its placements move. */
  draining?: boolean;
  /** Heartbeat interval (ms): silent for three of them, the host is taken for dead. */
  heartbeatMs?: number;
  actors: ActorInventory[];
}
