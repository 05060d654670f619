#!/usr/bin/env node
// Makes sure the system tools weft's start, tests and bench need are present, installing them
// with apt-get when this user may (root, or passwordless sudo): nats-server, and clang with
// wasi-libc to build the actors. `--bench` also asks for lighttpd (the classic-CGI baseline;
// the bench skips that row when it cannot be had); `--test` asks for chromium (the dashboard's
// browser test drives it headless) and zsh (to check its completion script). Plain JavaScript.
// Set WEFT_NO_INSTALL=1 to only check.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bench = process.argv.includes('--bench');
const test = process.argv.includes('--test');

function has(cmd, args = ['--version']) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function canBuildWasm() {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cc-'));
  try {
    writeFileSync(join(dir, 'a.c'), '#include <stdio.h>\nint main(void){puts("ok");return 0;}\n');
    const r = spawnSync(
      process.env.WEFT_CLANG ?? 'clang',
      ['--target=wasm32-wasi', '-Oz', join(dir, 'a.c'), '-o', join(dir, 'a.wasm')],
      { stdio: 'ignore' },
    );
    return r.status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Debian installs nats-server in /usr/sbin, which a non-login PATH may lack.
const natsServer =
  process.env.NATS_SERVER_BIN ??
  ['/usr/sbin/nats-server', '/usr/local/sbin/nats-server'].find((p) => existsSync(p)) ??
  'nats-server';
const missing = [];
if (!has(natsServer)) missing.push('nats-server');
if (!canBuildWasm()) missing.push('clang', 'lld', 'wasi-libc', 'libclang-rt-dev-wasm32');
if (test && !existsSync(process.env.WEFT_CHROMIUM ?? '/usr/bin/chromium')) missing.push('chromium');
// zsh: to check the completion script `weft completion zsh` prints.
if (test && !has('zsh')) missing.push('zsh');
const optional = bench && !has('lighttpd', ['-v']) ? ['lighttpd'] : [];

if (missing.length + optional.length === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const sudo = !isRoot && has('sudo', ['-n', 'true']) ? ['sudo', '-n'] : null;
const canInstall =
  process.env.WEFT_NO_INSTALL !== '1' && (isRoot || sudo) && has('apt-get', ['--version']);
const pkgs = [...missing, ...optional];

if (!canInstall) {
  if (missing.length === 0) process.exit(0);
  process.stderr.write(
    `weft needs system packages that are not installed: ${pkgs.join(' ')}\n` +
      `Install them, e.g.:  sudo apt-get install -y ${pkgs.join(' ')}\n` +
      `(or set NATS_SERVER_BIN / WEFT_CLANG to binaries elsewhere)\n`,
  );
  process.exit(1);
}

process.stderr.write(`installing ${pkgs.join(' ')} with apt-get...\n`);
const run = (args) =>
  execFileSync(sudo ? sudo[0] : args[0], sudo ? [...sudo.slice(1), ...args] : args.slice(1), {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
try {
  run(['apt-get', 'update', '-q']);
  run(['apt-get', 'install', '-y', '-q', ...missing]);
} catch (err) {
  process.stderr.write(`could not install ${missing.join(' ')}: ${err.message}\n`);
  process.exit(1);
}
if (optional.length > 0) {
  try {
    run(['apt-get', 'install', '-y', '-q', ...optional]);
  } catch {
    process.stderr.write(`could not install ${optional.join(' ')}; the bench will skip its row\n`);
  }
}
