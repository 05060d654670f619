/**
 * The application manifest's types as weft uses them after parsing: every default applied, every
 * value checked. Input may omit what has a default; the schema (`schema.ts`) is the input's shape.
 */

/** The only manifest API version this build reads. */
export const MANIFEST_API_VERSION = 'weft/v1';
/** The only manifest kind this build reads. */
export const MANIFEST_KIND = 'Application';

/** How a host runs an actor. */
export const ActorMode = {
  /** A fresh instance per request; the request travels as CGI variables and stdin (RFC 3875). */
  Wcgi: 'wcgi',
  /** Long-lived instances that listen on a WASIX socket; the host forwards HTTP to them. */
  Proxy: 'proxy',
} as const;
export type ActorMode = (typeof ActorMode)[keyof typeof ActorMode];

/** A parsed, validated application manifest with defaults applied. Deeply frozen. */
export interface Manifest {
  apiVersion: 'weft/v1';
  kind: 'Application';
  metadata: Metadata;
  spec: { actors: ActorSpec[] };
}

export interface Metadata {
  /** DNS-label-like (`NAME_PATTERN`); unique per lattice; goes into NATS subjects. */
  name: string;
  /** Semver-ish (`1.0.0`, `v2`, `1.2.3-rc.1`). */
  version: string;
  description?: string;
  labels?: Record<string, string>;
}

/** One actor of an application. */
export interface ActorSpec {
  /** DNS-label-like, unique within the application; the actor's NATS subject token. */
  name: string;
  /** Module reference: a path, `sha256:<hex>` or `name:tag` (see `parseModuleRef`). */
  module: string;
  /** Default `wcgi`. */
  mode: ActorMode;
  /** proxy: the port the guest listens on and requests are forwarded to (default 80); it is
   *  granted without being listed in `capabilities.sockets.listen`, and passed as `$PORT`. */
  port: number;
  /** Instances across the lattice (integer ≥ 1, default 1): proxy runs this many long-lived
   *  instances in all, wcgi is served from this many hosts. Ignored with `daemon`. */
  instances: number;
  /** One placement on every matching host (default false). */
  daemon: boolean;
  /** Weighted placement over host labels; absent when the manifest gives none (any host). */
  spread?: Spread[];
  /** argv after argv[0] (the module's name). Default empty. */
  args: string[];
  /**
   * The guest's exact environment. Default empty. A value is a string, or a reference resolved by
   * the host when it starts the actor: `{ secret }` from the lattice's secret store, `{ hostEnv }`
   * from the host process's environment. References are all the lattice ever stores or shows.
   */
  env: Record<string, EnvValue>;
  /** Read-only trees mounted into the guest. Default empty. */
  files: FileMount[];
  /** Every field filled (from `DEFAULT_LIMITS` where the manifest is silent). */
  limits: Limits;
  /** Always filled after parsing: absent lists become empty, which denies everything. */
  capabilities: Capabilities;
  /** HTTP routes to this actor. Default empty (the actor is reachable over NATS only). */
  routes: Route[];
}

/** An environment value: a plain string, or a reference the host resolves when it starts the actor. */
export type EnvValue = string | SecretRef | HostEnvRef;

/** `{ secret: NAME }`: the value of secret NAME in the lattice's secret store (`weft secret put`). */
export interface SecretRef {
  secret: string;
}

/** `{ hostEnv: VAR }`: the value of VAR in the environment of the host process running the actor. */
export interface HostEnvRef {
  hostEnv: string;
}

/** One spread target: a share of an actor's instances placed on hosts whose labels match. */
export interface Spread {
  name: string;
  /** Host labels that must all match exactly. Default `{}` (any host). */
  requirements: Record<string, string>;
  /** Relative share (integer ≥ 0); absent means an equal share. */
  weight?: number;
}

/** A read-only file tree bundled with the application and mounted into the guest. */
export interface FileMount {
  /** Path on the deploying machine, relative to the manifest; resolved by the CLI, not here. */
  source: string;
  /** Absolute path inside the guest (`/public`). */
  guest: string;
}

