// A dataset line read as json.loads reads it, where the chat template prints numbers back (tools, arguments).
import { describe, expect, it } from 'vitest';
import { parseRowJson } from '../../src/data/json_row.ts';
import { PyNumber } from '../../src/data/py_number.ts';
import { checkRow } from '../../src/data/row.ts';

const LINE =
  '{"tools":[{"type":"function","function":{"name":"set_temp","parameters":{"type":"object","properties":' +
  '{"t":{"type":"number","default":1.0,"multipleOf":0.1}}}}}],"weight":2.0,"messages":[{"role":"user","content":"set 21.0"},' +
  '{"role":"assistant","weight":1.0,"tool_calls":[{"type":"function","function":{"name":"set_temp",' +
  '"arguments":{"t":21.0,"order_id":12345678901234567890,"tags":[1e-7, -0.0]}}}]},' +
  '{"role":"tool","content":"ok"},{"role":"assistant","content":"Done.","tool_calls":[{"type":"function","function":' +
  '{"name":"set_temp","arguments":"{\\"t\\": 5.0}"}}]}]}';

describe('parseRowJson', () => {
  const row = parseRowJson(LINE) as {
    weight: unknown;
    tools: { function: { parameters: { properties: { t: Record<string, unknown> } } } }[];
    messages: { weight?: unknown; tool_calls?: { function: { arguments: unknown } }[] }[];
  };

  it('keeps the Python text of numbers in tools and object arguments', () => {
    const t = row.tools[0].function.parameters.properties.t;
    expect(t.default).toEqual(new PyNumber('1.0', 1, false));
    expect(t.multipleOf).toBe(0.1);
    const args = row.messages[1].tool_calls![0].function.arguments as Record<string, unknown>;
    expect(String(args.t)).toBe('21.0');
    expect(String(args.order_id)).toBe('12345678901234567890');
    expect((args.tags as unknown[]).map(String)).toEqual(['1e-07', '-0.0']);
    expect(row.messages[3].tool_calls![0].function.arguments).toBe('{"t": 5.0}');
  });

  it('leaves every other number as JSON.parse reads it (weights are validated as before)', () => {
    expect(row.weight).toBe(2);
    expect(row.messages[1].weight).toBe(1);
    expect(checkRow(row, 1).problems).toEqual([]);
    expect(JSON.stringify(row)).toBe(JSON.stringify(JSON.parse(LINE)));
  });

  it('reads other rows, "__proto__" keys and whitespace as JSON.parse does', () => {
    for (const line of [
      '{"messages":[{"role":"user","content":"1.0"}],"weight":1.0}',
      ' { "tools" : [ { "__proto__" : { "a" : 1.0 } , "x" : [ ] , "y" : { } } ] , "messages" : [ ] } ',
      '{"tools":[],"messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":{"a":"\\"}1.0"}}}]}]}',
    ]) {
      const got = parseRowJson(line);
      expect(JSON.stringify(got)).toBe(JSON.stringify(JSON.parse(line)));
      expect(Object.getPrototypeOf((got as { tools?: object[] }).tools?.[0] ?? {})).toBe(Object.prototype);
    }
  });

  it("throws JSON.parse's error on invalid JSON", () => {
    expect(() => parseRowJson('{"tools": [1.0,]}')).toThrow(SyntaxError);
  });
});
