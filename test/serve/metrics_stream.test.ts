// `:streamMetrics` in process: the rows it sends, and that it ends once the job reaches any terminal state.
import * as fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { metricsStreamRoute } from '../../src/serve/dashboard_routes.ts';

/** A response that records what is written to it; `close()` is the client going away. */
function recorder() {
  const out: string[] = [];
  const onClose: Array<() => void> = [];
  const res = {
    writableEnded: false,
    writeHead: () => res,
    write: (s: string) => out.push(s),
    end: () => void (res.writableEnded = true),
    on: (ev: string, f: () => void) => ev === 'close' && onClose.push(f),
  };
  return { res, out, close: () => onClose.forEach((f) => f()) };
}

function stream(state: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-'));
  const metricsFile = path.join(dir, 'metrics.jsonl');
  fs.writeFileSync(metricsFile, '{"step":1,"train_loss":2.5}\n{"step":2,"eval_loss":2.4}\n');
  const job = { state, metricsFile };
  const r = recorder();
  const route = metricsStreamRoute(() => ({ job: () => job }));
  const c = { req: {} as IncomingMessage, res: r.res as unknown as ServerResponse, account: 'local', id: 'j' };
  route.handle(c);
  return { ...r, job };
}

describe(':streamMetrics', () => {
  for (const state of ['JOB_STATE_COMPLETED', 'JOB_STATE_EARLY_STOPPED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'])
    it(`sends the rows and the state, then ends, for ${state}`, () => {
      const s = stream(state);
      expect(s.res.writableEnded).toBe(true);
      expect(s.out).toEqual([
        'event: metrics\ndata: {"step":1,"train_loss":2.5}\n\n',
        'event: metrics\ndata: {"step":2,"eval_loss":2.4}\n\n',
        `event: state\ndata: {"state":"${state}"}\n\n`,
      ]);
    });

  it('stays open while the job runs, and ends when it finishes', async () => {
    const s = stream('JOB_STATE_RUNNING');
    try {
      expect(s.res.writableEnded).toBe(false);
      s.job.state = 'JOB_STATE_EARLY_STOPPED';
      await expect.poll(() => s.res.writableEnded, { timeout: 5000 }).toBe(true);
      expect(s.out.at(-1)).toBe('event: state\ndata: {"state":"JOB_STATE_EARLY_STOPPED"}\n\n');
    } finally {
      s.close();
    }
  });
});
