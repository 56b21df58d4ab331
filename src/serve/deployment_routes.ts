// Deployments and DeployedModels (the managed API's Load / Unload LoRA) under /v1/accounts/{account}/..., in the
// service router's Route shape: `deployments` (POST ?deploymentId=, GET, list, DELETE) and `deployedModels`
// (POST {model, deployment} loads a LoRA on a deployment, GET, list, DELETE unloads it).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DeploymentService } from './deployment_service.ts';
import { badRequest } from './errors.ts';
import { pageArgs, pageToken, queryParams, readJsonBody, rejectUnknown } from './http.ts';
import type { Json } from './store.ts';

export interface DeploymentCtx {
  req: IncomingMessage;
  res: ServerResponse;
  account: string;
  id: string;
  query: URLSearchParams;
}

export interface DeploymentRoute<C extends DeploymentCtx = DeploymentCtx> {
  method: 'GET' | 'POST' | 'DELETE';
  collection: string;
  item: boolean;
  verb?: string;
  handle(ctx: C): unknown | Promise<unknown>;
}

/** Fields of a Deployment create body this server reads (hardware fields of the managed API have no meaning here). */
const DEPLOYMENT_FIELDS = [
  'baseModel',
  'displayName',
  'description',
  'enableAddons',
  'minReplicaCount',
  'maxReplicaCount',
];

/** A list answer in the service's shape, paged as the other lists are (pageSize, pageToken; oldest first). */
function listBody(field: string, items: unknown[], query: URLSearchParams) {
  const { pageSize, after = 0 } = pageArgs(queryParams(query, ['pageSize', 'pageToken', 'readMask']));
  const next = after + pageSize;
  return {
    [field]: items.slice(after, next),
    nextPageToken: next < items.length ? pageToken(next) : '',
    totalSize: items.length,
  };
}

/** The managed API's fields that mean nothing here are still checked for their type (a typo is not ignored). */
function checkTypes(body: Json, where: string, strings: string[], counts: string[], flags: string[]): void {
  const bad = (k: string, what: string) => badRequest(`${where}.${k} must be ${what}, got ${JSON.stringify(body[k])}`);
  for (const k of strings) if (body[k] !== undefined && typeof body[k] !== 'string') throw bad(k, 'a string');
  for (const k of flags) if (body[k] !== undefined && typeof body[k] !== 'boolean') throw bad(k, 'true or false');
  for (const k of counts) {
    const v = body[k];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 31))
      throw bad(k, 'a non-negative int32');
  }
  if ((body.minReplicaCount as number) > (body.maxReplicaCount as number))
    throw badRequest(
      `${where}: minReplicaCount ${body.minReplicaCount} is over maxReplicaCount ${body.maxReplicaCount}`,
    );
}

/** The routes; `of(ctx)` is the DeploymentService (the service router passes `(c) => c.svc.deployments`). */
export function deploymentRoutes<C extends DeploymentCtx>(
  of: (ctx: C) => DeploymentService,
): Array<DeploymentRoute<C>> {
  return [
    {
      method: 'POST',
      collection: 'deployments',
      item: false,
      async handle(c) {
        const q = queryParams(c.query, ['deploymentId']);
        const body = await readJsonBody(c.req);
        rejectUnknown(body, DEPLOYMENT_FIELDS, 'Deployment');
        checkTypes(body, 'Deployment', ['description'], ['minReplicaCount', 'maxReplicaCount'], []);
        return of(c).create(c.account, q.deploymentId, body);
      },
    },
    { method: 'GET', collection: 'deployments', item: true, handle: (c) => of(c).get(c.account, c.id) },
    {
      method: 'GET',
      collection: 'deployments',
      item: false,
      handle: (c) => listBody('deployments', of(c).list(c.account), c.query),
    },
    {
      method: 'DELETE',
      collection: 'deployments',
      item: true,
      async handle(c) {
        await of(c).delete(c.account, c.id);
        return {};
      },
    },
    {
      method: 'POST',
      collection: 'deployedModels',
      item: false,
      async handle(c) {
        queryParams(c.query, ['replaceMergedAddon']);
        const body = await readJsonBody(c.req);
        rejectUnknown(
          body,
          ['model', 'deployment', 'displayName', 'description', 'default', 'public'],
          'DeployedModel',
        );
        checkTypes(body, 'DeployedModel', ['displayName', 'description'], [], ['default', 'public']);
        return of(c).loadLora(c.account, body);
      },
    },
    { method: 'GET', collection: 'deployedModels', item: true, handle: (c) => of(c).getDeployedModel(c.account, c.id) },
    {
      method: 'GET',
      collection: 'deployedModels',
      item: false,
      handle: (c) => listBody('deployedModels', of(c).listDeployedModels(c.account), c.query),
    },
    {
      method: 'DELETE',
      collection: 'deployedModels',
      item: true,
      async handle(c) {
        await of(c).unloadLora(c.account, c.id);
        return {};
      },
    },
  ];
}
