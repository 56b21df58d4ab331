// Which jobs hold a resource: a dataset or model used by a queued or running job may not be deleted (409).
import type { Store } from './store.ts';

/** Job states in which the job still reads its inputs. */
export const ACTIVE_JOB_STATES = [
  'JOB_STATE_PENDING',
  'JOB_STATE_VALIDATING',
  'JOB_STATE_RUNNING',
  'JOB_STATE_CANCELLING',
];

/** Names of the active jobs whose inputs (meta.uses: dataset, evaluation dataset, base model, warm start) include `name`. */
export function activeJobsUsing(store: Store, name: string): string[] {
  return store
    .inStates('job', ACTIVE_JOB_STATES)
    .filter((j) => ((j.meta.uses as string[] | undefined) ?? []).includes(name))
    .map((j) => j.name);
}

/** Active jobs whose output model is `name` (two jobs may not write one model). */
export function activeJobsWriting(store: Store, name: string): string[] {
  return store
    .inStates('job', ACTIVE_JOB_STATES)
    .filter((j) => j.meta.outputModel === name)
    .map((j) => j.name);
}
