/**
 * Subject builders. Every subject carries the lattice name, so two lattices on one NATS never see
 * each other's traffic. See docs/protocol.md for the plan.
 */
import { ErrorCode, WeftError } from './errors.ts';

/** Lattice, actor, app and host names go into subjects and bucket names: one token, no wildcards. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

/** Throws WEFT_ERR_BAD_REQUEST unless `name` is safe as one subject token and a bucket name part. */
export function assertName(kind: string, name: string): string {
  if (!NAME_RE.test(name)) {
    throw new WeftError(
      ErrorCode.BadRequest,
      `invalid ${kind} name '${name}': expected 1-63 of [A-Za-z0-9_-], starting alphanumeric`,
      { details: { kind, name } },
    );
  }
  return name;
}

export const HostVerb = { Get: 'get', Stop: 'stop' } as const;
export type HostVerb = (typeof HostVerb)[keyof typeof HostVerb];

export const EventType = {
  HostStarted: 'host.started',
  HostHeartbeat: 'host.heartbeat',
  HostStopped: 'host.stopped',
  /** A host stops taking invocations and is about to leave: move its placements now. */
  HostDraining: 'host.draining',
  ActorStarted: 'actor.started',
  ActorStopped: 'actor.stopped',
  ActorFailed: 'actor.failed',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

/** All subjects of one lattice. */
export class Subjects {
  readonly lattice: string;
  readonly prefix: string;
  constructor(lattice: string) {
    this.lattice = assertName('lattice', lattice);
    this.prefix = `weft.v1.${lattice}`;
  }
  /** Every host answers (gather). */
  hostPing(): string {
    return `${this.prefix}.ctl.host.ping`;
  }
  hostCtl(hostId: string, verb: HostVerb): string {
    return `${this.prefix}.ctl.host.${hostId}.${verb}`;
  }
  /** Invocations; hosts subscribe with queue group = actor, so NATS balances across hosts. */
  rpc(actor: string): string {
    return `${this.prefix}.rpc.${actor}`;
  }
  /** Invocations for one host only. */
  rpcHost(actor: string, hostId: string): string {
    return `${this.prefix}.rpc.${actor}.${hostId}`;
  }
  event(type: EventType): string {
    return `${this.prefix}.evt.${type}`;
  }
  events(): string {
    return `${this.prefix}.evt.>`;
  }
  /** Chunk stream of one large body (see streams.ts). */
  stream(id: string): string {
    return `${this.prefix}.stream.${id}`;
  }
  /**
   * Actors' output as log records (`LogBatch`), published by the host that runs them; `actor`
   * `*` for every actor of the app (a subscription).
   */
  logs(app: string, actor: string): string {
    return `${this.prefix}.logs.${app}.${actor}`;
  }
  /** The log records hosts keep of an app, asked of every host (gather): `LogHistoryRequest`. */
  logHistory(app: string): string {
    return `${this.prefix}.ctl.logs.${app}`;
  }
  /** Hosts subscribe here to answer `logHistory` for any app. */
  logHistoryAll(): string {
    return `${this.prefix}.ctl.logs.*`;
  }
  /** `weft spy` announces its interest in an actor here (`SpyInterest`), again and again. */
  spyInterest(): string {
    return `${this.prefix}.ctl.spy`;
  }
  /** One event per invocation of `actor` (`SpyEvent`), only while someone spies on it. */
  spy(actor: string): string {
    return `${this.prefix}.spy.${actor}`;
  }
  /**
   * The prefix of this lattice's reply subjects (inboxes): under the lattice's own prefix, so that
   * with NATS permissions a user of one lattice can neither read nor forge another's replies.
   */
  inbox(): string {
    return `${this.prefix}.inbox`;
  }
  /** JetStream bucket names (KV and object store). */
  bucket(
    kind: 'apps' | 'routes' | 'artifacts' | 'tags' | 'placements' | 'leases' | 'secrets',
  ): string {
    return `weft-${this.lattice}-${kind}`;
  }
}
