/**
 * The gateway's route table. A route is an exact path (`/hello`) or a prefix wildcard
 * (`/hello/...`, which matches `/hello` and everything below it; `/...` matches all). For a
 * request: routes for its exact host are tried before `*` routes; an exact path beats any
 * wildcard; among wildcards the longest prefix wins.
 */
import type { RouteEntry } from '../../lattice/index.ts';

export interface RouteMatch {
  entry: RouteEntry;
  /** SCRIPT_NAME: the exact path, or the wildcard's prefix without the trailing `/...`. */
  prefix: string;
}

interface Compiled {
  entry: RouteEntry;
  exact: boolean;
  prefix: string;
}

const WILDCARD = '/...';

export class RouteTable {
  /** Routes by application, as the route store holds them. */
  readonly #byApp = new Map<string, RouteEntry[]>();
  #compiled: Compiled[] = [];

  setApp(app: string, routes: RouteEntry[] | undefined): void {
    if (routes === undefined) this.#byApp.delete(app);
    else this.#byApp.set(app, routes);
    this.#compiled = [...this.#byApp.values()].flat().map((entry) => {
      const exact = !entry.path.endsWith(WILDCARD);
      return { entry, exact, prefix: exact ? entry.path : entry.path.slice(0, -WILDCARD.length) };
    });
  }

  entries(): RouteEntry[] {
    return this.#compiled.map((c) => c.entry);
  }

  /** Match a normalized path for a request's host (lower-case, no port). */
  match(host: string, path: string): RouteMatch | undefined {
    return this.#matchHost(host, path) ?? this.#matchHost('*', path);
  }

  #matchHost(host: string, path: string): RouteMatch | undefined {
    let best: Compiled | undefined;
    for (const c of this.#compiled) {
      if (c.entry.host.toLowerCase() !== host) continue;
      if (c.exact) {
        if (c.prefix === path) return { entry: c.entry, prefix: c.prefix };
        continue;
      }
      const hit = c.prefix === '' || path === c.prefix || path.startsWith(`${c.prefix}/`);
      if (hit && (!best || c.prefix.length > best.prefix.length)) best = c;
    }
    return best && { entry: best.entry, prefix: best.prefix };
  }
}
