/**
 * The manifest's JSON Schema (draft-07), the one published as `docs/manifest.schema.json` and the
 * one `parseManifest` validates with ajv. `additionalProperties: false` everywhere, so a typo is an
 * error rather than a silently ignored field. `default` values here are documentation: they are
 * applied by `parse.ts` (from the same constants), not by ajv, so that validation never mutates
 * the input.
 */

import { deepFreeze } from './freeze.ts';
import {
  ActorMode,
  ALLOWED_HOST_PATTERN,
  DEFAULT_LIMITS,
  ENV_KEY_PATTERN,
  GUEST_PATH_PATTERN,
  LABEL_KEY_PATTERN,
  MANIFEST_API_VERSION,
  MANIFEST_KIND,
  MAX_MEMORY_MIB,
  MAX_TIMEOUT_MS,
  NAME_PATTERN,
  ROUTE_HOST_PATTERN,
  ROUTE_PATH_PATTERN,
  SECRET_NAME_PATTERN,
  VERSION_PATTERN,
} from './types.ts';

type JsonSchema = { readonly [key: string]: unknown };

const name = (description: string): JsonSchema => ({
  type: 'string',
  pattern: NAME_PATTERN,
  description,
});

const labels = (description: string): JsonSchema => ({
  type: 'object',
  description,
  propertyNames: { pattern: LABEL_KEY_PATTERN },
  additionalProperties: { type: 'string' },
});

const positiveInt = (description: string, fallback: number, maximum?: number): JsonSchema => ({
  type: 'integer',
  minimum: 1,
  maximum: maximum ?? Number.MAX_SAFE_INTEGER,
  default: fallback,
  description,
});

const allowList = (description: string, example: string): JsonSchema => ({
  type: 'array',
  description,
  default: [],
  items: { type: 'string', pattern: ALLOWED_HOST_PATTERN },
  examples: [[example]],
});

const limits: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  description:
    'Per-actor limits. Each field left out takes its default, so a manifest may give only some.',
  properties: {
    timeoutMs: positiveInt(
      'Wall-clock time per invocation, in milliseconds (504 when exceeded).',
      DEFAULT_LIMITS.timeoutMs,
      MAX_TIMEOUT_MS,
    ),
    memoryMiB: positiveInt(
      "Linear memory cap in MiB; the module's memory maximum is clamped to it. wasm32 caps at 4096.",
      DEFAULT_LIMITS.memoryMiB,
      MAX_MEMORY_MIB,
    ),
    maxRequestBytes: positiveInt(
      'Largest request body accepted, in bytes (413 beyond).',
      DEFAULT_LIMITS.maxRequestBytes,
    ),
    maxResponseBytes: positiveInt(
      'Largest response body forwarded, in bytes.',
      DEFAULT_LIMITS.maxResponseBytes,
    ),
    maxConcurrency: positiveInt(
      'Invocations running at once, per host.',
      DEFAULT_LIMITS.maxConcurrency,
    ),
    maxQueue: {
      type: 'integer',
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      default: DEFAULT_LIMITS.maxQueue,
      description:
        'Invocations waiting for a slot, per host; 0 rejects at once when all slots are busy (503).',
    },
    startTimeoutMs: positiveInt(
      'proxy: time an instance has to start listening on its port before it is reported failed and restarted, in milliseconds.',
      DEFAULT_LIMITS.startTimeoutMs,
    ),
    maxThreads: positiveInt(
      'proxy: threads one instance may run besides its main thread; thread_spawn fails (EAGAIN) past it.',
      DEFAULT_LIMITS.maxThreads,
    ),
    maxOutboundRequests: {
      type: 'integer',
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      default: DEFAULT_LIMITS.maxOutboundRequests,
      description:
        'Outbound HTTP requests one invocation may make (redirects count); past it the guest gets an error.',
    },
  },
};

const actor: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'module'],
  properties: {
    name: name(
      'Actor name, unique within the application: a DNS label (it is a NATS subject token).',
    ),
    module: {
      type: 'string',
      minLength: 1,
      description:
        'A path to a .wasm file (pushed on deploy), sha256:<64 hex digits>, or <name>:<tag> of a pushed artifact.',
      examples: ['./hello.wasm', 'sha256:<64 hex digits>', 'hello:1.0.0'],
    },
    mode: {
      type: 'string',
      enum: Object.values(ActorMode),
      default: ActorMode.Wcgi,
      description:
        'wcgi: an instance per request (CGI over stdin/stdout). proxy: long-lived instances serving HTTP on a WASIX socket.',
    },
    port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      default: 80,
      description:
        'proxy: the port the instance listens on, where the host forwards requests (granted to it, and given to it as $PORT).',
    },
    instances: {
      type: 'integer',
      minimum: 1,
      maximum: Number.MAX_SAFE_INTEGER,
      default: 1,
      description:
        'Instances across the lattice: a proxy actor runs this many long-lived instances in all (several may share a host); a wcgi actor is served from this many hosts. Ignored with daemon.',
    },
    daemon: {
      type: 'boolean',
      default: false,
      description:
        'One placement on every host that matches the spread (any host without one), as hosts come and go; instances is then ignored.',
    },
    spread: {
      type: 'array',
      description: 'Weighted placement over host labels. Left out: any host.',
      items: { $ref: '#/definitions/spread' },
    },
    args: {
      type: 'array',
      default: [],
      description: "argv after argv[0] (the module's name).",
      items: { type: 'string' },
    },
    env: {
      type: 'object',
      default: {},
      description:
        "The guest's exact environment. A value is a string (quote numbers), { secret: NAME } (from the lattice's secret store) or { hostEnv: VAR } (from the environment of the host process that runs the actor).",
      propertyNames: { pattern: ENV_KEY_PATTERN },
      additionalProperties: { $ref: '#/definitions/envValue' },
    },
    files: {
      type: 'array',
      default: [],
      description: 'Read-only file trees bundled with the application and mounted in the guest.',
      items: { $ref: '#/definitions/fileMount' },
    },
    limits: { $ref: '#/definitions/limits' },
    capabilities: { $ref: '#/definitions/capabilities' },
    routes: {
      type: 'array',
      default: [],
      description: 'HTTP routes to this actor. Left out: reachable over NATS only.',
      items: { $ref: '#/definitions/route' },
    },
  },
};

