// Which jobs and deployments hold a resource: a dataset or model used by a queued or running job, or a model a live
// deployment serves, may not be deleted (409).
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

/**
 * Live deployments (CREATING or READY) that serve model `name`: as the model one was created for, as a loaded LoRA,
 * or as the base of either (a LoRA cannot run without its base).
 */
export function deploymentsUsing(store: Store, name: string): string[] {
  const baseOf = (m: string) =>
    (store.get('model', m)?.body.peftDetails as { baseModel?: string } | undefined)?.baseModel;
  const serves = (m: unknown) => typeof m === 'string' && (m === name || baseOf(m) === name);
  const users = new Set<string>();
  const live = new Set(store.inStates('deployment', ['CREATING', 'READY']).map((d) => d.name));
  for (const d of store.inStates('deployment', ['CREATING', 'READY'])) if (serves(d.body.baseModel)) users.add(d.name);
  for (const dm of store.inStates('deployedModel', ['DEPLOYED']))
    if (serves(dm.body.model) && live.has(dm.body.deployment as string)) users.add(dm.body.deployment as string);
  return [...users];
}
