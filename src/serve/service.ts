// What every route handler gets: the store, the data dir layout, the job queue and the server's options.
import * as path from 'node:path';
import type { Store } from './store.ts';
import type { JobQueue } from './queue.ts';
import type { DeploymentService } from './deployment_service.ts';

export interface ServeOptions {
  host: string;
  port: number;
  dataDir: string;
  workers: number;
  apiKey: string;
  /** Largest dataset upload accepted, in bytes. */
  maxUploadBytes: number;
  /** Compute threads given to each job's trainer unless its request sets `threads`. */
  threadsPerJob: number;
}

export interface Service {
  store: Store;
  opts: ServeOptions;
  queue: JobQueue;
  /** `http://HOST:PORT` as clients reach this server (for download URLs). */
  baseUrl: string;
  /** Key of the signed download URLs (kept in the data dir, so URLs outlive a restart). */
  secret: Buffer;
  /** Datasets with an upload in progress (a second concurrent upload is a 409). */
  uploading: Set<string>;
  /** Deployments held by this process (weights in memory) and their LoRA models. */
  deployments: DeploymentService;
}

/** On-disk layout under the data dir; every segment is a checked resource id, so no path leaves the dir. */
export const layout = {
  db: (dataDir: string) => path.join(dataDir, 'lorasft.db'),
  dataset: (dataDir: string, account: string, id: string) => path.join(dataDir, 'datasets', account, id),
  datasetFile: (dataDir: string, account: string, id: string) =>
    path.join(dataDir, 'datasets', account, id, 'data.jsonl'),
  job: (dataDir: string, account: string, id: string) => path.join(dataDir, 'jobs', account, id),
  model: (dataDir: string, account: string, id: string) => path.join(dataDir, 'models', account, id),
  secret: (dataDir: string) => path.join(dataDir, 'download-secret'),
};
