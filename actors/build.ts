/**
 * Builds every actor from source: `actors/<name>/*.c` → `actors/dist/<name>.wasm`, and each test
 * fixture `test/fixtures/actors/<name>.c` → `test/fixtures/actors/dist/<name>.wasm`, with clang and
 * wasi-libc. `actors/include` (the WASIX socket and thread headers) is on every build's include
 * path. An actor with an `index.ts` instead is AssemblyScript, compiled with the `assemblyscript`
 * package's asc against the bindings in `actors/assemblyscript`. A module is rebuilt only when a
 * source, or a header in `actors/include` (a binding in `actors/assemblyscript`), is newer than it.
 * `--native` also builds `actors/<name>/*.c` for the host (`bench/.build/<name>.cgi`), for the
 * classic-CGI baseline.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLANG = process.env['WEFT_CLANG'] ?? 'clang';
const INCLUDE = join(root, 'actors', 'include');
const WASM_FLAGS = ['--target=wasm32-wasi', '-Oz', '-Wall', '-Wl,--strip-all', '-I', INCLUDE];
const AS_LIB = join(root, 'actors', 'assemblyscript');
const ASC = join(root, 'node_modules', 'assemblyscript', 'bin', 'asc.js');
/**
 * A WASI command for the stub runtime (one instance per request never needs to free), its top
 * level run as `_start`, and the compiler's aborts routed to stderr and exit (wasi.ts), so the
 * module imports only WASI and weft_http. Paths are relative to the root, where asc runs.
 */
const AS_FLAGS = [
  '--runtime',
  'stub',
  '--exportStart',
  '_start',
  '-O3z',
  '--use',
  'abort=actors/assemblyscript/wasi/wasiAbort',
];

/** The `.h` files directly in dir (none when it does not exist). */
function headersIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.h'))
    .map((f) => join(dir, f));
}

function newest(files: string[]): number {
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

/**
 * clang runs `wasm-opt` after linking when it finds one on PATH, and binaryen's (which
 * AssemblyScript brings into node_modules/.bin) refuses atomics and bulk memory unless told: C
 * actors are built with PATH left without any directory that holds a wasm-opt.
 */
const PATH_DIRS = (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '');
const CLANG_ENV = {
  ...process.env,
  PATH: PATH_DIRS.filter((d) => !existsSync(join(d, 'wasm-opt'))).join(delimiter),
};

/** `cmd` found on the whole PATH (the compiler may sit beside a wasm-opt). */
function onPath(cmd: string): string {
  if (cmd.includes('/')) return cmd;
  return PATH_DIRS.map((d) => join(d, cmd)).find((f) => existsSync(f)) ?? cmd;
}

function build(
  sources: string[],
  out: string,
  flags: string[],
  compiler = CLANG,
  headers: string[] = [],
): boolean {
  if (existsSync(out) && statSync(out).mtimeMs >= newest([...sources, ...headers])) return false;
  mkdirSync(dirname(out), { recursive: true });
  execFileSync(onPath(compiler), [...flags, ...sources, '-o', out], {
    stdio: 'inherit',
    env: CLANG_ENV,
  });
  return true;
}

/**
 * `index.ts` of an AssemblyScript actor → `out`, when a source is newer than it. Without the
 * `assemblyscript` package (a checkout without `npm install`, the Dockerfile's C-only stage) the
 * actor is left out, and said so.
 */
function buildAssemblyScript(dir: string, out: string): boolean {
  const ts = (d: string) =>
    readdirSync(d)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(d, f));
  if (existsSync(out) && statSync(out).mtimeMs >= newest([...ts(dir), ...ts(AS_LIB)])) return false;
  if (!existsSync(ASC)) {
    process.stderr.write(
      `actors/build.ts: ${relative(root, dir)} not built: AssemblyScript is not installed (npm install)\n`,
    );
    return false;
  }
  mkdirSync(dirname(out), { recursive: true });
  const entry = relative(root, join(dir, 'index.ts'));
  execFileSync(process.execPath, [ASC, entry, '-o', out, ...AS_FLAGS], {
    cwd: root,
    stdio: 'inherit',
  });
  return true;
}

function checkClang(): void {
  try {
    execFileSync(CLANG, ['--version'], { stdio: 'ignore' });
  } catch {
    process.stderr.write(
      `actors/build.ts: '${CLANG}' not found. Install the C-to-Wasm toolchain:\n` +
        `  apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32\n`,
    );
    process.exit(1);
  }
}

checkClang();
const native = process.argv.includes('--native');
let built = 0;
// A change to a shared header rebuilds every module.
const shared = headersIn(INCLUDE);
const actorsDir = join(root, 'actors');
for (const name of readdirSync(actorsDir).sort()) {
  const dir = join(actorsDir, name);
  if (name === 'dist' || name === 'include' || !statSync(dir).isDirectory()) continue;
  if (existsSync(join(dir, 'index.ts'))) {
    if (buildAssemblyScript(dir, join(actorsDir, 'dist', `${name}.wasm`))) built++;
    continue;
  }
  const sources = readdirSync(dir)
    .filter((f) => f.endsWith('.c'))
    .map((f) => join(dir, f));
  if (sources.length === 0) continue;
  if (build(sources, join(actorsDir, 'dist', `${name}.wasm`), WASM_FLAGS, CLANG, shared)) built++;
  // weft_http exists only in a weft host: such an actor has no native build.
  const hostOnly = sources.some((f) => readFileSync(f, 'utf8').includes('weft_http.h'));
  if (native && !hostOnly) {
    const cc = process.env['CC'] ?? 'cc';
    build(
      sources,
      join(root, 'bench', '.build', `${name}.cgi`),
      ['-O2', '-I', INCLUDE],
      cc,
      shared,
    );
  }
}
const fixtures = join(root, 'test', 'fixtures', 'actors');
if (existsSync(fixtures)) {
  // A change to a fixture header rebuilds every fixture.
  const headers = [...shared, ...headersIn(fixtures)];
  for (const f of readdirSync(fixtures).toSorted()) {
    if (!f.endsWith('.c')) continue;
    const src = join(fixtures, f);
    // A fixture may ask for extra flags on its first line: `// build-flags: -mexec-model=reactor`.
    const first = readFileSync(src, 'utf8').split('\n', 1)[0] ?? '';
    const extra = first.startsWith('// build-flags:') ? first.slice(15).trim().split(/\s+/) : [];
    const out = join(fixtures, 'dist', f.replace(/\.c$/, '.wasm'));
    if (build([src], out, [...WASM_FLAGS, ...extra], CLANG, headers)) built++;
  }
}
process.stdout.write(`actors: ${built} module(s) built\n`);
