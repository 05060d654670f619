import { describe, expect, it } from 'vitest';
import { Progress, progressLine } from '../../bin/progress.ts';

describe('progressLine', () => {
  it('is the step alone without a size', () => {
    expect(progressLine('storing application')).toBe('storing application');
    expect(progressLine('x', 3, 0)).toBe('x');
  });

  it('draws a bar, the share and the amount in MiB or KiB', () => {
    expect(progressLine('pushing', 5 * 2 ** 20, 10 * 2 ** 20)).toBe(
      'pushing [############------------]  50%  5.0 of 10.0 MiB',
    );
    expect(progressLine('pushing', 0, 3000)).toBe(
      'pushing [------------------------]   0%  0 of 3 KiB',
    );
    expect(progressLine('running', 3, 3, 'instances')).toBe(
      'running [########################] 100%  3 of 3',
    );
  });

  it('never draws past the ends', () => {
    expect(progressLine('x', 12, 10, 'instances')).toContain('[########################] 100%');
    expect(progressLine('x', -1, 10, 'instances')).toContain('[------------------------]   0%');
  });
});

describe('Progress', () => {
  it('redraws in place on a terminal and clears the line at the end', () => {
    const out: string[] = [];
    const p = new Progress({ tty: true, forced: false, write: (s) => out.push(s) });
    p.update('pushing', 1, 4, 'instances');
    p.update('pushing', 2, 4, 'instances');
    p.end();
    expect(out).toEqual([
      '\r\x1b[Kpushing [######------------------]  25%  1 of 4',
      '\r\x1b[Kpushing [############------------]  50%  2 of 4',
      '\r\x1b[K',
    ]);
  });

  it('is silent without a terminal unless forced', () => {
    const out: string[] = [];
    new Progress({ tty: false, forced: false, write: (s) => out.push(s) }).update('a', 1, 2);
    expect(out).toEqual([]);
  });

  it('forced without a terminal, writes a line per step and per tenth', () => {
    const out: string[] = [];
    const p = new Progress({ tty: false, forced: true, write: (s) => out.push(s) });
    p.update('storing');
    p.update('storing');
    for (let i = 0; i <= 100; i++) p.update('pushing', i, 100, 'instances');
    p.end();
    expect(out[0]).toBe('storing\n');
    expect(out.length).toBe(1 + 11);
    expect(out.at(-1)).toBe('pushing [########################] 100%  100 of 100\n');
  });
});
