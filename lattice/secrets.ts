/**
 * Secrets: values an actor's `env` takes from the lattice's secret store, encrypted at rest, or
 * from the environment of the host process that runs it.
 *
 * Model:
 * - A lattice has one secrets key, an nkeys curve key pair (an "xkey": X25519). Hosts hold its
 *   seed (`weft host --secrets-key`, `WEFT_SECRETS_KEY`). Its public key is published in the
 *   lattice's secret bucket (`key.public`), so that `weft secret put` needs nothing but the
 *   lattice connection; `--key` pins another.
 * - A value is sealed for that public key with a fresh sender key of its own (nacl box: X25519,
 *   XSalsa20-Poly1305, in nkeys' `xkv1` framing), whose private half is dropped at once: neither
 *   whoever put a secret nor whoever can read the bucket can read it back. Only seed holders can.
 * - What is sealed names the lattice and the secret: an entry copied under another name or into
 *   another lattice does not open as that one. Any altered byte fails Poly1305: the entry is
 *   refused, never half-read.
 * - Whoever may write the bucket may put any value, as with any secret store, and could publish a
 *   public key of their own; hosts warn at start when theirs is not the published one, and an
 *   entry sealed for another key fails to open with a message naming both keys. Write access is
 *   the operator's (docs/security.md).
 * - `{ hostEnv: VAR }` reads the host's environment as `bin/weft.ts` hands it over. `WEFT_*`
 *   variables are the host's own configuration (its NATS credentials, its secrets key) and are
 *   never given to an actor.
 * - Resolved values live only in the host's memory and the guest's environment: never in the
 *   stored application, the inventory, status, events, logs or error messages, which name the
 *   secret or variable alone.
 */
import { createCurve, fromCurveSeed, fromPublic, type KeyPair } from '@nats-io/nkeys';
import type { KV } from '@nats-io/kv';
import type { LatticeClient } from './client.ts';
import { ErrorCode, WeftError } from './errors.ts';
import { retryTransient } from './js-retry.ts';
import { SECRET_NAME_PATTERN, type EnvValue } from './manifest/index.ts';
import { openKv, watchKv } from './stores.ts';

/** Largest secret value, in bytes of UTF-8: an environment variable, not a file store. */
export const MAX_SECRET_BYTES = 64 * 1024;
/** The KV key of the lattice's published secrets public key. */
export const SECRETS_KEY_ENTRY = 'key.public';
/** Host variables with this prefix are the host's own configuration, never an actor's. */
export const RESERVED_HOST_ENV_PREFIX = 'WEFT_';

const SECRET_PREFIX = 'secret.';
const SECRET_NAME_RE = new RegExp(SECRET_NAME_PATTERN);
/** An nkeys curve seed as text: `SX` then base32 (58 characters in all). */
const CURVE_SEED_RE = /^SX[A-Z2-7]{56}$/;
/** An nkeys curve public key: `X` then base32 (56 characters in all). */
const CURVE_PUBLIC_RE = /^X[A-Z2-7]{55}$/;

/** A secret as stored: sealed for `recipient`, never the value in clear. */
export interface SealedSecret {
  v: 1;
  /** nkeys' xkey box format, version 1. */
  alg: 'xkv1';
  /** The secrets public key (`X…`) it is sealed for. */
  recipient: string;
  /** The one-use sender public key (`X…`); its private half was dropped after sealing. */
  sender: string;
  /** base64 of the sealed box: `xkv1`, a 24-byte nonce, then the ciphertext and its tag. */
  sealed: string;
}

/** What may be shown of a stored secret: never its value. */
export interface SecretInfo {
  name: string;
  /** The KV revision of its current entry. */
  revision: number;
  /** ISO time of the last put. */
  updatedAt: string;
  /** The public key it is sealed for. */
  key: string;
}

function bad(message: string): WeftError {
  return new WeftError(ErrorCode.BadRequest, message);
}

/** `XABCDEFGH…`: enough of a public key to tell two apart in a message. */
export function shortKey(key: string): string {
  return key.length > 12 ? `${key.slice(0, 12)}…` : key;
}

