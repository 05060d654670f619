/**
 * What a valid manifest may still get wrong: grants wider than an actor is likely to need. `weft
 * deploy` and `weft app validate` print these on stderr and go on.
 */
import type { Manifest } from './types.ts';

/** An allowlist entry whose host part is `*`: any host at all. */
function anyHost(entry: string): boolean {
  const rest = entry.slice(entry.indexOf('://') + 3);
  return rest === '*' || rest.startsWith('*:');
}

export function manifestWarnings(m: Manifest): string[] {
  const out: string[] = [];
  for (const a of m.spec.actors) {
    for (const [field, entries] of [
      ['outboundHttp', a.capabilities.outboundHttp ?? []],
      ['sockets.connect', a.capabilities.sockets?.connect ?? []],
    ] as const) {
      for (const e of entries.filter(anyHost)) {
        out.push(
          `actor '${a.name}': capabilities.${field} '${e}' grants every host; private, loopback and metadata addresses stay denied unless listed, but list the hosts the actor needs`,
        );
      }
    }
  }
  return out;
}
