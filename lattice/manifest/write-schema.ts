/**
 * Writes the manifest's JSON Schema to `docs/manifest.schema.json`, the published copy that
 * editors (yaml-language-server) and other tools read. Run it after changing `schema.ts`:
 * `node lattice/manifest/write-schema.ts`. The output is formatted with the repository's
 * Prettier settings so that `npm run check` accepts it as written.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { manifestJsonSchema } from './schema.ts';

const target = fileURLToPath(new URL('../../docs/manifest.schema.json', import.meta.url));
const options = (await resolveConfig(target)) ?? {};
const text = await format(manifestJsonSchema(), { ...options, filepath: target });
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, text);
process.stdout.write(`wrote ${target}\n`);
