/**
 * A leader lease in a KV bucket, for nats-server 2.9 (no per-key TTL): the holder renews the key
 * every `ttlMs / 3` by compare-and-set on its revision. A candidate that sees the revision stay
 * the same for `ttlMs` (by its own clock: no clocks are compared across machines) takes the key
 * over by compare-and-set on that revision, so exactly one candidate wins. A holder whose renewal
 * fails has lost the lease and steps down at once; one that stops deletes the key, so that a
 * candidate takes over without waiting.
 */
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';

export interface LeaseOptions {
  kv: KV;
  key: string;
  /** Who is asking (written in the key, shown by `weft status`). */
  holder: string;
  ttlMs: number;
  log: Logger;
  /** Called when this candidate becomes the leader (true) or stops being it (false). */
  onChange(leader: boolean): void;
}

interface Held {
  holder: string;
  at: string;
}

export class Lease {
  readonly #o: LeaseOptions;
  #leader = false;
  #revision = 0;
  /** The revision last seen held by another, and when (local clock) it was first seen. */
  #seen: { revision: number; at: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #busy = false;

  constructor(o: LeaseOptions) {
    this.#o = o;
  }

  get leader(): boolean {
    return this.#leader;
  }

  start(): void {
    const tick = (): void => {
      if (this.#stopped) return;
      void this.#step().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, Math.max(50, this.#o.ttlMs / 3));
      });
    };
    tick();
  }

  /** Give the lease up (delete the key when held) and stop competing. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#leader) {
      this.#set(false);
      await this.#o.kv.delete(this.#o.key, { previousSeq: this.#revision }).catch(() => undefined);
    }
  }

  #value(): Uint8Array {
    const v: Held = { holder: this.#o.holder, at: new Date().toISOString() };
    return new TextEncoder().encode(JSON.stringify(v));
  }

  #set(leader: boolean): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    this.#o.log.info({ holder: this.#o.holder, leader }, leader ? 'leader' : 'no longer leader');
    this.#o.onChange(leader);
  }

  async #step(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    const { kv, key } = this.#o;
    try {
      if (this.#leader) {
        try {
          this.#revision = await kv.update(key, this.#value(), this.#revision);
        } catch {
          this.#set(false);
        }
        return;
      }
      const e = await kv.get(key);
      if (e === null || e.operation !== 'PUT') {
        const wasDeleted = e !== null;
        this.#revision = wasDeleted
          ? await kv.update(key, this.#value(), e.revision)
          : await kv.create(key, this.#value());
        this.#seen = undefined;
        this.#set(true);
        return;
      }
      const now = Date.now();
      if (this.#seen?.revision !== e.revision) {
        this.#seen = { revision: e.revision, at: now };
        return;
      }
      if (now - this.#seen.at < this.#o.ttlMs) return;
      this.#revision = await kv.update(key, this.#value(), e.revision);
      this.#o.log.warn(
        { previous: (JSON.parse(e.string()) as Held).holder },
        'the leader stopped renewing its lease: taking over',
      );
      this.#seen = undefined;
      this.#set(true);
    } catch {
      // Another candidate won the compare-and-set, or NATS is unreachable: try again next tick.
    } finally {
      this.#busy = false;
    }
  }
}
