// The SQLite store behind the service: unique names, newest-first pages, state filters, the FIFO claim, and WAL.
import { tmpDir } from '../helpers/index.ts';
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from '../../src/serve/store.ts';

const row = (name: string, state = 'JOB_STATE_PENDING', account = 'local') => ({
  kind: 'job' as const,
  name,
  account,
  state,
  body: { name, state },
  meta: { n: name },
});

describe('SqliteStore', () => {
  it('inserts once per name, pages newest first, filters on state, claims oldest first', () => {
    const dir = tmpDir('store');
    const s = openStore(dir);
    for (const n of ['a', 'b', 'c', 'd', 'e']) expect(s.insert(row(n))).toBe(true);
    expect(s.insert(row('a', 'JOB_STATE_RUNNING'))).toBe(false);
    s.insert(row('other', 'JOB_STATE_PENDING', 'someone'));
    // No account: every account's rows (GET accounts/-/models).
    expect(s.list('job', { account: undefined, pageSize: 10 }).items.map((r) => r.name)).toEqual([
      'other',
      'e',
      'd',
      'c',
      'b',
      'a',
    ]);
    const p1 = s.list('job', { account: 'local', pageSize: 2 });
    expect(p1.items.map((r) => r.name)).toEqual(['e', 'd']);
    expect(p1.total).toBe(5);
    const p2 = s.list('job', { account: 'local', pageSize: 2, after: p1.next });
    const p3 = s.list('job', { account: 'local', pageSize: 2, after: p2.next });
    expect([...p2.items, ...p3.items].map((r) => r.name)).toEqual(['c', 'b', 'a']);
    expect(p3.next).toBeUndefined();
    expect(s.claim('job', 'JOB_STATE_PENDING', 'JOB_STATE_VALIDATING')!.name).toBe('a');
    expect(s.claim('job', 'JOB_STATE_PENDING', 'JOB_STATE_VALIDATING')!.name).toBe('b');
    expect(s.get('job', 'a')!.state).toBe('JOB_STATE_VALIDATING');
    expect(
      s.list('job', { account: 'local', pageSize: 10, states: ['JOB_STATE_VALIDATING'] }).items.map((r) => r.name),
    ).toEqual(['b', 'a']);
    expect(
      s.list('job', { account: 'local', pageSize: 10, states: ['JOB_STATE_VALIDATING'], exclude: true }).total,
    ).toBe(3);
    expect(s.inStates('job', ['JOB_STATE_PENDING']).map((r) => r.name)).toEqual(['c', 'd', 'e', 'other']);
    expect(s.update('job', 'c', { meta: { x: 1 } })!.meta).toEqual({ x: 1 });
    expect(s.delete('job', 'c')).toBe(true);
    expect(s.update('job', 'c', { state: 'X' })).toBeUndefined();
    expect(() =>
      s.transaction(() => {
        s.delete('job', 'd');
        throw new Error('rolled back');
      }),
    ).toThrow('rolled back');
    expect(s.get('job', 'd')).toBeDefined();
    s.close();
    const db = new Database(path.join(dir, 'lorasft.db'), { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });
});
