// Where the service keeps its state: one small interface (so that a PostgreSQL store, many worker machines sharing
// one queue, can follow) and its embedded implementation, SQLite through better-sqlite3 in WAL mode.
// A resource row is (kind, name, account, state, body, meta): `body` is the REST object answered to clients,
// `meta` what only the server needs (local paths, the trainer's pid). `seq` orders rows: FIFO queue, newest-first lists.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';

type Kind = 'dataset' | 'job' | 'model' | 'deployment' | 'deployedModel';
export type Json = Record<string, unknown>;

export interface Resource {
  seq: number;
  kind: Kind;
  name: string;
  account: string;
  state: string;
  body: Json;
  meta: Json;
}

interface ListQuery {
  /** The account whose rows to list; undefined: every account's. */
  account: string | undefined;
  pageSize: number;
  /** Continue after this seq (a page token). */
  after?: number;
  /** Keep rows whose state is (or, with `exclude`, is not) one of these. */
  states?: string[];
  exclude?: boolean;
}

export interface Page {
  items: Resource[];
  /** seq to continue after, when more rows match. */
  next?: number;
  total: number;
}

export interface Store {
  /** Adds a row; false when `name` exists (of any kind). */
  insert(r: Omit<Resource, 'seq'>): boolean;
  get(kind: Kind, name: string): Resource | undefined;
  /** Replaces the given columns; the updated row, or undefined when it is gone. */
  update(kind: Kind, name: string, patch: Partial<Pick<Resource, 'state' | 'body' | 'meta'>>): Resource | undefined;
  delete(kind: Kind, name: string): boolean;
  /** One account's rows (or every account's), newest first. */
  list(kind: Kind, q: ListQuery): Page;
  /** Every row of `kind` in one of `states`, oldest first (all accounts). */
  inStates(kind: Kind, states: string[]): Resource[];
  /** Atomically moves the oldest row in state `from` to `to` and returns it (the FIFO queue's pop). */
  claim(kind: Kind, from: string, to: string): Resource | undefined;
  /** Runs `fn` as one transaction (check-then-act). */
  transaction<T>(fn: () => T): T;
  close(): void;
}

interface Row {
  seq: number;
  kind: Kind;
  name: string;
  account: string;
  state: string;
  body: string;
  meta: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS resources (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  name TEXT NOT NULL UNIQUE,
  account TEXT NOT NULL,
  state TEXT NOT NULL,
  body TEXT NOT NULL,
  meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_list ON resources (kind, account, seq);
CREATE INDEX IF NOT EXISTS resources_state ON resources (kind, state, seq);`;

const toResource = (r: Row): Resource => ({ ...r, body: JSON.parse(r.body), meta: JSON.parse(r.meta) });

class SqliteStore implements Store {
  private db: Database.Database;
  private stmts = new Map<string, Database.Statement>();

  /** Prepared once per SQL text (a GET is one cached statement). */
  private sql(text: string): Database.Statement {
    let st = this.stmts.get(text);
    if (!st) this.stmts.set(text, (st = this.db.prepare(text)));
    return st;
  }

  constructor(file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL'); // a committed change survives a crash of the machine, not only of the server
    this.db.pragma('busy_timeout = 5000'); // `lorasft model import` may write while the server runs
    this.db.exec(SCHEMA);
  }

  insert(r: Omit<Resource, 'seq'>): boolean {
    const res = this.sql(
      'INSERT OR IGNORE INTO resources (kind, name, account, state, body, meta) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(r.kind, r.name, r.account, r.state, JSON.stringify(r.body), JSON.stringify(r.meta));
    return res.changes === 1;
  }

  get(kind: Kind, name: string): Resource | undefined {
    const row = this.sql('SELECT * FROM resources WHERE kind = ? AND name = ?').get(kind, name) as Row | undefined;
    return row && toResource(row);
  }

  update(kind: Kind, name: string, patch: Partial<Pick<Resource, 'state' | 'body' | 'meta'>>): Resource | undefined {
    const sets: string[] = [];
    const args: unknown[] = [];
    const set = (column: string, value: unknown) => {
      sets.push(`${column} = ?`);
      args.push(value);
    };
    if (patch.state !== undefined) set('state', patch.state);
    if (patch.body !== undefined) set('body', JSON.stringify(patch.body));
    if (patch.meta !== undefined) set('meta', JSON.stringify(patch.meta));
    if (sets.length)
      this.sql(`UPDATE resources SET ${sets.join(', ')} WHERE kind = ? AND name = ?`).run(...args, kind, name);
    return this.get(kind, name);
  }

  delete(kind: Kind, name: string): boolean {
    return this.sql('DELETE FROM resources WHERE kind = ? AND name = ?').run(kind, name).changes === 1;
  }

  list(kind: Kind, q: ListQuery): Page {
    let where = q.account === undefined ? 'kind = ?' : 'kind = ? AND account = ?';
    const args: unknown[] = q.account === undefined ? [kind] : [kind, q.account];
    if (q.states?.length) {
      where += ` AND state ${q.exclude ? 'NOT IN' : 'IN'} (${q.states.map(() => '?').join(', ')})`;
      args.push(...q.states);
    }
    const total = (this.sql(`SELECT COUNT(*) AS n FROM resources WHERE ${where}`).get(...args) as { n: number }).n;
    const after = q.after === undefined ? '' : ' AND seq < ?';
    const rows = this.sql(`SELECT * FROM resources WHERE ${where}${after} ORDER BY seq DESC LIMIT ?`).all(
      ...args,
      ...(q.after === undefined ? [] : [q.after]),
      q.pageSize + 1,
    ) as Row[];
    const more = rows.length > q.pageSize;
    const items = rows.slice(0, q.pageSize).map(toResource);
    return { items, next: more ? items[items.length - 1].seq : undefined, total };
  }

  inStates(kind: Kind, states: string[]): Resource[] {
    if (!states.length) return [];
    const rows = this.sql(
      `SELECT * FROM resources WHERE kind = ? AND state IN (${states.map(() => '?').join(', ')}) ORDER BY seq`,
    ).all(kind, ...states) as Row[];
    return rows.map(toResource);
  }

  claim(kind: Kind, from: string, to: string): Resource | undefined {
    return this.transaction(() => {
      const row = this.sql('SELECT * FROM resources WHERE kind = ? AND state = ? ORDER BY seq LIMIT 1').get(
        kind,
        from,
      ) as Row | undefined;
      if (!row) return undefined;
      this.sql('UPDATE resources SET state = ? WHERE seq = ?').run(to, row.seq);
      return toResource({ ...row, state: to });
    });
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  close(): void {
    this.db.close();
  }
}

export function openStore(dataDir: string): Store {
  return new SqliteStore(path.join(dataDir, 'lorasft.db'));
}
