// Chat-template selection and rendering with @huggingface/jinja, the way HF apply_chat_template does:
// the model's tokenizer_config.json `chat_template` (a string, or a list of named templates) or an
// override, rendered with messages, tools, the special tokens and add_generation_prompt.
import { Template } from '@huggingface/jinja';
import { UserError } from '../errors.ts';
import { readTextFile } from '../util/files.ts';
import type { ChatMessage } from './types.ts';
import { renderTemplate } from './jinja_python.ts';
import { locateTemplateError } from './template_error.ts';

export interface RenderOptions {
  tools?: unknown[];
  addGenerationPrompt?: boolean;
}

export interface TemplateEnv {
  /** Where `strftime_now` reads the time (default the wall clock, as transformers; tests pin it). */
  now?: () => Date;
  /** `source` is the template's own file: a parse error is named `FILE:LINE: ...`. */
  sourceIsFile?: boolean;
}

/** A compiled chat template; `render` throws UserError('chat template error: ...') on template failures. */
export interface ChatTemplate {
  render(messages: ChatMessage[], opts?: RenderOptions): string;
  /** Where the template came from (for messages). */
  source: string;
}

/** `jinjaTemplate` is template text when it contains `{{` or `{%`, otherwise a path to a template file. */
export function readTemplateOverride(jinjaTemplate: string): { text: string; source: string; isFile: boolean } {
  if (jinjaTemplate.includes('{{') || jinjaTemplate.includes('{%'))
    return { text: jinjaTemplate, source: 'jinjaTemplate text', isFile: false };
  return {
    text: readTextFile(jinjaTemplate, 'expected a jinja chat template file, or template text containing {{ or {%'),
    source: jinjaTemplate,
    isFile: true,
  };
}

/**
 * Pick the template text. `chat_template` may be a list of {name, template}: use 'tool_use' when
 * the example has tools and that template exists, else 'default' (HF get_chat_template rules).
 */
export function pickTemplate(chatTemplate: unknown, hasTools: boolean, where: string): string {
  if (typeof chatTemplate === 'string') return chatTemplate;
  if (Array.isArray(chatTemplate)) {
    const byName = new Map<string, string>();
    for (const t of chatTemplate)
      if (t && typeof t.name === 'string' && typeof t.template === 'string') byName.set(t.name, t.template);
    const hit = (hasTools && byName.get('tool_use')) || byName.get('default');
    if (hit) return hit;
    throw new UserError(
      `${where}: chat_template has no 'default' template (has: ${[...byName.keys()].join(', ') || 'none'}); pass --jinja-template`,
    );
  }
  throw new UserError(`${where}: no chat_template in tokenizer_config.json; pass --jinja-template FILE`);
}

/** Plain objects for the template: role, content and the optional fields; never our `weight`. */
function toTemplateMessage(m: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: m.content };
  if (m.reasoning_content !== undefined) out.reasoning_content = m.reasoning_content;
  if (m.tool_calls) out.tool_calls = m.tool_calls;
  if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
  if (m.name !== undefined) out.name = m.name;
  return out;
}

/**
 * One line naming where the template breaks: `FILE:LINE: ...` when `source` is the template's own file (an
 * override or chat_template.jinja), else `SOURCE: chat template line N ...` (tokenizer_config.json's string,
 * override text).
 */
function parseFailure(text: string, e: Error, source: string, ownFile: boolean): UserError {
  const at = locateTemplateError(text, e);
  if (!at) return new UserError(`${source}: chat template does not parse: ${e.message}`);
  return new UserError(
    ownFile
      ? `${source}:${at.line}: chat template does not parse: ${at.message}`
      : `${source}: chat template line ${at.line} does not parse: ${at.message}`,
  );
}

/**
 * Build a ChatTemplate. `chatTemplate` is the raw tokenizer_config value (or override text);
 * `specialTokens` are bos_token, eos_token, ... passed to the template as variables.
 */
export function createChatTemplate(
  chatTemplate: unknown,
  specialTokens: Record<string, string>,
  source: string,
  env: TemplateEnv = {},
): ChatTemplate {
  const now = env.now ?? (() => new Date());
  const compiled = new Map<string, Template>();
  const compile = (text: string): Template => {
    let t = compiled.get(text);
    if (!t) {
      try {
        t = new Template(text);
      } catch (e) {
        throw parseFailure(text, e as Error, source, env.sourceIsFile === true && typeof chatTemplate === 'string');
      }
      compiled.set(text, t);
    }
    return t;
  };
  if (typeof chatTemplate === 'string') compile(chatTemplate); // fail early on a broken override
  return {
    source,
    render(messages, opts = {}) {
      const hasTools = !!opts.tools && opts.tools.length > 0;
      const tpl = compile(pickTemplate(chatTemplate, hasTools, source));
      try {
        return renderTemplate(
          tpl,
          {
            ...specialTokens,
            messages: messages.map(toTemplateMessage),
            tools: hasTools ? opts.tools : null,
            documents: null,
            add_generation_prompt: opts.addGenerationPrompt ?? false,
          },
          now,
        );
      } catch (e) {
        throw new UserError(`chat template error: ${(e as Error).message}`);
      }
    },
  };
}
