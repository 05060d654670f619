/**
 * What both parts of `npm run bench` need to run processes: start one and wait for its ready
 * line, keep the last lines it wrote (to show when a row fails), and stop every process started
 * here, and only those, by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function log(s: string): void {
  process.stderr.write(`${s}\n`);
}

export class Procs {
  readonly all: ChildProcess[] = [];
  readonly #tails = new Map<ChildProcess, string[]>();

  /** Track a process started elsewhere, so that `stopAll` stops it too. */
  adopt(child: ChildProcess): ChildProcess {
    this.all.push(child);
    return child;
  }

  /** Spawn `cmd ARGS` and resolve with the first stdout match of `ready` (within `timeoutMs`). */
  start(
    cmd: string,
    args: string[],
    ready: RegExp,
    timeoutMs = 20_000,
  ): Promise<{ child: ChildProcess; m: RegExpMatchArray }> {
    const child = this.adopt(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    const tail: string[] = [];
    this.#tails.set(child, tail);
    const keep = (d: Buffer) => {
      tail.push(...d.toString().split('\n').filter(Boolean));
      if (tail.length > 2000) tail.splice(0, tail.length - 1000);
    };
    return new Promise((res, rej) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        rej(
          new Error(
            `${cmd} ${args.join(' ')} did not start within ${timeoutMs} ms: ${err.slice(-500)}`,
          ),
        );
      }, timeoutMs);
      child.stdout!.on('data', (d: Buffer) => {
        keep(d);
        if (out.length > 1e5) out = out.slice(-1e4);
        out += d.toString();
        const m = out.match(ready);
        if (m) {
          clearTimeout(timer);
          res({ child, m });
        }
      });
      child.stderr!.on('data', (d: Buffer) => {
        keep(d);
        if (err.length < 64 * 1024) err += d.toString();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        rej(new Error(`${cmd} exited (${code ?? signal}): ${err.slice(-500)}`));
      });
    });
  }

  /** The last lines `child` wrote, stdout and stderr. */
  tail(child: ChildProcess): string[] {
    return this.#tails.get(child) ?? [];
  }

  /** SIGTERM every process still running, SIGKILL after 5 s; resolves once all have exited. */
  async stopAll(): Promise<void> {
    const alive = this.all.filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(
      alive.map(
        (c) =>
          new Promise<void>((r) => {
            const t = setTimeout(() => c.kill('SIGKILL'), 5_000);
            c.once('exit', () => {
              clearTimeout(t);
              r();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
  }
}
