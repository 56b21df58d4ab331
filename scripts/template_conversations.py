"""The conversations of the template parity fixtures (scripts/make-template-fixtures.py): dataset rows in the
managed-job format, each covering a case where a jinja port can differ from Python (whitespace the template
strips, code indentation, blank lines, unicode, content parts, tools, tool calls, reasoning, weight-0 turns)."""

WEATHER = {'type': 'function', 'function': {
    'name': 'get_weather', 'description': 'Current weather for a city — «quoted», ünïcode',
    'parameters': {'type': 'object', 'properties': {
        'city': {'type': 'string', 'description': 'City name, e.g. "Zürich"'},
        'unit': {'type': 'string', 'enum': ['celsius', 'fahrenheit']}}, 'required': ['city']}}}
SEARCH = {'type': 'function', 'function': {
    'name': 'search', 'description': 'Search the web',
    'parameters': {'type': 'object', 'properties': {'q': {'type': 'string'}, 'n': {'type': 'integer'}}, 'required': ['q']}}}
# Numbers JavaScript prints differently from Python's json.dumps (integral floats, exponents, -0.0, ints past 2^53)
# and ones it prints alike (0.1, 42): the row reader must keep what json.loads keeps.
THERMO = {'type': 'function', 'function': {
    'name': 'set_temp', 'description': 'Set the thermostat',
    'parameters': {'type': 'object', 'properties': {
        't': {'type': 'number', 'default': 1.0, 'minimum': -0.0, 'maximum': 100.0, 'multipleOf': 0.1},
        'tolerance': {'type': 'number', 'default': 1.5e-07, 'maximum': 1e+16},
        'order_id': {'type': 'integer', 'maximum': 12345678901234567890, 'minimum': 42}}, 'required': ['t']}}}


def u(c, **kw):
    return {'role': 'user', 'content': c, **kw}


def a(c, **kw):
    return {'role': 'assistant', 'content': c, **kw}


def s(c):
    return {'role': 'system', 'content': c}


def tool(c, **kw):
    return {'role': 'tool', 'content': c, **kw}


def call(name, args, cid=None):
    c = {'type': 'function', 'function': {'name': name, 'arguments': args}}
    if cid:
        c['id'] = cid
    return c


