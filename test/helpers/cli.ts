/** Run the real CLI (`bin/weft.ts`) as a child process, and start long-running roles. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './stack.ts';
import { until } from './until.ts';

const ENTRY = join(ROOT, 'bin', 'weft.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run `weft ARGS…` to completion (bounded by `timeoutMs`). `stdin`: text written then closed;
 * `'open'` keeps it open and silent (a guest polling it must rely on its timeout); default none.
 */
export function weft(
  args: string[],
  opts: { timeoutMs?: number; env?: Record<string, string>; stdin?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ENTRY, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (child.stdin !== null) {
      child.stdin.on('error', () => {});
      if (opts.stdin !== 'open') child.stdin.end(opts.stdin);
    }
  });
}

export interface Service {
  child: ChildProcess;
  pid: number;
  /** pino JSON lines printed so far. */
  lines(): Record<string, unknown>[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Start `weft host …` / `weft gateway …` and wait for the log line `readyMsg`. */
export async function startService(args: string[], readyMsg: string): Promise<Service> {
  const child = spawn(process.execPath, [ENTRY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await until(
    () => {
      if (child.exitCode !== null) throw new Error(`weft ${args[0]} exited: ${err}`);
      return lines().some((l) => l['msg'] === readyMsg);
    },
    { name: `weft ${args[0]} '${readyMsg}'`, timeoutMs: 20_000 },
  );
  return {
    child,
    pid: child.pid!,
    lines,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

/** `weft host` as a process in `lattice`, with its id and any more options; once started. */
export function startHostProcess(
  natsUrl: string,
  lattice: string,
  hostId: string,
  more: string[] = [],
): Promise<Service> {
  return startService(
    [
      'host',
      '--nats',
      natsUrl,
      '--lattice',
      lattice,
      '--host-id',
      hostId,
      '--workers',
      '1',
      ...more,
    ],
    'host started',
  );
}
