/**
 * Which hosts are alive, from what they publish: a host is alive while it heartbeats, and dead
 * once silent for MISSED_BEATS of its own heartbeat intervals, or once it says it stopped. The
 * scheduler moves a dead host's placements; a gateway fails over the requests it had in flight.
 */
import type { Subscription } from '@nats-io/transport-node';
import type { LatticeClient } from './client.ts';
import { decode } from './envelope.ts';
import type { HostInventory } from './inventory.ts';
import { EventType } from './subjects.ts';

/** How often a host heartbeats unless told otherwise (ms). */
export const DEFAULT_HEARTBEAT_MS = 2_000;

/** Missed heartbeats after which a host is taken for dead. */
export const MISSED_BEATS = 3;

/** Hosts heard from, each with what the caller keeps about it (`T`). */
export class HostLiveness<T> {
  readonly #hosts = new Map<string, { data: T; lastSeen: number; heartbeatMs: number }>();

  /** A host was heard from (a heartbeat, a start, an answer to a ping). */
  saw(hostId: string, heartbeatMs: number, data: T): void {
    this.#hosts.set(hostId, { data, lastSeen: Date.now(), heartbeatMs });
  }

  get(hostId: string): T | undefined {
    return this.#hosts.get(hostId)?.data;
  }

  /** A host left (it said so); true if it was known. */
  forget(hostId: string): boolean {
    return this.#hosts.delete(hostId);
  }

  /** Forget the hosts silent for too long and return them, with how long each was silent. */
  expire(now = Date.now()): { hostId: string; silentMs: number }[] {
    const out: { hostId: string; silentMs: number }[] = [];
    for (const [hostId, h] of this.#hosts) {
      const silentMs = now - h.lastSeen;
      if (silentMs <= MISSED_BEATS * h.heartbeatMs) continue;
      this.#hosts.delete(hostId);
      out.push({ hostId, silentMs });
    }
    return out;
  }

  /** The live hosts' data (call `expire` first). */
  *values(): IterableIterator<T> {
    for (const h of this.#hosts.values()) yield h.data;
  }
}

export interface HostLoss {
  hostId: string;
  /** `stopped`: it said so; `silent`: it missed its heartbeats. */
  reason: 'stopped' | 'silent';
  silentMs?: number;
}

/**
 * Follow the lattice's host events and call `onLost` when a host stops or goes silent. Checked
 * every `checkMs`; returns a handle to stop following.
 */
export function watchHostLoss(
  client: LatticeClient,
  onLost: (loss: HostLoss) => void,
  opts: { defaultHeartbeatMs?: number; checkMs?: number } = {},
): { stop(): void } {
  const hosts = new HostLiveness<true>();
  const prefix = client.subjects.events().length - 1;
  const sub: Subscription = client.nc.subscribe(client.subjects.events(), {
    callback: (err, msg) => {
      if (err) return;
      const type = msg.subject.slice(prefix);
      try {
        if (type === EventType.HostHeartbeat || type === EventType.HostStarted) {
          const inv = decode<HostInventory>(msg.data);
          hosts.saw(
            inv.hostId,
            inv.heartbeatMs ?? opts.defaultHeartbeatMs ?? DEFAULT_HEARTBEAT_MS,
            true,
          );
        } else if (type === EventType.HostStopped) {
          const { hostId } = decode<{ hostId: string }>(msg.data);
          if (hosts.forget(hostId)) onLost({ hostId, reason: 'stopped' });
        }
      } catch {
        // An event that cannot be read changes nothing.
      }
    },
  });
  const timer = setInterval(() => {
    for (const { hostId, silentMs } of hosts.expire())
      onLost({ hostId, reason: 'silent', silentMs });
  }, opts.checkMs ?? 250);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sub.unsubscribe();
    },
  };
}
