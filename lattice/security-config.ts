/**
 * The least-privilege NATS permissions of a lattice, rendered as a nats-server `authorization`
 * block. This is the one place the design lives: docs/security.md shows it rendered for lattice
 * `L` (a test keeps the two equal) and the auth tests run it against a real nats-server.
 *
 * Model: each lattice has three roles, each a NATS user (password or nkey) in one shared account.
 * A user may publish and subscribe only under its own lattice's prefix `weft.v1.<lattice>.`
 * (replies included: weft's inboxes are `weft.v1.<lattice>.inbox.…`, not `_INBOX.>`) and touch
 * only its own lattice's JetStream buckets `weft-<lattice>-*`, each API subject named stream by
 * stream (NATS wildcards match whole tokens, so `KV_weft-<lattice>-*` cannot be written). Within
 * the lattice:
 * - host: serves invocations (`rpc`) and control requests (`ctl.host`, `ctl.logs`, `ctl.spy`),
 *   publishes events and actors' output (`logs`, `spy`), pulls and offers bodies (`stream`),
 *   reads the buckets (creating them if missing) and writes only what the scheduler owns
 *   (placements, leases). It cannot invoke actors or deploy.
 * - gateway: sends invocations, follows host events, watches the route table. It cannot send a
 *   control request nor write any bucket.
 * - operator (the CLI): everything of its lattice, nothing of another's.
 * Anything not allowed is denied; the explicit denies state the invariants that matter most.
 */
import { Subjects } from './subjects.ts';

export const LatticeRole = { Host: 'host', Gateway: 'gateway', Operator: 'operator' } as const;
export type LatticeRole = (typeof LatticeRole)[keyof typeof LatticeRole];

/**
 * A NATS user: a name and password, or an nkey's public key (`U…`). A `$NAME` password is left
 * unquoted, so that nats-server reads it from a variable of its config or its environment; any
 * other string (a bcrypt hash from `nats server passwd`, say) is quoted.
 */
export type NatsIdentity = { user: string; password: string } | { nkey: string };

/** The users of one lattice, one or more per role. */
export interface LatticeUsers {
  lattice: string;
  host: NatsIdentity | NatsIdentity[];
  gateway: NatsIdentity | NatsIdentity[];
  operator: NatsIdentity | NatsIdentity[];
}

export interface SubjectPermissions {
  publish: { allow: string[]; deny: string[] };
  subscribe: { allow: string[]; deny: string[] };
}

type BucketKind = Parameters<Subjects['bucket']>[0];
const BUCKETS: readonly BucketKind[] = [
  'apps',
  'routes',
  'placements',
  'leases',
  'tags',
  'artifacts',
  'secrets',
];

/** The JetStream stream behind a bucket: `KV_<bucket>`, or `OBJ_<bucket>` for the object store. */
function streamOf(s: Subjects, kind: BucketKind): string {
  return `${kind === 'artifacts' ? 'OBJ' : 'KV'}_${s.bucket(kind)}`;
}

/** The subjects a bucket's values are written to (a KV put, an object chunk). */
function dataOf(s: Subjects, kind: BucketKind): string {
  return `${kind === 'artifacts' ? '$O' : '$KV'}.${s.bucket(kind)}.>`;
}

/**
 * Open a bucket and read it: stream info, consumers for watches and listings (nats.js makes
 * ordered push consumers and answers their flow control on `$JS.FC`), direct and message gets.
 */
function readBucket(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.DELETE.${stream}.*`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.FC.${stream}.>`,
  ];
}

