// Resource ids and names: `accounts/{account}/{collection}/{id}`. Ids follow the managed API's resource-id rules
// (lowercase letters, digits and hyphens, 1 to 63 characters), which also keeps every id a safe single path
// segment on disk: no '/', no '.', no '..'.
import { badRequest } from './errors.ts';

const ID = /^[a-z0-9-]{1,63}$/;

export type Collection = 'datasets' | 'supervisedFineTuningJobs' | 'models' | 'deployments';

export function isValidId(id: string): boolean {
  return ID.test(id);
}

/** `id` if valid, else a 400 naming what it is (`dataset id`, `account id`, ...). */
export function requireId(id: unknown, what: string): string {
  if (typeof id !== 'string') throw badRequest(`${what} must be a string, got ${JSON.stringify(id)}`);
  if (!ID.test(id))
    throw badRequest(
      `invalid ${what} ${JSON.stringify(id.slice(0, 80))}: use 1 to 63 lowercase letters, digits or hyphens`,
    );
  return id;
}

export function resourceName(account: string, collection: Collection, id: string): string {
  return `accounts/${account}/${collection}/${id}`;
}

export interface ResourceRef {
  account: string;
  id: string;
  name: string;
}

/**
 * A reference to a resource in a request body: a full name `accounts/A/COLLECTION/ID`, or a bare `ID` in the
 * caller's account (as firectl accepts). Anything else is a 400 naming `field`.
 */
export function parseRef(value: unknown, collection: Collection, account: string, field: string): ResourceRef {
  if (typeof value !== 'string' || value === '')
    throw badRequest(
      `${field} must be a ${collection.replace(/s$/, '')} name (accounts/ACCOUNT/${collection}/ID or ID), got ${JSON.stringify(value)}`,
    );
  const parts = value.split('/');
  if (parts.length === 1)
    return { account, id: requireId(value, `${field} id`), name: resourceName(account, collection, value) };
  if (parts.length !== 4 || parts[0] !== 'accounts' || parts[2] !== collection) {
    throw badRequest(
      `${field}: ${JSON.stringify(value.slice(0, 120))} is not a ${collection.replace(/s$/, '')} name (expected accounts/ACCOUNT/${collection}/ID or ID)`,
    );
  }
  const acc = requireId(parts[1], `${field} account id`);
  const id = requireId(parts[3], `${field} id`);
  return { account: acc, id, name: resourceName(acc, collection, id) };
}