/** Per-actor limits. All are positive integers except `maxQueue` (≥ 0). */
export interface Limits {
  /** Wall-clock time per invocation, in milliseconds (504 when exceeded). */
  timeoutMs: number;
  /** Linear memory cap in MiB; the module's declared maximum is clamped to it. ≤ 4096. */
  memoryMiB: number;
  /** Largest request body accepted, in bytes (413 beyond). */
  maxRequestBytes: number;
  /** Largest response body forwarded, in bytes. */
  maxResponseBytes: number;
  /** Invocations running at once per host. */
  maxConcurrency: number;
  /** Invocations waiting for a slot per host; 0 rejects at once when all slots are busy (503). */
  maxQueue: number;
  /** proxy: time an instance has to listen on `port` before it counts as failed, in ms. */
  startTimeoutMs: number;
  /** proxy: threads an instance may run besides its main thread. */
  maxThreads: number;
  /** Outbound HTTP requests per invocation (redirects count). */
  maxOutboundRequests: number;
}

/**
 * What an actor may reach. Denied unless declared; entries follow Spin's `allowed_outbound_hosts`
 * grammar and are checked by the host's policy provider. `parseManifest` always fills both fields
 * (empty lists when absent); they are optional so that a hand-built spec may leave them out.
 */
export interface Capabilities {
  /** `scheme://host[:port]` patterns the actor may call over HTTP(S). */
  outboundHttp?: string[];
  sockets?: {
    /** Ports the guest may listen on (1–65535). */
    listen?: number[];
    /** `scheme://host[:port]` patterns the guest may connect to (`tcp://db.internal:5432`). */
    connect?: string[];
  };
}

/** An HTTP route. */
export interface Route {
  /** `/exact`, `/prefix/...` (wildcard below the prefix) or `/...` (everything). */
  path: string;
  /** `*` (default, any host) or a host name, lower-cased. */
  host: string;
}

/** Limits an actor gets for each field its manifest leaves out. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  timeoutMs: 10_000,
  memoryMiB: 128,
  maxRequestBytes: 10 * 1024 * 1024,
  maxResponseBytes: 32 * 1024 * 1024,
  maxConcurrency: 64,
  maxQueue: 256,
  startTimeoutMs: 10_000,
  maxThreads: 64,
  maxOutboundRequests: 32,
});

/** wasm32 linear memory cannot exceed 65536 pages of 64 KiB = 4 GiB. */
export const MAX_MEMORY_MIB = 4096;
/** setTimeout overflows above 2^31-1 ms and fires at once, so a longer timeout would be none. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** App and actor names: a DNS label, because they become NATS subject tokens (no `.`, `*`, `>`). */
export const NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
/** `1`, `1.0`, `1.0.0`, optional leading `v`, optional `-prerelease` and `+build`. */
export const VERSION_PATTERN =
  '^v?(0|[1-9][0-9]*)(\\.(0|[1-9][0-9]*)){0,2}(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$';
/** POSIX portable environment variable names. */
export const ENV_KEY_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';
/**
 * Secret names: letters, digits, `_` and `-`, at most 128. No `.`: a name is one token of a KV
 * key (`secret.<name>`), so it can neither climb out of its prefix nor match a wildcard.
 */
export const SECRET_NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$';
/** Label keys (app labels, spread requirements): Kubernetes-like, optional `prefix/`. */
export const LABEL_KEY_PATTERN =
  '^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$';
/**
 * A route path segment: no `/`, whitespace, control characters, `?`, `#`, `*`, and no `..`
 * anywhere (it would let a route climb out of its prefix after normalization).
 */
const SEGMENT = '(?:(?!\\.\\.)[^/\\s\\x00-\\x1f\\x7f?#*])+';
/** `/`, `/a/b`, `/a/b/`, `/a/...`, `/...`: a wildcard only as the last segment (Spin syntax). */
export const ROUTE_PATH_PATTERN = `^(?:/|(?:/${SEGMENT})+/?|(?:/${SEGMENT})*/\\.\\.\\.)$`;
/**
 * The path the gateway serves itself (its dashboard, `/_weft/`): no route may be declared at or
 * under it, so that no application can shadow or impersonate it.
 */
export const RESERVED_ROUTE_PREFIX = '/_weft';
/** `*` or a host name (letters, digits, `-`, dot-separated labels); compared case-insensitively. */
export const ROUTE_HOST_PATTERN =
  '^(\\*|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$';
/** An allowlist entry: a scheme (or `*`), `://`, then the rest; the policy provider parses it. */
export const ALLOWED_HOST_PATTERN = '^(\\*|[A-Za-z][A-Za-z0-9+.-]*)://\\S+$';
/** Guest mount points are absolute, without `..` segments. */
export const GUEST_PATH_PATTERN = '^(?!.*/\\.\\.(?:/|$))/[^\\x00-\\x1f\\x7f]*$';
