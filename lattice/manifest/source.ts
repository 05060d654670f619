/**
 * YAML (or JSON, which YAML 1.2 reads) to plain data, keeping the parsed document so that any
 * problem found later, by the schema or by the semantic checks, can be reported at the line and
 * column where the user wrote the offending value.
 */

import {
  type Document,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node as YamlNode,
  parseDocument,
  visit,
} from 'yaml';
import type { PathSegment, Problem } from './problem.ts';

/** Aliases expanding beyond this many nodes are refused (a "billion laughs" document). */
const MAX_ALIAS_COUNT = 100;

/** Where a problem points: the value at its path, or the key (for an unknown field or key). */
export type Anchor = 'value' | 'key';

export interface Position {
  line: number;
  column: number;
}

/** A loaded manifest text: the document for positions and, when it parsed, its data. */
export class ManifestSource {
  readonly text: string;
  readonly #doc: Document.Parsed;
  readonly #lines: LineCounter;

  private constructor(text: string, doc: Document.Parsed, lines: LineCounter) {
    this.text = text;
    this.#doc = doc;
    this.#lines = lines;
  }

  /**
   * Parse `text`. Returns the data, or the syntax problems (all of them) when there is no data
   * to validate.
   */
  static load(
    text: string,
  ): { source: ManifestSource; data: unknown; problems: [] } | { problems: Problem[] } {
    const lines = new LineCounter();
    // prettyErrors off: its messages carry a multi-line excerpt; ours must be one line each.
    const doc = parseDocument(text, {
      lineCounter: lines,
      prettyErrors: false,
      uniqueKeys: true,
    });
    const source = new ManifestSource(text, doc, lines);
    const problems: Problem[] = doc.errors.map((e) => ({
      path: [],
      ...source.#at(e.pos[0]),
      message: syntaxMessage(e.code, e.message, keyAt(text, e.pos[0])),
    }));
    if (problems.length === 0) problems.push(...source.#structuralProblems());
    if (problems.length > 0) return { problems };
    if (doc.contents === null) {
      return {
        problems: [
          {
            path: [],
            line: 1,
            column: 1,
            message:
              'the manifest is empty: expected a mapping with apiVersion, kind, metadata and spec',
          },
        ],
      };
    }
    try {
      const data: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
      return { source, data, problems: [] };
    } catch (err) {
      // toJS throws only for alias abuse (unresolved ones are caught above).
      return {
        problems: [
          {
            path: [],
            line: 1,
            column: 1,
            message: `YAML: ${err instanceof Error ? err.message : String(err)}`,
          },
        ],
      };
    }
  }

  /**
   * Line and column (1-based) of the node at `path`: its value, or its key when `anchor` is
   * `key`. A path that leaves the document (a missing field, a default) resolves to the deepest
   * node that exists, i.e. the object that lacks the field.
   */
  position(path: readonly PathSegment[], anchor: Anchor = 'value'): Position {
    let node: unknown = this.#doc.contents;
    let pos = node === null ? 0 : this.#start(node);
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      if (isAlias(node)) node = node.resolve(this.#doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (pair === undefined) break;
        if ((i === path.length - 1 && anchor === 'key') || pair.value === null) {
          pos = this.#start(pair.key);
          break;
        }
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item: unknown = node.items[seg];
        if (item === undefined) break;
        node = item;
      } else {
        break;
      }
      pos = this.#start(node);
    }
    return this.#at(pos);
  }

  /** The text the user wrote for the value at `path`, when it is a scalar (`1.0`, `8080`). */
  sourceText(path: readonly PathSegment[]): string | undefined {
    let node: unknown = this.#doc.contents;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(this.#doc);
      if (isMap(node)) {
        node = node.items.find(
          (p) => isScalar(p.key) && String(p.key.value) === String(seg),
        )?.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
      } else {
        return undefined;
      }
    }
    if (isAlias(node)) node = node.resolve(this.#doc);
    return isScalar(node) && node.range ? this.text.slice(node.range[0], node.range[1]) : undefined;
  }

  #start(node: unknown): number {
    if (isPair(node)) return this.#start(node.key);
    const range = (node as YamlNode | null | undefined)?.range;
    return range?.[0] ?? 0;
  }

  #at(offset: number): Position {
    const { line, col } = this.#lines.linePos(offset);
    return { line, column: col };
  }

  /**
   * Problems the YAML library accepts but a manifest cannot hold: keys that are collections
   * (they would be stringified to `[ a ]`) and aliases to anchors that do not exist.
   */
  #structuralProblems(): Problem[] {
    const problems: Problem[] = [];
    visit(this.#doc, {
      Pair: (_key, pair) => {
        if (isCollection(pair.key)) {
          problems.push({
            path: [],
            ...this.#at(this.#start(pair.key)),
            message: 'YAML: a mapping key must be a plain string, not a list or mapping',
          });
        }
      },
      Alias: (_key, alias) => {
        if (alias.resolve(this.#doc) === undefined) {
          problems.push({
            path: [],
            ...this.#at(this.#start(alias)),
            message: `YAML: alias *${alias.source} refers to no anchor defined before it`,
          });
        }
      },
    });
    return problems;
  }
}

/** The key written at `offset` (a duplicate key's position): up to its `:`, quotes kept. */
function keyAt(text: string, offset: number): string {
  const m = /^("(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[^:#\n]*[^:#\s])/.exec(
    text.slice(offset, offset + 256),
  );
  return m?.[1] ?? text.slice(offset, offset + 1);
}

/** The yaml library's messages, reworded where they would puzzle a manifest author. */
function syntaxMessage(code: string, message: string, excerpt: string): string {
  switch (code) {
    case 'MULTIPLE_DOCS':
      return 'YAML: a manifest is a single document; found a second one after ---';
    case 'DUPLICATE_KEY':
      return `YAML: duplicate key '${excerpt}': mapping keys must be unique`;
    default:
      return `YAML: ${message}`;
  }
}
