// The OpenAI-compatible inference API under /inference/v1: POST chat/completions and completions (JSON, or
// server-sent events with `stream: true`, ending `data: [DONE]`), GET models and models/{model}. `model` is a
// model resource name or `MODEL#DEPLOYMENT`; errors use OpenAI's shape `{"error": {"message", "type", "param", "code"}}`.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { UserError } from '../errors.ts';
import { isExited, type HostedDeployment } from '../infer/hosted.ts';
import { choiceSeed, type Completion, type SamplingParams } from '../infer/sequence.ts';
import type { Prompt } from '../infer/deployment.ts';
import type { DeploymentService } from './deployment_service.ts';
import { ApiError } from './errors.ts';
import { decodeSegment, readJsonBody, sendJson } from './http.ts';
import { type Json } from './store.ts';
import { OpenAIError, parseInferenceRequest, type InferenceRequest } from './openai_params.ts';

export const INFERENCE_PREFIX = '/inference/v1';

type Kind = 'chat' | 'completion';

/** Any thrown error as an OpenAIError (a UserError from the engine, e.g. a prompt longer than the context, is a 400). */
function asOpenAI(e: unknown): OpenAIError {
  if (e instanceof OpenAIError) return e;
  if (e instanceof ApiError)
    return new OpenAIError(e.httpStatus, e.message, e.httpStatus === 404 ? 'model' : null, e.statusName.toLowerCase());
  if (e instanceof UserError) return new OpenAIError(400, e.message, null, 'invalid_value');
  return new OpenAIError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, null, 'internal_error');
}

/** Handles a request whose path starts with /inference/v1; answers every error itself. */
export async function handleInference(
  svc: DeploymentService,
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
): Promise<void> {
  try {
    const sub = pathname.slice(INFERENCE_PREFIX.length);
    if (req.method === 'GET' && sub === '/models') return sendJson(res, 200, listModels(svc));
    if (req.method === 'GET' && sub.startsWith('/models/'))
      return sendJson(res, 200, oneModel(svc, decodeSegment(sub.slice('/models/'.length))));
    const kind: Kind | undefined =
      sub === '/chat/completions' ? 'chat' : sub === '/completions' ? 'completion' : undefined;
    if (!kind)
      throw new OpenAIError(
        404,
        `Unknown endpoint ${req.method} ${pathname} (this server has POST ${INFERENCE_PREFIX}/chat/completions, POST ${INFERENCE_PREFIX}/completions, GET ${INFERENCE_PREFIX}/models)`,
        null,
        'unknown_url',
      );
    if (req.method !== 'POST')
      throw new OpenAIError(405, `${req.method} is not allowed on ${pathname} (use POST)`, null, 'method_not_allowed');
    const body = await readJsonBody(req).catch((e) => {
      throw e instanceof ApiError ? new OpenAIError(e.httpStatus, e.message, null, 'invalid_json') : e;
    });
    await complete(svc, req, res, parseInferenceRequest(body, kind), kind);
  } catch (e) {
    const err = asOpenAI(e);
    if (res.headersSent) {
      if (!res.writableEnded) res.end(`data: ${JSON.stringify(err.body())}\n\n`);
      return;
    }
    sendJson(res, err.httpStatus, err.body());
  }
}

function listModels(svc: DeploymentService): Json {
  const seen = new Map<string, Json>();
  for (const s of svc.served()) {
    const created = Math.floor(Date.parse(s.createTime) / 1000);
    if (!seen.has(s.model))
      seen.set(s.model, { id: s.model, object: 'model', created, owned_by: s.model.split('/')[1] ?? 'local' });
    const routed = `${s.model}#${s.deployment}`;
    seen.set(routed, { id: routed, object: 'model', created, owned_by: s.deployment.split('/')[1] ?? 'local' });
  }
  return { object: 'list', data: [...seen.values()] };
}

/** GET models/{model} (the id may hold slashes: accounts/A/models/ID, or MODEL#DEPLOYMENT). */
function oneModel(svc: DeploymentService, model: string): Json {
  // MODEL#ID names its deployment by id, as chat/completions takes it: listed as MODEL#accounts/A/deployments/ID.
  const [name, dep] = model.split('#');
  const same = (id: string) =>
    id === model ||
    (dep !== undefined && !dep.includes('/') && id.startsWith(`${name}#`) && id.endsWith(`/deployments/${dep}`));
  const m = (listModels(svc).data as Json[]).find((x) => same(x.id as string));
  if (!m)
    throw new OpenAIError(404, `The model \`${model}\` does not exist or is not deployed.`, 'model', 'model_not_found');
  return m;
}

/** Token counts as OpenAI's: each prompt once (its n choices share it), completion tokens of every choice. */
const usage = (cs: Completion[], n: number) => {
  const sum = (f: (c: Completion, i: number) => number) => cs.reduce((t, c, i) => t + f(c, i), 0);
  const [prompt, completion] = [sum((c, i) => (i % n === 0 ? c.promptTokens : 0)), sum((c) => c.completionTokens)];
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
};
const finish = (c: Completion) => (c.finishReason === 'length' ? 'length' : 'stop');

/**
 * A completion; one cut short because its deployment was deleted meanwhile (its process closed, the request
 * cancelled or lost) is answered 404 deployment_not_found: the caller's own delete, not a server fault.
 */
