// `lorasft model list|get|download|delete` against a lorasft serve, and `lorasft model import NAME DIR`, which
// registers a local Hugging Face model dir as a base model directly in a server's data dir.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { refPath, type Json } from '../client/api.ts';
import { needArgs, PAGE_FLAGS, pageQuery, parseVerb, printOne, printPage, runNoun } from '../client/verbs.ts';
import { UserError } from '../errors.ts';
import { parseFlags } from '../util/args.ts';
import { ApiError } from '../serve/errors.ts';
import { importBaseModel } from '../serve/models.ts';
import { openStore } from '../serve/store.ts';

const HELP = `usage: lorasft model list [--page-size N] [--page-token T]
       lorasft model get ID
       lorasft model download ID [--out DIR]      (a PEFT addon: adapter_config.json + adapter_model.safetensors)
       lorasft model delete ID
       lorasft model import NAME DIR [--data-dir DIR] [--display-name X]

NAME / ID: a model name (accounts/fireworks/models/qwen3-0p6b) or an id in your account. import registers the local
HF model dir DIR (config.json, *.safetensors, tokenizer files) as base model NAME in the data dir of a lorasft serve
(default ./lorasft-data; the server may be running). The rest talk to LORASFT_API_BASE with LORASFT_API_KEY.
Common flags: -a/--account ACCOUNT (default local), --json (or -o json).`;

async function list(argv: string[]): Promise<number> {
  const p = parseVerb('model list', argv, PAGE_FLAGS);
  needArgs('model list', p.args, []);
  printPage(p, await p.client.request('GET', 'models', undefined, pageQuery(p)), 'models', [
    'name',
    'kind',
    'state',
    'createTime',
  ]);
  return 0;
}

async function get(argv: string[]): Promise<number> {
  const p = parseVerb('model get', argv, {});
  const [id] = needArgs('model get', p.args, ['ID']);
  printOne(p, await p.client.request('GET', refPath(p.client, 'models', id)));
  return 0;
}

async function download(argv: string[]): Promise<number> {
  const p = parseVerb('model download', argv, { out: { type: 'string' } });
  const [id] = needArgs('model download', p.args, ['ID']);
  const ep = await p.client.request('GET', `${refPath(p.client, 'models', id)}:getDownloadEndpoint`);
  const out = (p.values.out as string | undefined) ?? id.split('/').pop()!;
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory())
    throw new UserError(`--out ${out}: is a file; the adapter's files go into a directory`);
  try {
    fs.mkdirSync(out, { recursive: true });
  } catch (e) {
    throw new UserError(`--out ${out}: cannot create the directory (${(e as NodeJS.ErrnoException).code})`);
  }
  for (const [file, url] of Object.entries(ep.filenameToSignedUrls as Json)) {
    const n = await p.client.download(url as string, path.join(out, path.basename(file)));
    console.log(`${path.join(out, path.basename(file))} (${n} bytes)`);
  }
  return 0;
}

async function remove(argv: string[]): Promise<number> {
  const p = parseVerb('model delete', argv, {});
  const [id] = needArgs('model delete', p.args, ['ID']);
  await p.client.request('DELETE', refPath(p.client, 'models', id));
  console.log(`deleted model ${id}`);
  return 0;
}

async function importModel(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('model import', argv, {
    'data-dir': { type: 'string' },
    'display-name': { type: 'string' },
  });
  const [name, dir] = needArgs('model import', positionals, ['NAME', 'DIR']);
  const store = openStore(path.resolve(values['data-dir'] ?? 'lorasft-data'));
  try {
    const r = importBaseModel(store, name, dir, values['display-name']);
    if (!r.ok) throw new UserError(`model ${r.name} already exists (lorasft model delete it first)`);
    console.log(`imported ${path.resolve(dir)} as ${r.name}`);
  } catch (e) {
    throw e instanceof ApiError ? new UserError(e.message) : e;
  } finally {
    store.close();
  }
  return 0;
}

export function run(argv: string[]): Promise<number> {
  return runNoun('model', HELP, argv, { list, get, download, delete: remove, import: importModel });
}
