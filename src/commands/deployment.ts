// `lorasft deployment create|get|list|delete|load-lora|unload-lora` against a lorasft serve, as firectl's:
// create a deployment for a model (a LoRA model: its base plus the adapter; a base model: add adapters with
// load-lora), and load / unload LoRA models on a deployment. Queries go to ${LORASFT_API_BASE}/inference/v1.
import { refPath } from '../client/api.ts';
import { needArgs, PAGE_FLAGS, pageQuery, parseVerb, printOne, printPage, runNoun } from '../client/verbs.ts';
import { UserError } from '../errors.ts';

const HELP = `usage: lorasft deployment create MODEL [--deployment-id ID] [--display-name X] [--wait]
       lorasft deployment get ID
       lorasft deployment list
       lorasft deployment delete ID
       lorasft deployment load-lora MODEL --deployment ID [--wait]
       lorasft deployment unload-lora MODEL --deployment ID

MODEL: a model name (accounts/local/models/my-ft) or an id in your account; ID: a deployment id or name.
create loads the base weights once in the server; a LoRA MODEL is served on it at once, a base MODEL takes
LoRA models with load-lora. --wait returns when the deployment is READY. Then query it with any OpenAI client at
LORASFT_API_BASE/inference/v1 with "model": the model's full name, accounts/ACCOUNT/models/ID (an id alone is not
found there), or NAME#DEPLOYMENT to pick the deployment.
Common flags: -a/--account ACCOUNT (default local), --json (or -o json).`;

const modelName = (account: string, m: string) => (m.includes('/') ? m : `accounts/${account}/models/${m}`);
const depName = (account: string, d: string) => (d.includes('/') ? d : `accounts/${account}/deployments/${d}`);

async function create(argv: string[]): Promise<number> {
  const p = parseVerb('deployment create', argv, {
    'deployment-id': { type: 'string' },
    'display-name': { type: 'string' },
    wait: { type: 'boolean' },
  });
  const [model] = needArgs('deployment create', p.args, ['MODEL']);
  const body = {
    baseModel: modelName(p.client.account, model),
    ...(p.values['display-name'] ? { displayName: p.values['display-name'] } : {}),
  };
  let d = await p.client.request('POST', 'deployments', body, {
    deploymentId: p.values['deployment-id'] as string | undefined,
  });
  if (p.values.wait) d = await waitReady(p, String(d.name));
  printOne(p, d);
  return 0;
}

/** Polls the deployment until it leaves CREATING (loading runs in the server), at most 30 minutes as firectl. */
async function waitReady(p: ReturnType<typeof parseVerb>, name: string) {
  for (const deadline = Date.now() + 30 * 60_000; Date.now() < deadline;) {
    const d = await p.client.request('GET', refPath(p.client, 'deployments', name));
    if (d.state === 'FAILED')
      throw new UserError(`deployment ${name} failed: ${(d.status as { message?: string })?.message ?? ''}`);
    if (d.state !== 'CREATING') return d;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new UserError(`deployment ${name} is still CREATING after 30 minutes`);
}

async function get(argv: string[]): Promise<number> {
  const p = parseVerb('deployment get', argv, {});
  const [id] = needArgs('deployment get', p.args, ['ID']);
  printOne(p, await p.client.request('GET', refPath(p.client, 'deployments', id)));
  return 0;
}

async function list(argv: string[]): Promise<number> {
  const p = parseVerb('deployment list', argv, PAGE_FLAGS);
  needArgs('deployment list', p.args, []);
  printPage(p, await p.client.request('GET', 'deployments', undefined, pageQuery(p)), 'deployments', [
    'name',
    'baseModel',
    'state',
    'createTime',
  ]);
  return 0;
}

async function remove(argv: string[]): Promise<number> {
  const p = parseVerb('deployment delete', argv, {});
  const [id] = needArgs('deployment delete', p.args, ['ID']);
  await p.client.request('DELETE', refPath(p.client, 'deployments', id));
  console.log(`deleted deployment ${id}`);
  return 0;
}

async function loadLora(argv: string[]): Promise<number> {
  const p = parseVerb('deployment load-lora', argv, { deployment: { type: 'string' }, wait: { type: 'boolean' } });
  const [model] = needArgs('deployment load-lora', p.args, ['MODEL']);
  if (!p.values.deployment) throw new UserError('lorasft deployment load-lora: --deployment ID is required');
  const deployment = depName(p.client.account, String(p.values.deployment));
  if (p.values.wait) await waitReady(p, deployment);
  printOne(
    p,
    await p.client.request('POST', 'deployedModels', { model: modelName(p.client.account, model), deployment }),
  );
  return 0;
}

async function unloadLora(argv: string[]): Promise<number> {
  const p = parseVerb('deployment unload-lora', argv, { deployment: { type: 'string' } });
  const [model] = needArgs('deployment unload-lora', p.args, ['MODEL']);
  if (!p.values.deployment) throw new UserError('lorasft deployment unload-lora: --deployment ID is required');
  const [m, d] = [modelName(p.client.account, model), depName(p.client.account, String(p.values.deployment))];
  let hit: { name: string } | undefined;
  const loaded: string[] = []; // the models on d, named when m is not one of them
  for (let token: string | undefined = ''; !hit && token !== undefined;) {
    const page = await p.client.request('GET', 'deployedModels', undefined, { pageSize: '200', pageToken: token });
    const items = (page.deployedModels as Array<{ name: string; model: string; deployment: string }>) ?? [];
    hit = items.find((x) => x.model === m && x.deployment === d);
    loaded.push(...items.filter((x) => x.deployment === d).map((x) => x.model));
    token = (page.nextPageToken as string) || undefined;
  }
  if (!hit)
    throw new UserError(
      `model ${m} is not loaded on ${d} (${loaded.length ? `loaded there: ${loaded.join(', ')}` : 'it has no LoRA models loaded'})`,
    );
  await p.client.request('DELETE', refPath(p.client, 'deployedModels', hit.name));
  console.log(`unloaded ${m} from ${d}`);
  return 0;
}

export function run(argv: string[]): Promise<number> {
  return runNoun('deployment', HELP, argv, {
    create,
    get,
    list,
    delete: remove,
    'load-lora': loadLora,
    'unload-lora': unloadLora,
  });
}
