/**
 * The CLI's progress line on stderr: a step, and when it has a size, a bar with the share done
 * (`pushing web module [#########-----------]  45%  12.3 of 27.0 MiB`). Drawn in place on a
 * terminal; elsewhere silent, unless `--progress` or WEFT_PROGRESS=1 asks for it, and then one
 * line per step and per tenth done, so that logs stay short.
 */
const BAR_WIDTH = 24;
const MIB = 1024 * 1024;

export type ProgressUnit = 'bytes' | 'instances';

/** One progress line, without the terminal's control codes. */
export function progressLine(
  step: string,
  done?: number,
  total?: number,
  unit: ProgressUnit = 'bytes',
): string {
  if (done === undefined || total === undefined || total <= 0) return step;
  const share = Math.min(1, Math.max(0, done / total));
  const full = Math.round(share * BAR_WIDTH);
  const bar = `[${'#'.repeat(full)}${'-'.repeat(BAR_WIDTH - full)}]`;
  const pct = `${Math.floor(share * 100)}%`.padStart(4);
  const amount =
    unit === 'bytes'
      ? total >= MIB
        ? `${(done / MIB).toFixed(1)} of ${(total / MIB).toFixed(1)} MiB`
        : `${Math.ceil(done / 1024)} of ${Math.ceil(total / 1024)} KiB`
      : `${done} of ${total}`;
  return `${step} ${bar} ${pct}  ${amount}`;
}

export class Progress {
  readonly #tty: boolean;
  readonly #forced: boolean;
  readonly #write: (s: string) => void;
  #drawn = false;
  #lastStep = '';
  #lastTenth = -1;

  constructor(opts: { tty?: boolean; forced?: boolean; write?: (s: string) => void } = {}) {
    this.#tty = opts.tty ?? process.stderr.isTTY === true;
    this.#forced = opts.forced ?? process.env['WEFT_PROGRESS'] === '1';
    this.#write = opts.write ?? ((s) => void process.stderr.write(s));
  }

  update(step: string, done?: number, total?: number, unit?: ProgressUnit): void {
    const line = progressLine(step, done, total, unit);
    if (this.#tty) {
      this.#write(`\r\x1b[K${line}`);
      this.#drawn = true;
      return;
    }
    if (!this.#forced) return;
    // Without a terminal: a line when the step changes and at each tenth of the way.
    const tenth = done !== undefined && total ? Math.floor((done / total) * 10) : -1;
    if (step === this.#lastStep && tenth === this.#lastTenth) return;
    this.#lastStep = step;
    this.#lastTenth = tenth;
    this.#write(`${line}\n`);
  }

  /** Clear the line drawn in place, before the command prints its result. */
  end(): void {
    if (this.#drawn) this.#write('\r\x1b[K');
    this.#drawn = false;
    this.#lastStep = '';
    this.#lastTenth = -1;
  }
}
