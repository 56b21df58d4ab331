import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { lorasft } from './helpers/run.ts';

describe('lorasft cli', () => {
  it('prints usage with --help', async () => {
    const { stdout: out } = await lorasft(['--help']);
    expect(out).toContain('usage: lorasft');
    expect(out).toContain('train');
  });
  it('serve --help names everything the server serves and every client verb', async () => {
    const { stdout: out } = await lorasft(['serve', '--help']);
    expect(out.replace(/\s+/g, ' ')).toContain(
      '/models and /deployments as the managed API does, the OpenAI-compatible /inference/v1 of its deployments and a dashboard',
    );
    expect(out.replace(/\s+/g, ' ')).toContain('Client verbs: lorasft dataset | sftj | model | deployment');
  });
  it('prints its version with --version', async () => {
    const r = await lorasft(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      `lorasft ${JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`,
    );
  });
  it('rejects an unknown command with exit 1', async () => {
    const r = await lorasft(['frobnicate']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });
});

describe('lorasft cli without a command', () => {
  it('prints usage on stderr and exits 1', async () => {
    const r = await lorasft([]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('usage: lorasft');
  });
});
