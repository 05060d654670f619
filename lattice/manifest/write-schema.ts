/**
 * Writes the manifest's JSON Schema to `docs/manifest.schema.json`, the published copy editors
 * and other tools read. Run after changing `schema.ts`: `node lattice/manifest/write-schema.ts`.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { manifestJsonSchema } from './schema.ts';

const target = fileURLToPath(new URL('../../docs/manifest.schema.json', import.meta.url));
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, manifestJsonSchema());
process.stdout.write(`wrote ${target}\n`);
