/**
 * The lattice's durable state, all in JetStream: an object store of artifacts by sha256 digest
 * (modules and file bundles), a KV of tags (`name:tag` → digest), a KV of applications (with
 * history, so every deploy is a version) and a KV route table the gateways watch.
 */
import { createHash } from 'node:crypto';
import { Kvm, type KV, type KvOptions, type KvWatchEntry } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { LatticeClient } from './client.ts';
import type { DeployedApp, RouteEntry } from './app.ts';
import { ErrorCode, WeftError } from './errors.ts';
import { retryTransient } from './js-retry.ts';
import type { Subjects } from './subjects.ts';

type BucketKind = Parameters<Subjects['bucket']>[0];

/**
 * Open (creating if needed) a KV bucket of the lattice, replicated as the client's lattice says
 * (R3 on a cluster of three or more servers), retrying while JetStream elects a leader.
 */
export function openKv(
  client: LatticeClient,
  kind: BucketKind,
  opts: Partial<KvOptions> = {},
): Promise<KV> {
  const name = client.subjects.bucket(kind);
  return retryTransient(`open bucket ${name}`, () =>
    new Kvm(client.nc).create(name, { replicas: client.replicas, ...opts }),
  );
}

/** Versions of an application kept in KV. */
export const APP_HISTORY = 10;

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const TAG_RE = /^[a-z0-9][a-z0-9_-]{0,62}:[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export interface ArtifactInfo {
  digest: string;
  size: number;
}

function jsonCodec<T>(): { enc(v: T): Uint8Array; dec(b: Uint8Array): T } {
  return {
    enc: (v) => new TextEncoder().encode(JSON.stringify(v)),
    dec: (b) => JSON.parse(new TextDecoder().decode(b)) as T,
  };
}

export class ArtifactStore {
  readonly #os: ObjectStore;
  readonly #tags: KV;
  private constructor(os: ObjectStore, tags: KV) {
    this.#os = os;
    this.#tags = tags;
  }
  static async open(client: LatticeClient): Promise<ArtifactStore> {
    const name = client.subjects.bucket('artifacts');
    const os = await retryTransient(`open bucket ${name}`, () =>
      new Objm(client.nc).create(name, { replicas: client.replicas }),
    );
    return new ArtifactStore(os, await openKv(client, 'tags', { history: 5 }));
  }

  /**
   * Store bytes under their digest (a no-op when already stored). `onProgress` is called with the
   * bytes sent so far.
   */
  async put(
    bytes: Uint8Array,
    onProgress?: (sent: number, total: number) => void,
  ): Promise<ArtifactInfo> {
    const digest = sha256Digest(bytes);
    const name = digest.slice('sha256:'.length);
    const existing = await retryTransient(`look up ${digest}`, () => this.#os.info(name));
    if (existing && !existing.deleted && existing.size === bytes.length) {
      onProgress?.(bytes.length, bytes.length);
      return { digest, size: bytes.length };
    }
    const CHUNK = 128 * 1024;
    // A put cut by a leader change starts over: the object store keeps only whole objects.
    await retryTransient(`store ${digest}`, async () => {
      let offset = 0;
      const rs = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (offset >= bytes.length) {
            controller.close();
            return;
          }
          const end = Math.min(bytes.length, offset + CHUNK);
          controller.enqueue(bytes.subarray(offset, end));
          offset = end;
          onProgress?.(offset, bytes.length);
        },
      });
      await this.#os.put({ name, options: { max_chunk_size: CHUNK } }, rs);
    });
    return { digest, size: bytes.length };
  }

  /** Fetch an artifact; WEFT_ERR_ARTIFACT_NOT_FOUND when absent. The digest is verified. */
  async get(digest: string): Promise<Uint8Array> {
    if (!DIGEST_RE.test(digest)) {
      throw new WeftError(ErrorCode.BadRequest, `'${digest}' is not a sha256:<64 hex> digest`);
    }
    const bytes = await retryTransient(`fetch ${digest}`, () =>
      this.#os.getBlob(digest.slice('sha256:'.length)),
    );
    if (bytes === null) {
      throw new WeftError(ErrorCode.ArtifactNotFound, `artifact ${digest} is not in the store`, {
        details: { digest },
      });
    }
    if (sha256Digest(bytes) !== digest) {
      throw new WeftError(ErrorCode.Stream, `artifact ${digest} is corrupt in the store`);
    }
    return bytes;
  }

  async has(digest: string): Promise<boolean> {
    const info = await retryTransient(`look up ${digest}`, () =>
      this.#os.info(digest.slice('sha256:'.length)),
    );
    return info !== null && !info.deleted;
  }

  /** Point `name:tag` at a digest. */
  async tag(ref: string, digest: string): Promise<void> {
    if (!TAG_RE.test(ref)) {
      throw new WeftError(
        ErrorCode.BadRequest,
        `invalid tag '${ref}': expected name:tag, e.g. hello:v1`,
      );
    }
    await retryTransient(`tag ${ref}`, () => this.#tags.put(ref.replace(':', '.'), digest));
  }

  /** Resolve `name:tag`; WEFT_ERR_ARTIFACT_NOT_FOUND when unknown. */
  async resolveTag(ref: string): Promise<string> {
    const e = TAG_RE.test(ref)
      ? await retryTransient(`resolve ${ref}`, () => this.#tags.get(ref.replace(':', '.')))
      : null;
    if (!e || e.operation !== 'PUT') {
      throw new WeftError(ErrorCode.ArtifactNotFound, `no artifact is tagged '${ref}'`, {
        details: { ref },
      });
    }
    return e.string();
  }
}

/** A KV bucket of JSON values: what the application, route and placement stores share. */
class JsonKv<T> {
  readonly kv: KV;
  readonly #codec = jsonCodec<T>();
  constructor(kv: KV) {
    this.kv = kv;
  }
  put(key: string, value: T): Promise<number> {
    const bytes = this.#codec.enc(value);
    return retryTransient(`write ${key}`, () => this.kv.put(key, bytes));
  }
  async get(key: string): Promise<T | undefined> {
    const e = await retryTransient(`read ${key}`, () => this.kv.get(key));
    return e && e.operation === 'PUT' ? this.#codec.dec(e.value) : undefined;
  }
  async delete(key: string): Promise<void> {
    await retryTransient(`delete ${key}`, () => this.kv.delete(key));
  }
  /** Every current value, in key order. */
  async values(): Promise<T[]> {
    const keys = await retryTransient('list keys', async () => {
      const out: string[] = [];
      for await (const k of await this.kv.keys()) out.push(k);
      return out;
    });
    const out: T[] = [];
    for (const k of keys.sort()) {
      const v = await this.get(k);
      if (v !== undefined) out.push(v);
    }
    return out;
  }
  /** Every current value, then every change; `undefined` means deleted. */
  watch(onChange: (key: string, value: T | undefined) => void): Promise<{ stop(): void }> {
    return watchKv(this.kv, (e) =>
      onChange(e.key, e.operation === 'PUT' ? this.#codec.dec(e.value) : undefined),
    );
  }
}

/** Applications by name, each put a new revision. */
export class AppStore {
  readonly #kv: JsonKv<DeployedApp>;
  private constructor(kv: KV) {
    this.#kv = new JsonKv(kv);
  }
  static async open(client: LatticeClient): Promise<AppStore> {
    return new AppStore(await openKv(client, 'apps', { history: APP_HISTORY }));
  }
  put(app: DeployedApp): Promise<number> {
    return this.#kv.put(app.name, app);
  }
  get(name: string): Promise<DeployedApp | undefined> {
    return this.#kv.get(name);
  }
  delete(name: string): Promise<void> {
    return this.#kv.delete(name);
  }
  list(): Promise<DeployedApp[]> {
    return this.#kv.values();
  }
  /** Every kept revision of `name`, oldest first; `app` is undefined for an undeploy. */
  async history(name: string): Promise<{ revision: number; at: Date; app?: DeployedApp }[]> {
    const out: { revision: number; at: Date; app?: DeployedApp }[] = [];
    const codec = jsonCodec<DeployedApp>();
    const it = await this.#kv.kv.history({ key: name });
    for await (const e of it) {
      out.push({
        revision: e.revision,
        at: e.created,
        ...(e.operation === 'PUT' ? { app: codec.dec(e.value) } : {}),
      });
    }
    return out;
  }
  /** Every current application, then every change; `undefined` means deleted. */
  watch(onChange: (name: string, app: DeployedApp | undefined) => void): Promise<{ stop(): void }> {
    return this.#kv.watch(onChange);
  }
}

/** The route table: the routes of each application, keyed by application name. */
export class RouteStore {
  readonly #kv: JsonKv<RouteEntry[]>;
  private constructor(kv: KV) {
    this.#kv = new JsonKv(kv);
  }
  static async open(client: LatticeClient): Promise<RouteStore> {
    return new RouteStore(await openKv(client, 'routes'));
  }
  async put(app: string, routes: RouteEntry[]): Promise<void> {
    await this.#kv.put(app, routes);
  }
  delete(app: string): Promise<void> {
    return this.#kv.delete(app);
  }
  async list(): Promise<RouteEntry[]> {
    return (await this.#kv.values()).flat();
  }
  watch(
    onChange: (app: string, routes: RouteEntry[] | undefined) => void,
  ): Promise<{ stop(): void }> {
    return this.#kv.watch(onChange);
  }
}

/** One actor's placements as the scheduler last planned them. */
export interface ActorPlacements {
  /** Instances wanted (daemon: hosts matching). */
  wanted: number;
  /** Hosts and how many instances each runs (a wcgi actor: 1). */
  placements: { hostId: string; count: number }[];
  /** Why fewer instances are placed than wanted. */
  waiting?: string;
}

/** The placements of an application's actors, written by the scheduler's leader only. */
export interface AppPlacements {
  app: string;
  /** The application version they were planned for. */
  version: string;
  actors: Record<string, ActorPlacements>;
  /** The scheduler that planned them. */
  plannedBy: string;
}

/** Placements by application name: the scheduler writes, hosts watch. */
export class PlacementStore {
  readonly #kv: JsonKv<AppPlacements>;
  private constructor(kv: KV) {
    this.#kv = new JsonKv(kv);
  }
  static async open(client: LatticeClient): Promise<PlacementStore> {
    return new PlacementStore(await openKv(client, 'placements'));
  }
  async put(p: AppPlacements): Promise<void> {
    await this.#kv.put(p.app, p);
  }
  get(app: string): Promise<AppPlacements | undefined> {
    return this.#kv.get(app);
  }
  delete(app: string): Promise<void> {
    return this.#kv.delete(app);
  }
  watch(onChange: (app: string, p: AppPlacements | undefined) => void): Promise<{ stop(): void }> {
    return this.#kv.watch(onChange);
  }
}

/** The KV bucket of leases (the scheduler's leader). */
export async function openLeases(client: LatticeClient): Promise<KV> {
  return openKv(client, 'leases', { history: 1 });
}

/** How often a watch checks that it is not behind its bucket (ms). */
const WATCH_CHECK_MS = 2_000;

/**
 * Every entry, then every change. A watch can go quiet when the server its consumer was on dies:
 * nats.js notices only after a minute of missed heartbeats. So every WATCH_CHECK_MS the bucket's
 * last revision is compared with the last one seen, and a watch behind for two checks in a row
 * (or one that ended by itself) is opened again from the revision after the last one seen: a
 * watcher misses nothing across a cluster's failures, and is late by seconds at most.
 */
export async function watchKv(kv: KV, fn: (e: KvWatchEntry) => void): Promise<{ stop(): void }> {
  const state = { stopped: false, lastRevision: 0, behind: 0 };
  const open = () =>
    retryTransient('watch a bucket', () =>
      kv.watch(state.lastRevision > 0 ? { resumeFromRevision: state.lastRevision + 1 } : {}),
    );
  let it = await open();
  const check = setInterval(() => {
    void kv
      .status()
      .then((st) => {
        const last = st.streamInfo.state.last_seq;
        state.behind = last > state.lastRevision ? state.behind + 1 : 0;
        if (state.behind >= 2) {
          state.behind = 0;
          it.stop(); // the loop below opens it again
        }
      })
      .catch(() => undefined);
  }, WATCH_CHECK_MS);
  check.unref();
  void (async () => {
    while (!state.stopped) {
      for await (const e of it) {
        state.lastRevision = e.revision;
        state.behind = 0;
        try {
          fn(e);
        } catch {
          // A bad entry must not stop the watch; the consumer logs what it cannot use.
        }
      }
      while (!state.stopped) {
        await new Promise((r) => setTimeout(r, 100));
        try {
          it = await open();
          break;
        } catch {
          // Still no leader or no connection: try again.
        }
      }
    }
  })();
  return {
    stop() {
      state.stopped = true;
      clearInterval(check);
      it.stop();
    },
  };
}