/** A new secrets key pair. The seed (`SX…`) goes to hosts; the public key (`X…`) is published. */
export function createSecretsKey(): { publicKey: string; seed: string } {
  const kp = createCurve();
  try {
    return { publicKey: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()) };
  } finally {
    kp.clear();
  }
}

function curveKeyPair(seed: string): KeyPair {
  if (!CURVE_SEED_RE.test(seed)) {
    throw bad(
      seed.startsWith('S')
        ? `not a secrets key: an nkeys seed of type '${seed.slice(1, 2)}'; a secrets key is a curve seed (SX…, from weft secret init)`
        : 'not a secrets key: expected a curve seed (SX…, from weft secret init)',
    );
  }
  try {
    return fromCurveSeed(new TextEncoder().encode(seed));
  } catch (err) {
    throw new WeftError(
      ErrorCode.BadRequest,
      `not a valid secrets key (SX…): ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** The public key (`X…`) of a secrets seed; WEFT_ERR_BAD_REQUEST when it is not a curve seed. */
export function secretsPublicKey(seed: string): string {
  const kp = curveKeyPair(seed);
  try {
    return kp.getPublicKey();
  } finally {
    kp.clear();
  }
}

/** `key`, checked as a curve public key (`X…` with a good checksum); WEFT_ERR_BAD_REQUEST. */
export function assertSecretsPublicKey(key: string): string {
  let ok = CURVE_PUBLIC_RE.test(key);
  if (ok) {
    try {
      fromPublic(key);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw bad(`'${shortKey(key)}' is not a secrets public key (X…, 56 characters)`);
  return key;
}

/** `name`, checked against SECRET_NAME_PATTERN; WEFT_ERR_BAD_REQUEST. */
export function assertSecretName(name: string): string {
  if (!SECRET_NAME_RE.test(name)) {
    throw bad(
      `invalid secret name '${name.slice(0, 140)}': letters, digits, '_' and '-', at most 128 characters, not starting with '-'`,
    );
  }
  return name;
}

/** A value fit for an environment variable: UTF-8 text without NUL, at most MAX_SECRET_BYTES. */
function assertSecretValue(value: string): void {
  if (value.includes('\0')) {
    throw bad('a secret value cannot contain a NUL byte (it becomes an environment variable)');
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_SECRET_BYTES) {
    throw bad(`a secret value is at most ${MAX_SECRET_BYTES} bytes, got ${bytes}`);
  }
  if (!value.isWellFormed()) throw bad('a secret value must be valid Unicode text');
}

/** What is sealed: the value with the lattice and name it belongs to. */
interface Plaintext {
  l: string;
  n: string;
  v: string;
}

/**
 * Seal `value` as secret `name` of `lattice` for the secrets public key `recipient`, with a
 * one-use sender key. WEFT_ERR_BAD_REQUEST for a bad name, key or value.
 */
export function sealSecret(opts: {
  lattice: string;
  name: string;
  value: string;
  recipient: string;
}): SealedSecret {
  assertSecretName(opts.name);
  assertSecretsPublicKey(opts.recipient);
  assertSecretValue(opts.value);
  const plain: Plaintext = { l: opts.lattice, n: opts.name, v: opts.value };
  const sender = createCurve();
  try {
    const box = sender.seal(new TextEncoder().encode(JSON.stringify(plain)), opts.recipient);
    return {
      v: 1,
      alg: 'xkv1',
      recipient: opts.recipient,
      sender: sender.getPublicKey(),
      sealed: Buffer.from(box).toString('base64'),
    };
  } finally {
    sender.clear();
  }
}

function secretError(message: string, details: Record<string, unknown>): WeftError {
  return new WeftError(ErrorCode.Secret, message, { details });
}

/**
 * Open secret `name` of `lattice` with the secrets `seed`. WEFT_ERR_SECRET when the entry is not
 * one, is sealed for another key, was altered, or was sealed as another secret or lattice; the
 * message names the secret and keys, never a value.
 */
export function openSecret(
  entry: unknown,
  opts: { lattice: string; name: string; seed: string },
): string {
  const { lattice, name } = opts;
  const e = entry as Partial<SealedSecret> | null;
  const details = { secret: name, lattice };
  if (
    e === null ||
    typeof e !== 'object' ||
    e.v !== 1 ||
    e.alg !== 'xkv1' ||
    typeof e.recipient !== 'string' ||
    typeof e.sender !== 'string' ||
    typeof e.sealed !== 'string'
  ) {
    throw secretError(
      `secret '${name}' is not a sealed entry this host can read (altered, or written by something else)`,
      details,
    );
  }
  const kp = curveKeyPair(opts.seed);
  try {
    const mine = kp.getPublicKey();
    if (e.recipient !== mine) {
      throw secretError(
        `secret '${name}' is sealed for secrets key ${shortKey(e.recipient)}, and this host holds ${shortKey(mine)}: put it again for this key (weft secret put), or give the host the seed of that one`,
        { ...details, sealedFor: e.recipient, hostKey: mine },
      );
    }
    let opened: Uint8Array | null = null;
    try {
      opened = kp.open(new Uint8Array(Buffer.from(e.sealed, 'base64')), e.sender);
    } catch {
      opened = null;
    }
    if (opened === null) {
      throw secretError(
        `secret '${name}' does not decrypt with this host's secrets key: the entry was altered`,
        details,
      );
    }
    let plain: Partial<Plaintext>;
    try {
      plain = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(opened)) as Plaintext;
    } catch {
      plain = {};
    }
    if (typeof plain.v !== 'string' || plain.n !== name || plain.l !== lattice) {
      throw secretError(
        `secret '${name}' holds a value sealed as another secret or for another lattice: the entry was copied or altered`,
        details,
      );
    }
    return plain.v;
  } finally {
    kp.clear();
  }
}