def conversations():
    rows = {
        'plain': [u('Hi'), a('Hello!')],
        'system': [s('You are terse.'), u('Hi'), a('Hello.')],
        'code_indent': [u('Show code'), a('    print(1)')],
        'code_block': [u('Write a loop'), a('```python\nfor i in range(3):\n    if i:\n        print(i)\n```')],
        'leading_newlines': [u('Hi'), a('\n\nHello')],
        'trailing_newlines': [u('Hi'), a('Hello\n\n')],
        'leading_spaces_user': [u('   spaced question   '), a('  spaced answer  ')],
        'tabs': [u('\tTabbed\t'), a('\tcol1\tcol2\n\tx\ty')],
        'blank_lines': [u('Para 1\n\n\nPara 2'), a('A\n\n\n\nB')],
        'crlf': [u('line1\r\nline2'), a('ok\r\nfine\r\n')],
        'only_whitespace_answer': [u('Say nothing'), a(' ')],
        'empty_answer': [u('Empty?'), a('')],
        'unicode': [u('Ça va? 你好 🌍 עברית'), a('Très bien — 谢谢! 👍🏽 e\u0301')],
        'unicode_nbsp': [u('\u00a0nbsp around\u00a0'), a('\u2003em space\u2003 and \u3000ideographic')],
        'quotes_backslashes': [u('Path C:\\temp\\"x"'), a("It's \"quoted\" \\n not a newline")],
        'jinja_like_text': [u('What does {{ x }} do?'), a('{% raw %} and {{ y }} are literal text here.')],
        'special_token_text': [u('Explain <|im_end|> and <think>'), a('They are tokens like <|eot_id|>.')],
        'content_parts': [{'role': 'user', 'content': [{'type': 'text', 'text': 'Part one. '}, {'type': 'text', 'text': 'Part two.'}]},
                          {'role': 'assistant', 'content': [{'type': 'text', 'text': '  Indented'}, {'type': 'text', 'text': ' reply\n'}]}],
        'content_parts_system': [{'role': 'system', 'content': [{'type': 'text', 'text': 'Sys A. '}, {'type': 'text', 'text': 'Sys B.'}]}, u('Q'), a('A')],
        'multi_turn': [u('One'), a('1'), u('Two'), a('2'), u('Three'), a('3')],
        'multi_turn_system': [s('Count.'), u('One'), a('1'), u('Two'), a('2')],
        'consecutive_users': [u('First part.'), u('Second part.'), a('Both answered.')],
        'weight0_first': [u('Q1'), a('bad answer', weight=0), u('Q2'), a('good answer', weight=1)],
        'weight0_last': [u('Q1'), a('A1', weight=1), u('Q2'), a('A2', weight=0), u('Q3'), a('A3')],
        'reasoning': [u('2+2?'), a('4', reasoning_content='Add two and two.')],
        'reasoning_whitespace': [u('Think'), a('\n  Answer indented', reasoning_content='\n  Step 1\n  Step 2\n\n')],
        'reasoning_multi': [u('A?'), a('a', reasoning_content='r1'), u('B?'), a('b', reasoning_content='r2')],
        'reasoning_empty': [u('Quick'), a('Sure.', reasoning_content='')],
        'inline_think': [u('Why?'), a('<think>\nBecause.\n</think>\n\nThe answer.')],
        'inline_think_spaces': [u('Why?'), a('<think>   leading spaces kept?\n</think>\n    code after think')],
        'inline_think_multi': [u('A'), a('<think>x</think>one'), u('B'), a('<think>\ny\n</think>\n\ntwo')],
        'tool_call_object_args': [u('Weather in Paris?'), a('', tool_calls=[call('get_weather', {'city': 'Paris', 'unit': 'celsius'}, 'c1')]),
                                  tool('{"temp": 21}', tool_call_id='c1'), a('21 °C in Paris.')],
        'tool_call_string_args': [u('Weather in Oslo?'), a('', tool_calls=[call('get_weather', '{"city": "Oslo"}', 'c1')]),
                                  tool('cold', tool_call_id='c1'), a('Cold.')],
        'tool_call_unicode_args': [u('Wetter in Zürich?'), a('Let me check.', tool_calls=[call('get_weather', {'city': 'Zürich 🇨🇭', 'note': 'naïve "q"'}, 'c1')]),
                                   tool('{"temp": 5, "desc": "bewölkt"}', tool_call_id='c1'), a('5 °C, bewölkt.')],
        'tool_call_nested_args': [u('Search'), a('', tool_calls=[call('search', {'q': 'x', 'n': 3, 'opts': {'safe': True, 'tags': ['a', 'b'], 'none': None}, 'ratio': 0.5}, 'c1')]),
                                  tool('[]', tool_call_id='c1'), a('Nothing found.')],
        'parallel_tool_calls': [u('Weather in Paris and Rome?'), a('', tool_calls=[call('get_weather', {'city': 'Paris'}, 'c1'), call('get_weather', {'city': 'Rome'}, 'c2')]),
                                tool('20', tool_call_id='c1'), tool('25', tool_call_id='c2'), a('Paris 20, Rome 25.')],
        'tool_call_null_content': [u('Weather in Bern?'), a(None, tool_calls=[call('get_weather', {'city': 'Bern'}, 'c1')]),
                                   tool('3', tool_call_id='c1'), a('3 degrees.')],
        'tool_call_no_content': [u('Weather in Graz?'), {'role': 'assistant', 'tool_calls': [call('get_weather', '{"city": "Graz"}', 'c1')]},
                                 tool('4', tool_call_id='c1'), a('4 degrees.')],
        'tool_call_with_content': [u('Find x'), a('I will search.', tool_calls=[call('search', {'q': 'x'}, 'c1')]), tool('found', tool_call_id='c1'), a('Found it.')],
        'tool_call_reasoning': [u('Weather?'), a('', reasoning_content='Need the tool.', tool_calls=[call('get_weather', {'city': 'Lima'}, 'c1')]),
                                tool('18', tool_call_id='c1'), a('18 degrees.', reasoning_content='Report it.')],
        'tool_call_number_args': [u('Set 21'), a('', tool_calls=[call('set_temp', {'t': 21.0, 'order_id': 12345678901234567890, 'tolerance': 1.5e-07,
                                                                   'big': 1e+20, 'zero': -0.0, 'ratio': 0.1, 'n': 42, 'small': 0.0001,
                                                                   'edge': 1e+16, 'below': 9999999999999998.0, 'neg': -2.5e-05,
                                                                   'nested': [1.0, {'x': 100.0}]}, 'c1')]),
                                  tool('{"t": 21.0}', tool_call_id='c1'), a('Set to 21.0.')],
        'tool_numbers_string_args': [u('Set 5'), a('', tool_calls=[call('set_temp', '{"t": 5.0, "id": 12345678901234567890}', 'c1')]),
                                     tool('ok', tool_call_id='c1'), a('Done.')],
        'tools_no_call': [u('Hello'), a('Hi, no tools needed.')],
        'tools_system': [s('Use tools wisely.'), u('Weather in Kyiv?'), a('', tool_calls=[call('get_weather', {'city': 'Kyiv'}, 'c1')]), tool('9', tool_call_id='c1'), a('9.')],
        'tool_then_followup': [u('Weather?'), a('', tool_calls=[call('get_weather', {'city': 'Nice'}, 'c1')]), tool('  spaced result  ', tool_call_id='c1'),
                               a('Spaced.'), u('Thanks'), a('You are welcome.')],
        'long_multiturn_unicode': [s('Réponds en français.'), u('Bonjour'), a('Salut !'), u('Ça va ?'), a('Oui, merci.'), u('Et toi ?'), a('Très bien.')],
        'markdown': [u('# Title\n- item'), a('## Heading\n\n* a\n* b\n\n> quote\n\n| x | y |\n|---|---|\n| 1 | 2 |')],
        'numbers_text': [u('1.0 + 2'), a('3.0')],
        'trailing_space_lines': [u('end spaces   \nnext'), a('a   \n  b  \n')],
        'system_whitespace': [s('\n  Indented system prompt\n'), u('Q'), a('A')],
        'only_newline_content': [u('\n'), a('\n')],
        'python_whitespace': [u('\ufeffBOM first\x1c'), a('\x85after NEL\x1f \u2028')],
        'astral_chars': [u('𝒳 𝔘 😀'), a('😀 code:\n    x = "𝒳"')],
    }
    tools_for = {k: [THERMO, WEATHER] if 'number' in k else [WEATHER, SEARCH] for k in rows if k.startswith('tool')}
    out = []
    for k, msgs in rows.items():
        row = {'messages': msgs}
        if k in tools_for:
            row['tools'] = tools_for[k]
        out.append({'id': k, 'row': row})
    return out
