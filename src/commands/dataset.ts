// `lorasft dataset create ID FILE | get ID | list | delete ID`: datasets on a lorasft serve (firectl's verbs).
import { refPath } from '../client/api.ts';
import { requireFile, requireJsonlName } from '../util/files.ts';
import { needArgs, PAGE_FLAGS, pageQuery, parseVerb, printOne, printPage, runNoun } from '../client/verbs.ts';

const HELP = `usage: lorasft dataset create ID FILE.jsonl [--display-name NAME]
       lorasft dataset get ID
       lorasft dataset list [--page-size N] [--page-token T]
       lorasft dataset delete ID

Talks to the lorasft serve at LORASFT_API_BASE (default http://127.0.0.1:8080) with LORASFT_API_KEY.
create uploads FILE and validates it with the rules of 'lorasft validate' (a file with problems is not kept).
Common flags: -a/--account ACCOUNT (default local), --json (or -o json).`;

async function create(argv: string[]): Promise<number> {
  const p = parseVerb('dataset create', argv, { 'display-name': { type: 'string' } });
  const [id, file] = needArgs('dataset create', p.args, ['ID', 'FILE']);
  requireFile(file, 'the dataset JSONL to upload'); // before the dataset record is created
  requireJsonlName(file); // the server refuses other names too, but only after the record is made
  const dataset: Record<string, unknown> = { userUploaded: {} };
  if (p.values['display-name']) dataset.displayName = p.values['display-name'];
  await p.client.request('POST', 'datasets', { datasetId: id, dataset });
  try {
    printOne(p, await p.client.upload(id, file));
  } catch (e) {
    await p.client.request('DELETE', `datasets/${id}`).catch(() => undefined); // nothing stored for a rejected file
    throw e;
  }
  return 0;
}

async function get(argv: string[]): Promise<number> {
  const p = parseVerb('dataset get', argv, {});
  const [id] = needArgs('dataset get', p.args, ['ID']);
  printOne(p, await p.client.request('GET', refPath(p.client, 'datasets', id)));
  return 0;
}

async function list(argv: string[]): Promise<number> {
  const p = parseVerb('dataset list', argv, PAGE_FLAGS);
  needArgs('dataset list', p.args, []);
  printPage(p, await p.client.request('GET', 'datasets', undefined, pageQuery(p)), 'datasets', [
    'name',
    'state',
    'exampleCount',
    'createTime',
  ]);
  return 0;
}

async function remove(argv: string[]): Promise<number> {
  const p = parseVerb('dataset delete', argv, {});
  const [id] = needArgs('dataset delete', p.args, ['ID']);
  await p.client.request('DELETE', refPath(p.client, 'datasets', id));
  console.log(`deleted dataset ${id}`);
  return 0;
}

export function run(argv: string[]): Promise<number> {
  return runNoun('dataset', HELP, argv, { create, get, list, delete: remove });
}