/** Everything on one bucket's stream: create, update, purge, delete, any consumer. */
function manageBucket(stream: string): string[] {
  return [
    `$JS.API.STREAM.*.${stream}`,
    `$JS.API.STREAM.MSG.*.${stream}`,
    `$JS.API.CONSUMER.*.${stream}`,
    `$JS.API.CONSUMER.*.${stream}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.*`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.FC.${stream}.>`,
    `$JS.ACK.${stream}.>`,
  ];
}

/** Subjects with a line saying why (a comment in the rendered config). */
interface Group {
  why: string;
  subjects: string[];
}

interface RoleGroups {
  publish: { allow: Group[]; deny: string[] };
  subscribe: { allow: Group[]; deny: string[] };
}

function roleGroups(lattice: string, role: LatticeRole): RoleGroups {
  const s = new Subjects(lattice);
  const p = s.prefix;
  const inbox = `${s.inbox()}.>`;
  const bodies: Group = {
    why: 'bodies pulled in chunks (stream), and replies (inbox)',
    subjects: [`${p}.stream.>`, inbox],
  };
  switch (role) {
    case LatticeRole.Host: {
      // secrets: sealed entries only; the host's secrets key, not NATS, keeps the values.
      const read: BucketKind[] = ['apps', 'placements', 'leases', 'tags', 'artifacts', 'secrets'];
      return {
        publish: {
          allow: [
            {
              why: 'events; gathers (a new scheduler leader, draining) and the host id check',
              subjects: [`${p}.evt.>`, s.hostPing(), `${p}.ctl.host.*.get`],
            },
            bodies,
            {
              why: "actors' output (weft logs) and invocations spied on (weft spy)",
              subjects: [`${p}.logs.>`, `${p}.spy.>`],
            },
            {
              why: 'JetStream: open (or create) and read its buckets',
              subjects: [
                '$JS.API.INFO',
                ...read.flatMap((k) => [
                  `$JS.API.STREAM.CREATE.${streamOf(s, k)}`,
                  ...readBucket(streamOf(s, k)),
                ]),
              ],
            },
            {
              why: "write what the scheduler's leader owns: placements and its lease",
              subjects: [dataOf(s, 'placements'), dataOf(s, 'leases')],
            },
          ],
          deny: [
            `${p}.rpc.>`,
            dataOf(s, 'apps'),
            dataOf(s, 'routes'),
            dataOf(s, 'artifacts'),
            dataOf(s, 'secrets'),
          ],
        },
        subscribe: {
          allow: [
            {
              why: 'invocations, control requests, events (the scheduler)',
              subjects: [`${p}.rpc.>`, `${p}.ctl.host.>`, `${p}.evt.>`],
            },
            {
              why: 'requests for the output it keeps (weft logs), spy announcements (weft spy)',
              subjects: [s.logHistoryAll(), s.spyInterest()],
            },
            bodies,
          ],
          deny: [],
        },
      };
    }
    case LatticeRole.Gateway:
      return {
        publish: {
          allow: [
            { why: 'invocations', subjects: [`${p}.rpc.>`] },
            bodies,
            {
              why: 'JetStream: watch the route table (created empty if nothing was deployed yet)',
              subjects: [
                '$JS.API.INFO',
                `$JS.API.STREAM.CREATE.${streamOf(s, 'routes')}`,
                ...readBucket(streamOf(s, 'routes')),
              ],
            },
          ],
          deny: [`${p}.ctl.>`, '$KV.>', '$O.>'],
        },
        subscribe: {
          allow: [{ why: 'host events (liveness)', subjects: [`${p}.evt.>`] }, bodies],
          deny: [],
        },
      };
    case LatticeRole.Operator:
      return {
        publish: {
          allow: [
            { why: 'every subject of the lattice', subjects: [`${p}.>`] },
            {
              why: 'JetStream: every bucket of the lattice, in full',
              subjects: [
                '$JS.API.INFO',
                ...BUCKETS.flatMap((k) => [...manageBucket(streamOf(s, k)), dataOf(s, k)]),
              ],
            },
          ],
          deny: [],
        },
        subscribe: {
          allow: [{ why: 'every subject of the lattice', subjects: [`${p}.>`] }],
          deny: [],
        },
      };
    default: {
      const never: never = role;
      throw new Error(`unknown role ${String(never)}`);
    }
  }
}

/** What `role` may publish and subscribe to in `lattice` (WEFT_ERR_BAD_REQUEST for a bad name). */
export function rolePermissions(lattice: string, role: LatticeRole): SubjectPermissions {
  const g = roleGroups(lattice, role);
  return {
    publish: { allow: g.publish.allow.flatMap((x) => x.subjects), deny: g.publish.deny },
    subscribe: { allow: g.subscribe.allow.flatMap((x) => x.subjects), deny: g.subscribe.deny },
  };
}

/** A nats-server config string: a `$VARIABLE` reference stays bare, anything else is quoted. */
function confValue(v: string): string {
  return /^\$[A-Za-z_][A-Za-z0-9_]*$/.test(v) ? v : JSON.stringify(v);
}

function confList(key: string, items: (Group | string)[], indent: string): string[] {
  if (items.length === 0) return [];
  const lines = items.flatMap((g) =>
    typeof g === 'string'
      ? [`${indent}  ${JSON.stringify(g)}`]
      : [`${indent}  # ${g.why}`, ...g.subjects.map((x) => `${indent}  ${JSON.stringify(x)}`)],
  );
  return [`${indent}${key}: [`, ...lines, `${indent}]`];
}

function renderUser(id: NatsIdentity, perms: RoleGroups, indent: string): string[] {
  const i = `${indent}  `;
  const who =
    'nkey' in id
      ? [`${i}nkey: ${confValue(id.nkey)}`]
      : [`${i}user: ${confValue(id.user)}`, `${i}password: ${confValue(id.password)}`];
  const block = (name: 'publish' | 'subscribe'): string[] => [
    `${i}  ${name}: {`,
    ...confList('allow', perms[name].allow, `${i}    `),
    ...confList('deny', perms[name].deny, `${i}    `),
    `${i}  }`,
  ];
  return [
    `${indent}{`,
    ...who,
    `${i}permissions: {`,
    ...block('publish'),
    ...block('subscribe'),
    `${i}}`,
    `${indent}}`,
  ];
}

const ROLE_NOTES: Record<LatticeRole, string> = {
  host: 'serves invocations and control requests, publishes events, reads the buckets',
  gateway: 'sends invocations, follows events, watches the route table; no control, no writes',
  operator: 'the CLI: everything of this lattice',
};

/**
 * A nats-server `authorization { users = [...] }` block with the users of one or more lattices,
 * each with `rolePermissions`. Lattice names are checked (WEFT_ERR_BAD_REQUEST).
 */
export function securityConfig(lattices: LatticeUsers | LatticeUsers[]): string {
  const out = ['authorization {', '  users = ['];
  for (const l of Array.isArray(lattices) ? lattices : [lattices]) {
    for (const role of Object.values(LatticeRole)) {
      const perms = roleGroups(l.lattice, role);
      const ids = l[role];
      out.push(`    # lattice ${l.lattice}, ${role}: ${ROLE_NOTES[role]}`);
      for (const id of Array.isArray(ids) ? ids : [ids]) out.push(...renderUser(id, perms, '    '));
    }
  }
  out.push('  ]', '}');
  return `${out.join('\n')}\n`;
}
