// How the client verbs print resources: firectl-like `Key: value` lines for one, a table for a list, or JSON.
import type { Json } from './api.ts';

function show(v: unknown): string {
  if (v === undefined || v === null || v === '') return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const title = (k: string) => k.replace(/^./, (c) => c.toUpperCase()).replace(/([a-z])([A-Z])/g, '$1 $2');

/** One resource as `Key: value` lines, nested objects one level deep as `Key: {json}`; empty values skipped. */
export function formatResource(r: Json): string {
  const rows = Object.entries(r).filter(([, v]) => show(v) !== '');
  const w = Math.max(...rows.map(([k]) => title(k).length)) + 1;
  return rows.map(([k, v]) => `${(title(k) + ':').padEnd(w + 1)}${show(v)}`).join('\n');
}

/** A list as a table of `columns` (resource fields; `name` shown as its id). */
export function formatTable(items: Json[], columns: string[]): string {
  const cells = items.map((r) =>
    columns.map((c) => (c === 'name' ? show(r.name).split('/').pop()! : show(r[c]).replace(/^JOB_STATE_/, ''))),
  );
  const head = columns.map((c) => (c === 'name' ? 'ID' : title(c).toUpperCase()));
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i].length)));
  return [head, ...cells]
    .map((row) =>
      row
        .map((c, i) => c.padEnd(w[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
