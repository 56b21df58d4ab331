import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs in strict mode, with its errors turned into one-line UserErrors naming the flag. */
export function parseFlags<O extends Options>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UserError(`lorasft ${command}: ${oneLine((e as Error).message)} (see lorasft ${command} --help)`);
  }
}

/** node's multi-sentence parseArgs messages as one short line (the house rule: one-line errors). */
function oneLine(msg: string): string {
  const ambiguous = /^Option '(-[-\w]+)' argument is ambiguous/.exec(msg);
  if (ambiguous)
    return `option '${ambiguous[1]}' needs a value (write a value that starts with '-' as ${ambiguous[1]}=-VALUE)`;
  return msg.replace(/\. To specify a positional argument starting with a '-'.*$/s, '').replace(/\s*\n\s*/g, ' ');
}

/**
 * The number a flag's value spells, checked: `{ integer: true, min: 1 }` -> an integer >= 1, `{ above: 0 }` ->
 * a number > 0. undefined when the flag was not given; else a one-line UserError `--flag: must be ..., got 'v'`
 * (the form train's flag errors take).
 */
export function numberFlag(
  flag: string,
  value: string | undefined,
  want: { integer?: boolean; min?: number; above?: number; max?: number },
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const ok =
    value.trim() !== '' &&
    Number.isFinite(n) &&
    (!want.integer || Number.isInteger(n)) &&
    (want.min === undefined || n >= want.min) &&
    (want.above === undefined || n > want.above) &&
    (want.max === undefined || n <= want.max);
  if (ok) return n;
  const low = want.min !== undefined ? ` >= ${want.min}` : want.above !== undefined ? ` > ${want.above}` : '';
  const bound = want.max === undefined ? low : `${low}${low ? ' and' : ''} <= ${want.max}`;
  throw new UserError(`--${flag}: must be ${want.integer ? 'an integer' : 'a number'}${bound}, got '${value}'`);
}
