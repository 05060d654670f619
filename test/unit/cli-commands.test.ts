/**
 * The CLI's command table (bin/commands.ts) against bin/weft.ts: every command the CLI dispatches
 * has an entry (so help and completion know it), parses its options from that entry, and `weft
 * run`'s own parser takes exactly the options listed; help reads well; typos get a suggestion.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  COMMANDS,
  CommandGroup,
  GLOBAL_OPTIONS,
  closest,
  commandHelp,
  mainHelp,
  parseCommandArgs,
  wantsHelp,
} from '../../bin/commands.ts';
import { unknownCommand, usageHint } from '../../bin/hints.ts';
import { ROOT } from '../helpers/stack.ts';

const source = readFileSync(join(ROOT, 'bin', 'weft.ts'), 'utf8');
const mainBody = source.slice(source.indexOf('async function main('));
const dispatched = [...mainBody.matchAll(/^ {4}case '([a-z][a-z-]*)':/gm)].map((m) => m[1]!);
const names = COMMANDS.map((c) => c.name);

describe('the command table', () => {
  it('has an entry for every command bin/weft.ts dispatches, and no other', () => {
    expect(dispatched.length).toBeGreaterThan(10);
    expect(dispatched.filter((c) => !names.includes(c))).toEqual([]);
    expect(names.filter((c) => !dispatched.includes(c))).toEqual([]);
    expect(new Set(names).size).toBe(names.length);
  });

  it('is what bin/weft.ts parses each command with', () => {
    for (const name of dispatched.filter((c) => c !== 'run')) {
      // Cases may share a body (`case 'logs': case 'spy': { … optionsOf(cmd) … }`).
      const start = mainBody.indexOf(`    case '${name}':`);
      const open = mainBody.indexOf('{', start);
      const body = mainBody.slice(open, mainBody.indexOf('\n    case ', open));
      expect(body, name).toMatch(new RegExp(`optionsOf\\(('${name}'|cmd)\\)`));
    }
  });

  it("lists exactly the options weft run's own parser takes", () => {
    const runParser = source.slice(
      source.indexOf('function parseRunArgs('),
      source.indexOf('\n}\n', source.indexOf('function parseRunArgs(')),
    );
    const parsed = [...runParser.matchAll(/case '--([a-z-]+)':/g)].map((m) => m[1]!).toSorted();
    const run = COMMANDS.find((c) => c.name === 'run')!;
    expect(parsed).toEqual([...Object.keys(run.options), 'log-level'].toSorted());
  });

  it('gives every command a group, a one-line summary, usage and an example', () => {
    for (const c of COMMANDS) {
      expect(Object.values(CommandGroup), c.name).toContain(c.group);
      expect(c.summary, c.name).not.toMatch(/\n|\.$/);
      expect(
        c.usage.every((u) => u.startsWith(c.name)),
        c.name,
      ).toBe(true);
      expect(c.examples.length, c.name).toBeGreaterThan(0);
      for (const e of c.examples) {
        const argv = e.split('  # ')[0]!.trim().split(/\s+/);
        expect(argv[0], e).toBe(c.name);
        // The examples use options the command takes (quoted values aside).
        if (!e.includes("'"))
          expect(() => parseCommandArgs(c.name, argv.slice(1)), e).not.toThrow();
      }
    }
  });
});

describe('help', () => {
  it('weft --help: every command once, by group, within 100 columns', () => {
    const help = mainHelp();
    for (const c of COMMANDS) {
      expect(help.match(new RegExp(`^ {2}${c.name} +\\S`, 'gm')), c.name).toHaveLength(1);
    }
    const groups = Object.values(CommandGroup).filter((g) => COMMANDS.some((c) => c.group === g));
    const at = groups.map((g) => help.indexOf(`\n${g}\n`));
    expect(at.every((i) => i > 0)).toBe(true);
    expect(at).toEqual(at.toSorted((a, b) => a - b));
    expect(help).toContain('Examples\n');
    for (const line of help.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
  });

  it('weft CMD --help: usage, every option, examples', () => {
    for (const c of COMMANDS) {
      const h = commandHelp(c.name)!;
      expect(h.startsWith(`weft ${c.name}: ${c.summary}\n`), c.name).toBe(true);
      for (const o of Object.keys(c.options)) expect(h, `${c.name} --${o}`).toContain(`--${o}`);
      expect(h).toContain('Examples\n');
      for (const line of h.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
    }
    expect(commandHelp('nope')).toBeUndefined();
  });

  it('is asked for by -h or --help among the options, not among a guest or a body', () => {
    expect(wantsHelp('host', ['--nats', 'nats://x:4222', '--help'])).toBe(true);
    expect(wantsHelp('get', ['-h'])).toBe(true);
    expect(wantsHelp('call', ['echo', '--', '--help'])).toBe(false);
    expect(wantsHelp('run', ['--help'])).toBe(true);
    expect(wantsHelp('run', ['--env', 'A=1', 'app.wasm', '--help'])).toBe(false);
    expect(wantsHelp('run', ['--env', '--help', 'app.wasm'])).toBe(false);
  });
});

describe('mistakes', () => {
  it('suggest the closest command or option', () => {
    expect(closest('ge', names)).toBe('get');
    expect(closest('deplyo', names)).toBe('deploy');
    expect(closest('statsu', names)).toBe('status');
    expect(closest('frobnicate', names)).toBeUndefined();
    expect(unknownCommand('gatway')).toContain("did you mean 'gateway'?");
    expect(unknownCommand('frob')).toContain('`weft --help` lists the commands');
  });

  it('name the command, the option and where the options are', () => {
    let err: { code: string; message: string } | undefined;
    try {
      parseCommandArgs('host', ['--lable', 'zone=east']);
    } catch (e) {
      err = e as { code: string; message: string };
    }
    expect(err?.code).toBe('ERR_PARSE_ARGS_UNKNOWN_OPTION');
    expect(usageHint(err!.message, err!.code, 'host')).toBe(
      "weft host: unknown option '--lable'; did you mean --label?\n  `weft host --help` lists its options",
    );
    expect(
      usageHint(
        "Option '--nats <value>' argument missing",
        'ERR_PARSE_ARGS_INVALID_OPTION_VALUE',
        'get',
      ),
    ).toBe('weft get: --nats needs a value\n  `weft get --help` lists its options');
    expect(Object.keys(GLOBAL_OPTIONS)).toContain('nats');
  });
});