const schema: JsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'urn:weft:schema:manifest:v1',
  title: 'weft application manifest',
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { type: 'string', const: MANIFEST_API_VERSION },
    kind: { type: 'string', const: MANIFEST_KIND },
    metadata: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'version'],
      properties: {
        name: name(
          'Application name, unique per lattice: a DNS label (it is a NATS subject token).',
        ),
        version: {
          type: 'string',
          pattern: VERSION_PATTERN,
          description:
            'Semver-ish version: 1, 1.0, 1.0.0, v1.2.3, 1.0.0-rc.1+build.5. Quote it in YAML.',
        },
        description: { type: 'string' },
        labels: labels('Free-form labels on the application.'),
      },
    },
    spec: {
      type: 'object',
      additionalProperties: false,
      required: ['actors'],
      properties: {
        actors: {
          type: 'array',
          minItems: 1,
          items: { $ref: '#/definitions/actor' },
        },
      },
    },
  },
  definitions: {
    actor,
    envValue: {
      description:
        'A string, or a reference the host resolves when it starts the actor; the lattice stores and shows only the reference, never the value.',
      anyOf: [
        { type: 'string' },
        {
          type: 'object',
          additionalProperties: false,
          required: ['secret'],
          properties: {
            secret: {
              type: 'string',
              pattern: SECRET_NAME_PATTERN,
              description:
                "A secret's name in the lattice's secret store (weft secret put NAME), encrypted at rest; hosts decrypt it with their secrets key.",
            },
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['hostEnv'],
          properties: {
            hostEnv: {
              type: 'string',
              pattern: ENV_KEY_PATTERN,
              description:
                'A variable of the environment of the host process that runs the actor; an actor whose host lacks it fails to start.',
            },
          },
        },
      ],
    },
    spread: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: name('Spread target name, unique within the actor.'),
        requirements: labels('Host labels that must all match exactly. Left out: any host.'),
        weight: {
          type: 'integer',
          minimum: 0,
          maximum: Number.MAX_SAFE_INTEGER,
          description: "Relative share of the actor's instances. Left out: an equal share.",
        },
      },
    },
    fileMount: {
      type: 'object',
      additionalProperties: false,
      required: ['source', 'guest'],
      properties: {
        source: {
          type: 'string',
          minLength: 1,
          description: 'Directory or file on the deploying machine, relative to the manifest.',
        },
        guest: {
          type: 'string',
          pattern: GUEST_PATH_PATTERN,
          description: 'Absolute mount point in the guest, e.g. /public.',
        },
      },
    },
    limits,
    capabilities: {
      type: 'object',
      additionalProperties: false,
      description: 'What the actor may reach. Everything not declared is denied.',
      properties: {
        outboundHttp: allowList(
          "Outbound HTTP allowlist, Spin's allowed_outbound_hosts grammar.",
          'https://api.example.com',
        ),
        sockets: {
          type: 'object',
          additionalProperties: false,
          properties: {
            listen: {
              type: 'array',
              default: [],
              description: 'Ports the guest may listen on.',
              items: { type: 'integer', minimum: 1, maximum: 65535 },
            },
            connect: allowList(
              'Outbound socket allowlist, same grammar as outboundHttp.',
              'tcp://db.internal:5432',
            ),
          },
        },
      },
    },
    route: {
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      properties: {
        path: {
          type: 'string',
          pattern: ROUTE_PATH_PATTERN,
          description:
            '/exact, /prefix/... (everything below /prefix) or /... (everything). Exact beats wildcard; longest prefix wins.',
        },
        host: {
          type: 'string',
          pattern: ROUTE_HOST_PATTERN,
          default: '*',
          description: '* (any host) or a host name without scheme or port.',
        },
      },
    },
  },
};

/**
 * The manifest's JSON Schema (draft-07), deeply frozen. Validates the manifest as written
 * (defaults are annotations; `parseManifest` applies them).
 */
export const MANIFEST_SCHEMA: object = deepFreeze(schema);

/** The manifest's JSON Schema as pretty-printed JSON (2-space indent, trailing newline). */
export function manifestJsonSchema(): string {
  return `${JSON.stringify(MANIFEST_SCHEMA, null, 2)}\n`;
}
