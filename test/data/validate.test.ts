import { beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/index.ts';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { loadDataset, validateDataset } from '../../src/data/validate.ts';
import { firstInvalidUtf8, readLines } from '../../src/data/jsonl.ts';
import { UserError } from '../../src/errors.ts';

let dir: string;
beforeAll(() => {
  dir = tmpDir('validate');
});

const OK = (c = 'Paris.') =>
  JSON.stringify({
    messages: [
      { role: 'user', content: 'Q?' },
      { role: 'assistant', content: c },
    ],
  });
/** Write `lines` (strings or raw bytes) joined by `eol` and return the path. */
function file(name: string, lines: (string | Buffer)[], eol = '\n'): string {
  const p = path.join(dir, name);
  const parts: Buffer[] = [];
  lines.forEach((l, i) =>
    parts.push(
      typeof l === 'string' ? Buffer.from(l) : l,
      ...(i < lines.length - 1 || eol === '\n' ? [Buffer.from(eol)] : []),
    ),
  );
  fs.writeFileSync(p, Buffer.concat(parts));
  return p;
}
/** Problems of a file whose line 2 is `bad` between two good rows. */
function problemsOf(bad: string | Buffer): string[] {
  const p = file(`case-${Math.random().toString(36).slice(2)}.jsonl`, [OK(), bad, OK(), OK()]);
  return validateDataset(p).problems.map((s) => s.slice(p.length + 1));
}

describe('validateDataset', () => {
  it('accepts the seed guide examples and counts them', () => {
    const res = validateDataset('test/fixtures/data/seed.jsonl');
    expect(res.problems).toEqual([]);
    expect(res.stats).toMatchObject({
      examples: 4,
      messages: 13,
      assistantTurns: 6,
      trainedTurns: 5,
      contextOnlyTurns: 1,
      withReasoning: 1,
      withTools: 1,
      toolCalls: 1,
      sampleWeights: null,
    });
    const tc = res.examples[2].messages[1];
    expect(tc).toMatchObject({
      role: 'assistant',
      content: '',
      tool_calls: [{ type: 'function', function: { name: 'get_car_specs', arguments: '{"trimid": 121}' } }],
    });
    expect(res.examples[1].messages[1].weight).toBe(0);
    expect(res.examples.every((e) => e.file === 'test/fixtures/data/seed.jsonl')).toBe(true);
  });

  it('concatenates text parts and keeps root weights (negative too)', () => {
    const ex = loadDataset('test/fixtures/data/weighted.jsonl');
    expect(ex[2].messages[0].content).toBe('Say no.');
    expect(ex.map((e) => e.weight)).toEqual([0.5, 1, -0.25]);
    expect(validateDataset('test/fixtures/data/weighted.jsonl').stats.sampleWeights).toEqual({ min: -0.25, max: 1 });
  });

  it('accepts an assistant tool call with null content, and tool results', () => {
    const [ex] = loadDataset('test/fixtures/data/tools.jsonl', { checkCount: false });
    expect(ex.messages.map((m) => [m.role, m.content])).toEqual([
      ['user', 'Weather in Paris?'],
      ['assistant', ''],
      ['tool', '{"temp_c": 18}'],
      ['assistant', 'It is 18 °C in Paris.'],
    ]);
    expect(ex.messages[1].tool_calls).toEqual([
      { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } },
    ]);
    expect(ex.messages[2].tool_call_id).toBe('call_1');
  });

  it('accepts a BOM on line 1, CRLF line ends and a missing final newline', () => {
    const p = file(
      'crlf.jsonl',
      [Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(OK())]), OK(), OK('Rome.')],
      '\r\n',
    );
    const res = validateDataset(p);
    expect(res.problems).toEqual([]);
    expect(res.examples.map((e) => e.line)).toEqual([1, 2, 3]);
    expect(res.examples[2].messages[1].content).toBe('Rome.');
  });

  it('reports each problem as FILE:LINE: message', () => {
    const cases: [string | Buffer, string][] = [
      ['', 'blank line (every line must hold one JSON example; remove empty lines)'],
      ['   ', 'blank line (every line must hold one JSON example; remove empty lines)'],
      [
        Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]),
        'invalid UTF-8 at byte 3 of the line (0xff); save the file as UTF-8',
      ],
      ['\ufeff' + OK(), 'stray byte-order mark (U+FEFF) at the start of the line'],
      ['{"messages": [}', "invalid JSON: Unexpected token '}'"],
      ['{"messages": [], "weight": NaN}', '(NaN and Infinity are not valid JSON numbers)'],
      ['{"messages": [], "weight": -Infinity}', '(NaN and Infinity are not valid JSON numbers)'],
      ['[1, 2]', 'each line must be a JSON object with a "messages" array, got an array'],
      ['{"msgs": []}', 'missing "messages" array'],
      ['{"messages": {}}', '"messages" must be an array, got an object'],
      ['{"messages": []}', '"messages" is empty'],
      ['{"messages": ["hi"]}', 'messages[0] must be an object with "role" and "content", got a string'],
      [
        '{"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]}',
        "messages[0]: unknown role 'bot' (expected system, user, assistant or tool)",
      ],
      ['{"messages": [{"role": 3, "content": "x"}]}', 'messages[0].role must be a string, got a number'],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "s"}, {"role": "assistant", "content": "y"}]}',
        'messages[1]: a system message is only allowed as the first message',
      ],
      [
        '{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "y"}]}',
        'messages[0].content must be a string or a list of text parts, got a number',
      ],
      [
        '{"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]}',
        'messages[0].content is missing (only an assistant message with tool_calls may omit it)',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": null}]}',
        'messages[1].content is null (only an assistant message with tool_calls may omit it)',
      ],
      [
        '{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}, {"role": "assistant", "content": "y"}]}',
        `messages[0].content[0]: only text parts {"type": "text", "text": "..."} are supported, got type 'image_url'`,
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 0.5}]}',
        'messages[1].weight must be 0 or 1, got 0.5',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": "1"}]}',
        'messages[1].weight must be 0 or 1, got "1"',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 0}]}',
        'no trainable assistant message (there is none, or every one has weight 0)',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}]}',
        'no trainable assistant message (there is none, or every one has weight 0)',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], "weight": "high"}',
        'root weight must be a number, got a string',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], "weight": 1e999}',
        'root weight must be a finite number, got Infinity',
      ],
      [
        '{"messages": [{"role": "user", "content": "x", "reasoning_content": "r"}, {"role": "assistant", "content": "y"}]}',
        'messages[0]: reasoning_content is only allowed on assistant messages',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "reasoning_content": 7}]}',
        'messages[1].reasoning_content must be a string, got a number',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": []}]}',
        'messages[1].tool_calls must be a non-empty array, got an empty array',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{bad"}}]}]}',
        'messages[1].tool_calls[0].function.arguments is a string but not valid JSON: "{bad"',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"arguments": "{}"}}]}]}',
        'messages[1].tool_calls[0].function.name must be a non-empty string',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"type": "function"}]}]}',
        'messages[1].tool_calls[0].function is missing (expected {"name", "arguments"})',
      ],
      [
        '{"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}, {"role": "assistant", "content": "y"}]}',
        'messages[0].content[0].text must be a string, got a number',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"type": "retrieval", "function": {"name": "f", "arguments": {}}}]}]}',
        'messages[1].tool_calls[0].type must be "function", got "retrieval"',
      ],
      [
        '{"messages": [{"role": "user", "content": "x", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}, {"role": "assistant", "content": "y"}]}',
        'messages[0]: tool_calls are only allowed on assistant messages',
      ],
      [
        '{"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "42"}, {"role": "assistant", "content": "y"}]}',
        'messages[1]: a tool message must follow an assistant message with tool_calls (or another tool message)',
      ],
      [
        '{"tools": {"name": "f"}, "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}',
        'tools must be an array of {"type": "function", "function": {...}}, got an object',
      ],
      [
        '{"tools": [{"type": "function", "function": {}}], "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}',
        'tools[0].function must be an object with a non-empty string "name"',
      ],
    ];
    for (const [bad, msg] of cases) {
      const probs = problemsOf(bad);
      expect(probs.length, `${String(bad)} -> ${probs.join(' | ')}`).toBeGreaterThan(0);
      const ok = msg.startsWith('(')
        ? probs[0].startsWith('2: invalid JSON: ') && probs[0].endsWith(msg)
        : probs[0].startsWith(`2: ${msg}`);
      expect(ok, `${String(bad)}\n got: ${probs[0]}\nwant: 2: ${msg}`).toBe(true);
    }
  });

  it('reports all problems of a row, not only the first', () => {
    const probs = problemsOf(
      '{"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": 1, "weight": 2}]}',
    );
    expect(probs).toEqual([
      "2: messages[0]: unknown role 'bot' (expected system, user, assistant or tool)",
      '2: messages[1].content must be a string or a list of text parts, got a number',
      '2: messages[1].weight must be 0 or 1, got 2',
    ]);
  });

  it('a problem in a message is not reported again on the tool messages after it', () => {
    const call = (args: string) =>
      `"tool_calls": [{"type": "function", "function": {"name": "f", "arguments": ${args}}}]`;
    const probs = problemsOf(
      `{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 2, ${call('"{}"')}}, ` +
        `{"role": "tool", "content": "r"}, {"role": "tool", "content": "r2"}, {"role": "assistant", "content": "w"}]}`,
    );
    expect(probs).toEqual(['2: messages[1].weight must be 0 or 1, got 2']);
    expect(
      problemsOf(
        `{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", ${call('"{bad"')}}, ` +
          `{"role": "tool", "content": "r"}, {"role": "assistant", "content": "w"}]}`,
      ),
    ).toEqual(['2: messages[1].tool_calls[0].function.arguments is a string but not valid JSON: "{bad"']);
  });

  it('reports root weight present on only some rows, naming the lines', () => {
    const w = (x: number) => JSON.stringify({ ...JSON.parse(OK()), weight: x });
    const p = file('someweights.jsonl', [w(1), OK(), w(2), w(0)]);
    const res = validateDataset(p);
    expect(res.problems).toEqual([
      `${p}:2: root "weight" is missing, but 3 other row(s) have one (if any row has a weight, every row must)`,
    ]);
    const q = file('fewweights.jsonl', [OK(), OK(), w(0.5), OK()]);
    expect(validateDataset(q).problems).toEqual([
      `${q}:3: root "weight" is set here, but 3 other row(s) have none (if any row has a weight, every row must)`,
    ]);
  });

  it('checks the example count and examples x epochs', () => {
    const two = file('two.jsonl', [OK(), OK()]);
    expect(validateDataset(two).problems).toEqual([`${two}: 2 example(s); a dataset needs at least 3`]);
    expect(validateDataset(two, { checkCount: false }).problems).toEqual([]);
    const three = file('three.jsonl', [OK(), OK(), OK()]);
    expect(validateDataset(three, { epochs: 1_000_000 }).problems).toEqual([]);
    expect(validateDataset(three, { epochs: 1_000_001 }).problems[0]).toBe(
      `${three}: 3 examples x 1000001 epochs = 3000003 exceeds the limit of 3000000 (lower epochs to 1000000 or less)`,
    );
  });

  it('caps the problem list but counts every problem', () => {
    const lines = Array.from({ length: 150 }, () => '{"messages": 1}');
    const p = file('many.jsonl', lines);
    const res = validateDataset(p, { maxProblems: 10 });
    expect(res.problems.length).toBe(10);
    expect(res.problemCount).toBe(150);
    expect(() => loadDataset(p, { maxProblems: 10 })).toThrowError(
      /^[^\n]*many.jsonl: 150 problems in the dataset:\n[\s\S]*many.jsonl:10: "messages" must be an array[\s\S]*\.\.\. and 140 more problem\(s\) \(150 in all\)$/,
    );
    try {
      loadDataset(p);
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
    }
  });

  it('loadDataset: one problem is its one FILE:LINE line; several get the count, then a line each', () => {
    const one = file('one-bad.jsonl', [OK(), OK(), '[]', OK()]);
    expect(() => loadDataset(one)).toThrowError(
      new UserError(`${one}:3: each line must be a JSON object with a "messages" array, got an array`),
    );
    const two = file('two-bad.jsonl', [OK(), OK(), '[]', '{"messages": 1}', OK()]);
    expect(() => loadDataset(two)).toThrowError(
      new UserError(
        `${two}: 2 problems in the dataset:\n${two}:3: each line must be a JSON object with a "messages" array, got an array\n` +
          `${two}:4: "messages" must be an array, got a number`,
      ),
    );
  });

  it('handles a 50 MB line, and rejects a line over the limit without buffering it', () => {
    const big = JSON.stringify({
      messages: [
        { role: 'user', content: 'x'.repeat(50 * 1024 * 1024) },
        { role: 'assistant', content: 'ok' },
      ],
    });
    const p = file('big.jsonl', [OK(), big, OK()]);
    const res = validateDataset(p);
    expect(res.problems).toEqual([]);
    expect(res.examples[1].messages[0].content.length).toBe(50 * 1024 * 1024);
    const res2 = validateDataset(p, { maxLineBytes: 1024 * 1024 });
    expect(res2.problems).toEqual([
      `${p}:2: line is ${Buffer.byteLength(big)} bytes, longer than the 1048576-byte limit`,
    ]);
    expect(res2.examples.map((e) => e.line)).toEqual([1, 3]);
  });

  it('names a missing file', () => {
    expect(() => validateDataset(path.join(dir, 'nope.jsonl'))).toThrowError(/nope.jsonl: no such file/);
  });

  it('names a file that exists but cannot be opened (here a unix socket: ENXIO) instead of throwing an fs error', async () => {
    const sock = path.join(dir, 'data.sock');
    const server = net.createServer().listen(sock);
    await new Promise((r) => server.once('listening', r));
    try {
      expect(() => validateDataset(sock)).toThrowError(new UserError(`${sock}: cannot read (ENXIO)`));
    } finally {
      server.close();
    }
  });
});

describe('readLines', () => {
  it('splits lines across chunk boundaries', () => {
    const p = file('chunks.jsonl', ['abc', '', 'defghij', 'k'], '\r\n');
    const got = [...readLines(p, { chunkBytes: 3 })].map((l) => [l.line, l.bytes?.toString()]);
    expect(got).toEqual([
      [1, 'abc'],
      [2, ''],
      [3, 'defghij'],
      [4, 'k'],
    ]);
    fs.writeFileSync(p, '');
    expect([...readLines(p)]).toEqual([]);
  });
  it('finds the first invalid UTF-8 byte', () => {
    expect(firstInvalidUtf8(Buffer.from('héllo €'))).toBe(-1);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xc3]))).toBe(1); // truncated sequence
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xe0, 0x80, 0x80]))).toBe(1); // overlong
    expect(firstInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80]))).toBe(0); // surrogate
  });
});
