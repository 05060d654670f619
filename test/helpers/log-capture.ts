import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** A pino logger at `level` whose JSON lines land in `lines`, as a user would read them. */
export function captureLogs(level = 'info'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) {
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { log: pino({ level }, sink), lines };
}
