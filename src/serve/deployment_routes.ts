// Deployments and DeployedModels (the managed API's Load / Unload LoRA) under /v1/accounts/{account}/..., in the
// service router's Route shape: `deployments` (POST ?deploymentId=, GET, list, DELETE) and `deployedModels`
// (POST {model, deployment} loads a LoRA on a deployment, GET, list, DELETE unloads it).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DeploymentService } from './deployment_service.ts';
import { queryParams, readJsonBody, rejectUnknown } from './http.ts';

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

/** A list answer in the service's shape (a process holds few deployments: one page). */
const listBody = (field: string, items: unknown[]) => ({ [field]: items, nextPageToken: '', totalSize: items.length });

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
        return of(c).create(c.account, q.deploymentId, body);
      },
    },
    { method: 'GET', collection: 'deployments', item: true, handle: (c) => of(c).get(c.account, c.id) },
    {
      method: 'GET',
      collection: 'deployments',
      item: false,
      handle: (c) => listBody('deployments', of(c).list(c.account)),
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
        return of(c).loadLora(c.account, body);
      },
    },
    { method: 'GET', collection: 'deployedModels', item: true, handle: (c) => of(c).getDeployedModel(c.account, c.id) },
    {
      method: 'GET',
      collection: 'deployedModels',
      item: false,
      handle: (c) => listBody('deployedModels', of(c).listDeployedModels(c.account)),
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
