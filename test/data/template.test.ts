import { describe, expect, it } from 'vitest';
import { createChatTemplate, pickTemplate, readTemplateOverride } from '../../src/data/template.ts';

describe('chat templates', () => {
  it('picks tool_use for examples with tools, default otherwise', () => {
    const named = [
      { name: 'default', template: 'D' },
      { name: 'tool_use', template: 'T' },
    ];
    expect(pickTemplate(named, false, 'cfg')).toBe('D');
    expect(pickTemplate(named, true, 'cfg')).toBe('T');
    expect(pickTemplate([{ name: 'default', template: 'D' }], true, 'cfg')).toBe('D');
    expect(() => pickTemplate([{ name: 'rag', template: 'R' }], false, 'cfg')).toThrowError(
      "cfg: chat_template has no 'default' template (has: rag); pass --jinja-template",
    );
  });

  it('passes messages (without weight), tools (null when absent), special tokens and add_generation_prompt', () => {
    const t = createChatTemplate(
      '{{ bos_token }}{% for m in messages %}[{{ m.role }}|{{ m.content }}|{{ m.weight is defined }}|{{ m.reasoning_content }}]{% endfor %}{{ tools is none }}{% if tools %}{{ tools|length }}{% endif %}{% if add_generation_prompt %}>{% endif %}',
      { bos_token: '<s>' },
      'test',
    );
    expect(
      t.render([
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a', weight: 0, reasoning_content: 'r' },
      ]),
    ).toBe('<s>[user|q|False|][assistant|a|False|r]True'); // printed as Python prints booleans;
    expect(t.render([{ role: 'user', content: 'q' }], { tools: [{}, {}], addGenerationPrompt: true })).toBe(
      '<s>[user|q|False|]False2>',
    );
  });

  it('turns template failures into one-line user errors', () => {
    expect(() => createChatTemplate('{% for %}', {}, 'bad.jinja', { sourceIsFile: true })).toThrowError(
      /^bad\.jinja:1: chat template does not parse: /,
    );
    const t = createChatTemplate("{{ raise_exception('no system role') }}", {}, 'x');
    expect(() => t.render([])).toThrowError('chat template error: no system role');
  });

  it('names the line where a template breaks: FILE:LINE for its own file, else the template line', () => {
    const fail = (text: string, source: string) => {
      try {
        createChatTemplate(text, {}, source, { sourceIsFile: source.endsWith('.jinja') });
      } catch (e) {
        return (e as Error).message;
      }
      return 'parsed';
    };
    expect(fail('a\n\n{% foo %}\nb', 't.jinja')).toBe(
      't.jinja:3: chat template does not parse: Unknown statement type: foo',
    );
    expect(fail('ok {{ x }}\n{{ y | }}\n{{ z }}', 'dir/tokenizer_config.json')).toBe(
      'dir/tokenizer_config.json: chat template line 2 does not parse: Unexpected token: CloseExpression',
    );
    expect(fail('x\n{{ "abc }}\n', 'jinjaTemplate text')).toBe(
      'jinjaTemplate text: chat template line 2 does not parse: Unexpected end of input',
    );
    expect(fail('{# c\n\n{{ x }}', 't.jinja')).toBe(
      't.jinja:1: chat template does not parse: Missing end of comment tag',
    );
    // a block left open: the line where it opens (the blocks before it close)
    const open = '{% for m in messages %}\n{{ m }}\n{% endfor %}\n{% if a %}z{% endif %}\n{% if b %}\nq\n';
    expect(fail(open, 't.jinja')).toBe(
      't.jinja:5: chat template does not parse: the template ends inside a block or tag that opens here (a missing {% endif %}, {% endfor %}, }}, %} ...)',
    );
    expect(fail('a\n{{ x', 't.jinja')).toBe('t.jinja:2: chat template does not parse: Unexpected end of input');
    expect(fail('{{ x }}\n{% if y %}{% endif %}', 't.jinja')).toBe('parsed');
  });

  it('keeps render failures one line', () => {
    const t = createChatTemplate("{{ raise_exception('no system role') }}", {}, 'x');
    expect(() => t.render([])).toThrowError('chat template error: no system role');
  });

  it("raises for + of a string and a number as Python's jinja2 does (TypeError); ~ joins anything", () => {
    const err = (expr: string) => () => createChatTemplate(`{{ ${expr} }}`, {}, 'x').render([]);
    expect(err("'a' + 1")).toThrowError('chat template error: TypeError: can only concatenate str (not "int") to str');
    expect(err("1 + 'a'")).toThrowError(
      "chat template error: TypeError: unsupported operand type(s) for +: 'int' and 'str'",
    );
    expect(err("'a' + 1.5")).toThrowError('can only concatenate str (not "float") to str');
    expect(err("1.5 + 'a'")).toThrowError("unsupported operand type(s) for +: 'float' and 'str'");
    expect(err("'a' + true")).toThrowError('can only concatenate str (not "bool") to str');
    expect(err("'a' + none")).toThrowError('can only concatenate str (not "NoneType") to str');
    expect(err("[1] + 'a'")).toThrowError('can only concatenate list (not "str") to list');
    expect(err("'a' + {}")).toThrowError('can only concatenate str (not "dict") to str');
    const t = createChatTemplate("{{ 'a' ~ 1 ~ 1.5 }}|{{ 'a' + 'b' }}|{{ 1 + 2 }}|{{ [1] + [2] }}", {}, 'x');
    expect(t.render([])).toBe('a11.5|ab|3|[1, 2]');
  });

  it('reads an override as text when it looks like a template, else as a file', () => {
    expect(readTemplateOverride('{{ x }}')).toEqual({ text: '{{ x }}', source: 'jinjaTemplate text', isFile: false });
    expect(() => readTemplateOverride('/tmp')).toThrowError(
      '/tmp: is a directory (expected a jinja chat template file, or template text containing {{ or {%)',
    );
    expect(() => readTemplateOverride('/no/such/file.jinja')).toThrowError(
      '/no/such/file.jinja: no such file (expected a jinja chat template file, or template text containing {{ or {%)',
    );
  });
});
