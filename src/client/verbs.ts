// Shared plumbing of the client verbs (dataset, sftj, model): `lorasft NOUN ACTION [args] [flags]` with the
// common flags -a/--account, --json (or -o json), --page-size, --page-token.
import { UserError } from '../errors.ts';
import { numberFlag, parseFlags } from '../util/args.ts';
import { ApiClient, type Json } from './api.ts';
import { formatResource, formatTable } from './print.ts';

type Options = Parameters<typeof parseFlags>[2];

const COMMON_FLAGS = {
  account: { type: 'string', short: 'a' },
  json: { type: 'boolean' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const PAGE_FLAGS = { 'page-size': { type: 'string' }, 'page-token': { type: 'string' } } as const;

export interface Parsed {
  client: ApiClient;
  values: Record<string, string | boolean | undefined>;
  args: string[];
  json: boolean;
}

/** Parses `argv` (after NOUN ACTION) with the common flags plus `extra`; -o must be json or text. */
export function parseVerb(command: string, argv: string[], extra: Options): Parsed {
  const { values, positionals } = parseFlags(command, argv, { ...COMMON_FLAGS, ...extra });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.output !== undefined && v.output !== 'json' && v.output !== 'text')
    throw new UserError(`lorasft ${command}: -o takes json or text, got '${v.output}'`);
  return {
    client: new ApiClient({ account: v.account as string | undefined }),
    values: v,
    args: positionals,
    json: !!v.json || v.output === 'json',
  };
}

export function needArgs(command: string, args: string[], names: string[]): string[] {
  if (args.length !== names.length)
    throw new UserError(
      `lorasft ${command}: expected ${names.join(' ') || 'no arguments'}, got ${args.length ? args.map((a) => `'${a}'`).join(' ') : 'none'} (see lorasft ${command.split(' ')[0]} --help)`,
    );
  return args;
}

export function printOne(p: Parsed, r: Json): void {
  console.log(p.json ? JSON.stringify(r, null, 2) : formatResource(r));
}

export function printPage(p: Parsed, page: Json, field: string, columns: string[]): void {
  if (p.json) return console.log(JSON.stringify(page, null, 2));
  const items = (page[field] as Json[]) ?? [];
  console.log(items.length ? formatTable(items, columns) : `no ${field.replace(/([A-Z])/g, ' $1').toLowerCase()}`);
  if (page.nextPageToken) console.log(`\nNext page token: ${page.nextPageToken}  (--page-token ${page.nextPageToken})`);
}

export function pageQuery(p: Parsed): Record<string, string | undefined> {
  const size = numberFlag('page-size', p.values['page-size'] as string | undefined, { integer: true, min: 1 });
  return {
    pageSize: size === undefined ? undefined : String(size),
    pageToken: p.values['page-token'] as string | undefined,
  };
}

/** Runs ACTION from `actions`, or prints the help. */
export async function runNoun(
  noun: string,
  help: string,
  argv: string[],
  actions: Record<string, (argv: string[]) => Promise<number>>,
): Promise<number> {
  const [action, ...rest] = argv;
  if (!action || action === '--help' || action === '-h' || action === 'help') {
    console.log(help);
    return action ? 0 : 1;
  }
  const fn = actions[action];
  if (!fn)
    throw new UserError(`lorasft ${noun}: unknown action '${action}' (one of ${Object.keys(actions).join(', ')})`);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(help);
    return 0;
  }
  return fn(rest);
}
