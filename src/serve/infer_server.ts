// An HTTP server with only the deployment and inference routes, over any ModelRegistry: what the standalone
// `scripts/serve-inference.ts` runs, and what tests and benchmarks start. The full service (lorasft serve)
// mounts the same route modules next to datasets, jobs and models.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { deploymentRoutes, type DeploymentRoute } from './deployment_routes.ts';
import type { DeploymentService } from './deployment_service.ts';
import { ApiError, notFound } from './errors.ts';
import { decodeSegment, keepIdleConnections, sendError, sendJson } from './http.ts';
import { handleInference, INFERENCE_PREFIX } from './inference_routes.ts';

/** `/v1/accounts/{account}/{collection}[/{id}]` to its route, or a 404 / 405 saying what exists. */
function route(
  routes: DeploymentRoute[],
  method: string,
  pathname: string,
): { r: DeploymentRoute; account: string; id: string } {
  const segs = pathname.split('/');
  if (segs[1] !== 'v1' || segs[2] !== 'accounts' || segs.length < 5 || segs.length > 6)
    throw notFound(`no such route: ${pathname.slice(0, 200)}`);
  const [account, collection, id] = [
    decodeSegment(segs[3]),
    segs[4],
    segs[5] === undefined ? undefined : decodeSegment(segs[5]),
  ];
  const shape = routes.filter((r) => r.collection === collection && r.item === (id !== undefined));
  if (!shape.length)
    throw notFound(`no such collection '${collection.slice(0, 80)}' (known: deployments, deployedModels)`);
  const r = shape.find((x) => x.method === method);
  if (!r) throw new ApiError(405, `${method} is not allowed here (allowed: ${shape.map((x) => x.method).join(', ')})`);
  return { r, account, id: id ?? '' };
}

export function createInferenceServer(svc: DeploymentService): http.Server {
  const routes = deploymentRoutes(() => svc);
  return keepIdleConnections(
    http.createServer(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === INFERENCE_PREFIX || url.pathname.startsWith(`${INFERENCE_PREFIX}/`))
        return handleInference(svc, req, res, url.pathname);
      try {
        const { r, account, id } = route(routes, req.method ?? 'GET', url.pathname);
        const out = await r.handle({ req, res, account, id, query: url.searchParams });
        if (!res.headersSent) sendJson(res, 200, out);
      } catch (e) {
        if (e instanceof ApiError) return sendError(res, e);
        if (e instanceof URIError)
          return sendError(res, new ApiError(400, `malformed path ${url.pathname.slice(0, 200)}`));
        sendError(res, new ApiError(500, `internal error: ${(e as Error).message}`));
      }
    }),
  );
}

/** Listens on host:port (0: any free port); resolves with the base URL. */
export function listen(server: http.Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      resolve(`http://${host.includes(':') ? `[${a.address}]` : a.address}:${a.port}`);
    });
  });
}