function kvKey(name: string): string {
  return `${SECRET_PREFIX}${assertSecretName(name)}`;
}

function decodeEntry(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}

/**
 * The lattice's secret store: a KV bucket `weft-<lattice>-secrets` of sealed entries
 * (`secret.<name>`) and the published public key (`key.public`). Keeps one revision per key: a
 * value put again or removed leaves no older ciphertext behind.
 */
export class SecretStore {
  readonly #kv: KV;
  readonly #lattice: string;
  private constructor(kv: KV, lattice: string) {
    this.#kv = kv;
    this.#lattice = lattice;
  }

  static async open(client: LatticeClient): Promise<SecretStore> {
    return new SecretStore(
      await openKv(client, 'secrets', { history: 1 }),
      client.subjects.lattice,
    );
  }

  /** The published secrets public key, if any. */
  async publishedKey(): Promise<string | undefined> {
    const e = await retryTransient('read the secrets key', () => this.#kv.get(SECRETS_KEY_ENTRY));
    return e && e.operation === 'PUT' ? e.string() : undefined;
  }

  /**
   * Publish `publicKey` as the lattice's secrets key. When another is published already, fails
   * with WEFT_ERR_BAD_REQUEST unless `force` (secrets sealed for the old key stay sealed for it).
   */
  async publishKey(
    publicKey: string,
    opts: { force?: boolean } = {},
  ): Promise<'published' | 'unchanged'> {
    assertSecretsPublicKey(publicKey);
    const current = await this.publishedKey();
    if (current === publicKey) return 'unchanged';
    if (current !== undefined && opts.force !== true) {
      throw bad(
        `lattice '${this.#lattice}' has secrets key ${shortKey(current)} already; replacing it leaves the secrets sealed for it unreadable by hosts given the new seed: give --force to replace it anyway`,
      );
    }
    await retryTransient('publish the secrets key', () =>
      this.#kv.put(SECRETS_KEY_ENTRY, publicKey),
    );
    return 'published';
  }

  /**
   * Seal `value` for `recipient` (default: the published key) and store it as `name`.
   * WEFT_ERR_BAD_REQUEST for a bad name or value, or when no key is published nor given.
   */
  async put(name: string, value: string, opts: { recipient?: string } = {}): Promise<SecretInfo> {
    assertSecretName(name);
    const recipient = opts.recipient ?? (await this.publishedKey());
    if (recipient === undefined) {
      throw bad(
        `lattice '${this.#lattice}' has no secrets key: create one with weft secret init --out FILE (and start hosts with --secrets-key FILE), or give --key X…`,
      );
    }
    const sealed = sealSecret({ lattice: this.#lattice, name, value, recipient });
    const bytes = new TextEncoder().encode(JSON.stringify(sealed));
    const revision = await retryTransient(`store secret ${name}`, () =>
      this.#kv.put(kvKey(name), bytes),
    );
    return { name, revision, updatedAt: new Date().toISOString(), key: recipient };
  }

  /** The stored entry of `name` (parsed, not opened) and its revision; undefined when absent. */
  async get(name: string): Promise<{ entry: unknown; revision: number } | undefined> {
    const key = kvKey(name);
    const e = await retryTransient(`read secret ${name}`, () => this.#kv.get(key));
    if (!e || e.operation !== 'PUT') return undefined;
    return { entry: decodeEntry(e.value), revision: e.revision };
  }

  /** Every stored secret's name, revision, time and key, by name; never a value. */
  async list(): Promise<SecretInfo[]> {
    const keys = await retryTransient('list secrets', async () => {
      const out: string[] = [];
      for await (const k of await this.#kv.keys(`${SECRET_PREFIX}>`)) out.push(k);
      return out;
    });
    const out: SecretInfo[] = [];
    for (const key of keys.sort()) {
      const e = await retryTransient(`read ${key}`, () => this.#kv.get(key));
      if (!e || e.operation !== 'PUT') continue;
      const entry = decodeEntry(e.value) as Partial<SealedSecret> | undefined;
      out.push({
        name: key.slice(SECRET_PREFIX.length),
        revision: e.revision,
        updatedAt: e.created.toISOString(),
        key: typeof entry?.recipient === 'string' ? entry.recipient : '(unreadable entry)',
      });
    }
    return out;
  }

  /** Remove `name`; WEFT_ERR_SECRET when there is no such secret. */
  async delete(name: string): Promise<void> {
    if ((await this.get(name)) === undefined) {
      throw secretError(`no secret named '${name}' in lattice '${this.#lattice}'`, {
        secret: name,
        lattice: this.#lattice,
      });
    }
    const key = kvKey(name);
    await retryTransient(`remove secret ${name}`, () => this.#kv.delete(key));
  }

  /** Every secret's current revision, then every change (a removal too), by name. */
  watch(onChange: (name: string, revision: number) => void): Promise<{ stop(): void }> {
    return watchKv(this.#kv, (e) => {
      if (e.key.startsWith(SECRET_PREFIX)) onChange(e.key.slice(SECRET_PREFIX.length), e.revision);
    });
  }
}

/** The secret and host variable names an env refers to. */
export function envReferences(env: Readonly<Record<string, EnvValue>>): {
  secrets: string[];
  hostEnv: string[];
} {
  const secrets = new Set<string>();
  const hostEnv = new Set<string>();
  for (const v of Object.values(env)) {
    if (typeof v === 'string') continue;
    if ('secret' in v) secrets.add(v.secret);
    else hostEnv.add(v.hostEnv);
  }
  return { secrets: [...secrets], hostEnv: [...hostEnv] };
}

/**
 * An env whose values are all plain strings, as given: WEFT_ERR_SECRET when one is a reference
 * (the host resolves references with `SecretResolver` before anything runs the guest).
 */
export function plainEnv(env: Readonly<Record<string, EnvValue>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (typeof v !== 'string') {
      throw secretError(`env ${k} is a reference that was not resolved`, { env: k });
    }
    out[k] = v;
  }
  return out;
}

export interface SecretResolverOptions {
  client: LatticeClient;
  /** The secrets key's seed (`SX…`); without it, an actor that needs a secret fails to start. */
  seed?: string | undefined;
  /** The host process's environment, for `{ hostEnv }` (`WEFT_*` variables are refused). */
  environment?: Readonly<Record<string, string | undefined>> | undefined;
  /** A secret some actor read changed (put again, put at last, or removed). */
  onChange?: (name: string) => void;
}

/**
 * A host's resolver of env references. The secret store is opened, and watched, only once an
 * actor refers to a secret. Each secret's revision last read is kept, so that the watch reports
 * only what changed since (and a secret missing then, put since).
 */
export class SecretResolver {
  readonly #opts: SecretResolverOptions;
  readonly publicKey: string | undefined;
  #store: Promise<SecretStore> | undefined;
  #watch: Promise<{ stop(): void }> | undefined;
  #stopped = false;
  /** Revision last read per secret name (0: it was missing). */
  readonly #read = new Map<string, number>();

  /** WEFT_ERR_BAD_REQUEST when `seed` is given and is not a curve seed. */
  constructor(opts: SecretResolverOptions) {
    this.#opts = opts;
    this.publicKey = opts.seed === undefined ? undefined : secretsPublicKey(opts.seed);
  }

  #openStore(): Promise<SecretStore> {
    if (this.#store === undefined) {
      this.#store = SecretStore.open(this.#opts.client);
      void this.#store.catch(() => (this.#store = undefined));
    }
    return this.#store;
  }

  #startWatch(store: SecretStore): void {
    if (this.#watch !== undefined || this.#opts.onChange === undefined || this.#stopped) return;
    const onChange = this.#opts.onChange;
    this.#watch = store.watch((name, revision) => {
      const seen = this.#read.get(name);
      if (seen !== undefined && revision > seen) onChange(name);
    });
    void this.#watch.catch(() => (this.#watch = undefined));
  }

  /**
   * A warning when the lattice publishes a secrets key other than this host's (secrets put for
   * it will not open here), or none; undefined when they agree or this host holds no key.
   */
  async checkPublishedKey(): Promise<string | undefined> {
    if (this.publicKey === undefined) return undefined;
    const published = await (await this.#openStore()).publishedKey();
    if (published === this.publicKey) return undefined;
    return published === undefined
      ? `lattice '${this.#opts.client.subjects.lattice}' publishes no secrets key; weft secret put needs --key ${this.publicKey} (or weft secret init --key SEED)`
      : `this host's secrets key ${shortKey(this.publicKey)} is not the lattice's published ${shortKey(published)}: secrets put for that key will not open here`;
  }

  /**
   * `env` with every reference resolved, for actor `actor`. Throws one WEFT_ERR_SECRET naming
   * every env variable that cannot be had and why (missing secret or host variable, no key, an
   * entry that does not open); the message leads with the code, as `weft status` shows it.
   */
  async resolve(
    actor: string,
    env: Readonly<Record<string, EnvValue>>,
  ): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const problems: { env: string; secret?: string; hostEnv?: string; reason: string }[] = [];
    const lattice = this.#opts.client.subjects.lattice;
    for (const [k, v] of Object.entries(env)) {
      if (typeof v === 'string') {
        out[k] = v;
        continue;
      }
      if ('hostEnv' in v) {
        const value = v.hostEnv.startsWith(RESERVED_HOST_ENV_PREFIX)
          ? undefined
          : this.#opts.environment?.[v.hostEnv];
        if (value !== undefined && !value.includes('\0')) out[k] = value;
        else {
          problems.push({
            env: k,
            hostEnv: v.hostEnv,
            reason: v.hostEnv.startsWith(RESERVED_HOST_ENV_PREFIX)
              ? `host variable ${v.hostEnv} is the host's own configuration, never given to actors`
              : `host variable ${v.hostEnv} is not set on this host`,
          });
        }
        continue;
      }
      const name = v.secret;
      if (this.#opts.seed === undefined) {
        problems.push({
          env: k,
          secret: name,
          reason: `secret '${name}' needs a secrets key, and this host has none (start it with --secrets-key or WEFT_SECRETS_KEY)`,
        });
        continue;
      }
      try {
        const store = await this.#openStore();
        this.#startWatch(store);
        const got = await store.get(name);
        this.#read.set(name, got?.revision ?? 0);
        if (got === undefined) {
          problems.push({
            env: k,
            secret: name,
            reason: `secret '${name}' is not in lattice '${lattice}' (weft secret put ${name})`,
          });
          continue;
        }
        out[k] = openSecret(got.entry, { lattice, name, seed: this.#opts.seed });
      } catch (err) {
        // Store errors and openSecret's messages name the secret, never a value.
        problems.push({ env: k, secret: name, reason: (err as Error).message });
      }
    }
    if (problems.length > 0) {
      throw secretError(
        `${ErrorCode.Secret}: actor '${actor}': ${problems.map((p) => `env ${p.env}: ${p.reason}`).join('; ')}`,
        { actor, problems },
      );
    }
    return out;
  }

  /** Stop watching the secret store. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const w = await this.#watch?.catch(() => undefined);
    w?.stop();
  }
}