async function whileDeployed(
  svc: DeploymentService,
  deployment: string,
  signal: AbortSignal,
  run: () => Promise<Completion>,
): Promise<Completion> {
  const deleted = () =>
    !svc.served().some((s) => s.deployment === deployment) &&
    new OpenAIError(
      404,
      `deployment ${deployment} was deleted while this request ran`,
      'model',
      'deployment_not_found',
    );
  let c: Completion;
  try {
    c = await run();
  } catch (e) {
    throw (isExited(e) && deleted()) || e;
  }
  if (c.finishReason === 'cancelled' && !signal.aborted) throw deleted() || new Error('the request was cancelled');
  return c;
}

/** Token ids of every prompt, in order; one the model cannot take is a 400 naming it, before any stream starts. */
async function encodeAll(dep: HostedDeployment, r: InferenceRequest, kind: Kind): Promise<number[][]> {
  const which = (i: number) => (r.prompts.length > 1 ? `prompt[${i}]: ` : '');
  return Promise.all(
    r.prompts.map((p, i) =>
      dep.encode(p).catch((e) => {
        if (!(e instanceof UserError)) throw e;
        const code = /the model's context is/.test(e.message) ? 'context_length_exceeded' : 'invalid_value'; // as OpenAI's
        throw new OpenAIError(400, which(i) + e.message, kind === 'chat' ? 'messages' : 'prompt', code);
      }),
    ),
  );
}

/** What `echo` puts before each choice of a prompt: its text, or its token ids decoded; nothing without echo. */
async function echoes(dep: HostedDeployment, r: InferenceRequest): Promise<string[]> {
  const one = (p: Prompt) => (!r.echo ? '' : 'text' in p ? p.text : 'ids' in p ? dep.decode(p.ids) : '');
  return Promise.all(r.prompts.map(one));
}

/** One choice of a request: index = prompt index * n + k, sampled with its own seed. */
interface Choice {
  index: number;
  ids: number[];
  params: SamplingParams;
  echo: string;
}

function choices(r: InferenceRequest, ids: number[][], echo: string[]): Choice[] {
  return ids.flatMap((promptIds, p) =>
    Array.from({ length: r.n }, (_, k) => ({
      index: p * r.n + k,
      ids: promptIds,
      params: { ...r.params, seed: choiceSeed(r.params.seed, k) },
      echo: echo[p],
    })),
  );
}

/** What a request's completions report as they go: choice i's text pieces, and its end. */
interface Progress {
  onText?: (i: number, piece: string) => void;
  onDone?: (i: number, c: Completion) => void;
}

async function complete(
  svc: DeploymentService,
  req: IncomingMessage,
  res: ServerResponse,
  r: InferenceRequest,
  kind: Kind,
): Promise<void> {
  const target = await svc.resolve(r.model);
  const chs = choices(r, await encodeAll(target.dep, r, kind), await echoes(target.dep, r));
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const head = { id, object: kind === 'chat' ? 'chat.completion' : 'text_completion', created, model: r.model };
  // A client that goes away cancels its request at the next decoding step; a choice that fails cancels the others.
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  // All choices run together, each its own sequence (the engine batches them); cs[i] is choice i.
  const run = (p: Progress = {}) =>
    Promise.all(
      chs.map(async ({ index, ids, params }) => {
        const c = await whileDeployed(svc, target.deployment, ac.signal, () =>
          target.dep.complete(ids, target.adapter, params, {
            signal: ac.signal,
            onText: p.onText && ((t) => p.onText!(index, t)),
          }),
        );
        if (c.finishReason !== 'cancelled') p.onDone?.(index, c);
        return c;
      }),
    ).catch((e) => {
      ac.abort();
      throw e;
    });
  if (!r.stream) {
    const cs = await run();
    const choice = (c: Completion, index: number) =>
      kind === 'chat'
        ? { index, message: { role: 'assistant', content: c.text }, logprobs: null, finish_reason: finish(c) }
        : { index, text: chs[index].echo + c.text, logprobs: null, finish_reason: finish(c) };
    return sendJson(res, 200, { ...head, choices: cs.map(choice), usage: usage(cs, r.n) });
  }
  const chunk = { ...head, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion' };
  await stream(res, r, kind, chunk, chs, run);
}

/** Server-sent events: text pieces as each choice makes them, its finish as it ends, then usage and [DONE]. */
async function stream(
  res: ServerResponse,
  r: InferenceRequest,
  kind: Kind,
  chunk: Json,
  chs: Choice[],
  run: (p: Progress) => Promise<Completion[]>,
): Promise<void> {
  const send = (choices: Json[], extra: Json = {}) => {
    if (!res.writableEnded) res.write(`data: ${JSON.stringify({ ...chunk, choices, ...extra })}\n\n`);
  };
  const piece = (index: number, text: string, finishReason: string | null = null): Json =>
    kind === 'chat'
      ? { index, delta: finishReason ? {} : { content: text }, logprobs: null, finish_reason: finishReason }
      : { index, text, logprobs: null, finish_reason: finishReason };
  // Headers go out once the request is accepted (resolve + encode succeeded), so errors before are plain JSON.
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  // Each choice opens with its role (chat) or its echoed prompt (completions with echo).
  for (const { index, echo } of chs)
    if (kind === 'chat')
      send([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    else if (echo) send([piece(index, echo)]);
  const cs = await run({
    onText: (i, t) => send([piece(i, t)]),
    onDone: (i, c) => send([piece(i, '', finish(c))]),
  });
  if (cs.some((c) => c.finishReason === 'cancelled')) return void res.end();
  if (r.includeUsage) send([], { usage: usage(cs, r.n) });
  res.end('data: [DONE]\n\n');
}
