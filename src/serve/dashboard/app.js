// lorasft dashboard: one page over the REST API (hash routes #/datasets, #/jobs, #/jobs/ID, #/models,
// #/deployments). Plain DOM, no framework; uPlot (bundled) draws the loss curves, fed live by the job's
// :streamMetrics server-sent events (read with fetch so the API key header can be sent).
'use strict';
const $ = (sel, el = document) => el.querySelector(sel);
const main = $('#main');
const settings = { get account() { return $('#account').value.trim() || 'local'; }, get key() { return $('#apikey').value; } };
for (const id of ['account', 'apikey']) {
  const el = $('#' + id);
  el.value = localStorage.getItem('lorasft.' + id) ?? el.value;
  el.addEventListener('change', () => { localStorage.setItem('lorasft.' + id, el.value); route(); });
}

/** Element builder: h('td', {class: 'x'}, child, 'text'). */
function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) if (kid !== undefined && kid !== null) el.append(kid instanceof Node ? kid : String(kid));
  return el;
}

const base = () => `/v1/accounts/${encodeURIComponent(settings.account)}`;
const headers = () => (settings.key ? { authorization: `Bearer ${settings.key}` } : {});

/** fetch + JSON; throws Error(message of the API's error body). */
async function api(method, path, body, isForm) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.body = isForm ? body : JSON.stringify(body);
    if (!isForm) init.headers['content-type'] = 'application/json';
  }
  const r = await fetch(path.startsWith('/') ? path : `${base()}/${path}`, init);
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j?.error?.message ?? `${r.status} ${r.statusText}`);
  return j;
}

const statusText = (j) => j.status?.message || j.status?.code || '';
const id = (name) => String(name ?? '').split('/').pop();
const when = (t) => (t ? new Date(t).toLocaleString() : '');
// Chromium compiles pattern= with the v flag, where a bare '-' in a class is invalid (the check is then off).
const ID_PATTERN = '[a-z0-9\\-]{1,63}';
const errorBox = (e) => h('p', { class: 'error', role: 'alert' }, e instanceof Error ? e.message : String(e));

/** A table of `rows`, one column per [header, cell(row)]; `key(row)` names each row for patchTable. */
function table(cols, rows, caption, key) {
  return h('div', { class: 'table-wrap' }, h('table', {}, h('caption', { class: 'skip' }, caption),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c[0])))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', { 'data-key': key?.(r) }, cols.map((c) => h('td', {}, c[1](r))))) : h('tr', {}, h('td', { colspan: cols.length }, 'none yet')))));
}

/**
 * Brings the table in `el` up to `fresh` (a table() of the same columns) in place: a row of the same key keeps its
 * element and a cell changes only where its content does, so focus, scroll and selection stay and nothing flickers.
 */
function patchTable(el, fresh) {
  const body = $('tbody', el);
  const keyOf = (r) => r.dataset.key ?? r.outerHTML; // a row without a key ('none yet') stays while it reads the same
  const old = new Map([...body.rows].map((r) => [keyOf(r), r]));
  const rows = [...$('tbody', fresh).rows].map((r) => {
    const o = old.get(keyOf(r));
    if (!o) return r;
    [...r.cells].forEach((c, i) => { if (o.cells[i].innerHTML !== c.innerHTML) o.cells[i].replaceChildren(...c.childNodes); });
    return o;
  });
  for (const r of [...body.rows]) if (!rows.includes(r)) r.remove();
  let at = body.firstElementChild; // rows kept stay in order (new ones go in between): a focused row is never moved
  for (const r of rows) {
    if (r === at) at = at.nextElementSibling;
    else body.insertBefore(r, at);
  }
}

/** Every item of a list route, page after page (`field`: the list's name in the answer). */
async function listAll(path, field) {
  const out = [];
  let token = '';
  do {
    const j = await api('GET', `${path}?pageSize=200${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`);
    out.push(...(j[field] ?? []));
    token = j.nextPageToken;
  } while (token);
  return out;
}

function progress(p) {
  const pct = Math.max(0, Math.min(100, Number(p?.percent ?? 0)));
  return h('span', {}, h('span', { class: 'progress', role: 'progressbar', 'aria-valuenow': pct, 'aria-valuemin': 0, 'aria-valuemax': 100 }, h('span', { style: `width:${pct}%` })), ` ${pct.toFixed(0)}%`);
}

// ---- datasets ----
async function datasetsView(signal) {
  const list = await listAll('datasets', 'datasets');
  if (signal.aborted) return [];
  const out = h('p', { id: 'upload-result', role: 'status' });
  const form = h('form', { class: 'grid', id: 'upload-form', 'aria-label': 'Upload a dataset' },
    h('label', {}, 'Dataset id', h('input', { name: 'id', required: true, pattern: ID_PATTERN, placeholder: 'my-dataset' }), h('small', {}, 'lowercase letters, digits, hyphens')),
    h('label', {}, 'JSONL file', h('input', { name: 'file', type: 'file', accept: '.jsonl', required: true }), h('small', {}, 'one chat example ({"messages": [...]}) per line')),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Upload')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const dsId = form.elements.id.value.trim();
    out.replaceChildren('Uploading…');
    try {
      await api('POST', 'datasets', { datasetId: dsId, dataset: { userUploaded: {} } }).catch((e) => { if (!/already exists/.test(e.message)) throw e; });
      const fd = new FormData();
      fd.append('file', form.elements.file.files[0]);
      const d = await api('POST', `datasets/${dsId}:upload`, fd, true);
      out.replaceChildren(h('span', { class: 'ok' }, `${id(d.name ?? dsId)}: ${d.state ?? 'uploaded'}, ${d.exampleCount ?? '?'} examples`));
      await refresh();
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  });
  const tableBox = h('div', { id: 'datasets-table' }, datasetTable(list));
  const refresh = async () => tableBox.replaceChildren(datasetTable(await listAll('datasets', 'datasets')));
  return [h('h2', {}, 'Datasets'), tableBox, h('h2', {}, 'Upload'), form, out];
}
const datasetTable = (rows) => table([['Dataset', (d) => id(d.name)], ['State', (d) => d.state], ['Examples', (d) => d.exampleCount ?? ''], ['Created', (d) => when(d.createTime)]], rows, 'Datasets');

// ---- jobs ----
/** Runs `stop` (ends a view's polling or stream) when the view of `signal` is left. */
const onLeave = (signal, stop) => signal.addEventListener('abort', stop, { once: true });
const jobTable = (rows) => table([['Job', (j) => h('a', { href: `#/jobs/${id(j.name)}` }, id(j.name))], ['State', (j) => j.state?.replace('JOB_STATE_', '')], ['Progress', (j) => progress(j.jobProgress)],
  ['Trained tokens', (j) => j.jobProgress?.outputTokens ?? ''], ['Created', (j) => when(j.createTime)], ['Updated', (j) => when(j.updateTime)]], rows, 'Jobs', (j) => j.name);

const JOBS = 'supervisedFineTuningJobs';
const FULL_EVERY = 15; // polls (30 s) between reloads of the whole jobs list

/**
 * The jobs list after one poll: its newest page fresh, then the rows of `shown` older than that page's last job, as
 * they were loaded (a poll is one request however long the list; every FULL_EVERY-th poll reloads them all).
 */
async function pollJobs(shown) {
  const j = await api('GET', `${JOBS}?pageSize=200`);
  const first = j[JOBS] ?? [];
  if (!j.nextPageToken) return first;
  const at = shown.findIndex((x) => x.name === first.at(-1).name);
  return at < 0 ? listAll(JOBS, JOBS) : first.concat(shown.slice(at + 1));
}

async function jobsView(signal) {
  // Every dataset and model a job can use (dataset, baseModel, ...): accounts/-/... lists those of every account.
  const [list, fields, datasets, models] = await Promise.all([listAll(JOBS, JOBS), fetch('/ui/job-fields.json').then((r) => r.json()),
    listAll('/v1/accounts/-/datasets', 'datasets').catch(() => []), listAll('/v1/accounts/-/models', 'models').catch(() => [])]);
  if (signal.aborted) return [];
  // (aria-live off: <main> is a polite live region, and a screen reader need not read every progress step)
  const jobs = h('div', { id: 'jobs-table', 'aria-live': 'off' }, jobTable(list));
  const note = h('p', { id: 'jobs-note', role: 'status' });
  // The list follows its jobs' state and progress while it is open (as the job page does), patched in place.
  let busy = false;
  let shown = list;
  let polls = 0;
  const refresh = async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      shown = ++polls % FULL_EVERY ? await pollJobs(shown) : await listAll(JOBS, JOBS);
      if (signal.aborted) return;
      patchTable(jobs, jobTable(shown));
      note.textContent = '';
    } catch (e) {
      if (e instanceof TypeError) note.textContent = 'The server is not answering; reconnecting…';
    } finally {
      busy = false;
    }
  };
  const poll = setInterval(refresh, 2000);
  onLeave(signal, () => clearInterval(poll));
  return [h('h2', {}, 'Fine-tuning jobs'), jobs, note, h('h2', {}, 'Create a job'), jobForm(fields, datasets, models)];
}

function jobForm(fields, datasets, models) {
  const result = h('p', { role: 'status' });
  const lists = { dataset: datasets.map((d) => d.name), evaluationDataset: datasets.map((d) => d.name), baseModel: models.filter((m) => m.kind === 'HF_BASE_MODEL').map((m) => m.name), warmStartFrom: models.filter((m) => m.kind === 'HF_PEFT_ADDON').map((m) => m.name) };
  const input = (f) => {
    if (f.choices) return h('select', { name: f.name }, f.choices.map((c) => h('option', { value: c, selected: c === f.default }, c)));
    if (f.kind === 'boolean') return h('select', { name: f.name }, ['true', 'false'].map((c) => h('option', { value: c, selected: String(f.default) === c }, c)));
    if (f.multiline) return h('textarea', { name: f.name, rows: 4, placeholder: f.defaultText ?? '' });
    const attrs = { name: f.name, list: lists[f.name] ? `list-${f.name}` : undefined, placeholder: f.defaultText ?? String(f.default ?? '') };
    if (f.kind === 'int' || f.kind === 'number') Object.assign(attrs, { type: 'number', step: f.kind === 'int' ? '1' : 'any', value: f.default === 0 && f.defaultText ? '' : String(f.default) });
    return h('input', attrs);
  };
  const form = h('form', { class: 'grid', id: 'job-form', 'aria-label': 'Create a fine-tuning job' },
    h('label', {}, 'Job id', h('input', { name: '__jobId', pattern: ID_PATTERN, placeholder: 'random' }), h('small', {}, 'optional; ?supervisedFineTuningJobId=')),
    fields.map((f) => h('label', {}, f.name, input(f), h('small', {}, f.help + (f.defaultText ? ` (default: ${f.defaultText})` : '')))),
    Object.entries(lists).map(([k, v]) => h('datalist', { id: `list-${k}` }, v.map((n) => h('option', { value: n })))),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create job')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const f of fields) {
      const raw = form.elements[f.name].value;
      const v = f.multiline && raw.trim() ? raw : raw.trim(); // template text is sent as typed, newlines and all
      // Defaults are the server's. A number shown empty for its default (0 standing for a derived value, e.g. loraAlpha's
      // 2 * loraRank) is sent when typed: a typed 0 is the user's, checked like any value.
      const shownEmpty = f.default === 0 && f.defaultText;
      if (v === '' || (v === String(f.default) && !shownEmpty)) continue;
      body[f.name] = f.kind === 'int' || f.kind === 'number' ? Number(v) : f.kind === 'boolean' ? v === 'true' : v;
    }
    const jobId = form.elements.__jobId.value.trim();
    try {
      const j = await api('POST', `supervisedFineTuningJobs${jobId ? `?supervisedFineTuningJobId=${jobId}` : ''}`, body);
      location.hash = `#/jobs/${id(j.name)}`;
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  });
  return h('div', {}, form, result);
}

// ---- one job: state, live loss curves, hyperparameters, downloads ----
const isActive = (state) => !/COMPLETED|FAILED|CANCELLED|EARLY_STOPPED|DELETED/.test(state ?? '');
async function jobView(jobId, signal) {
  const j = await api('GET', `supervisedFineTuningJobs/${jobId}`);
  if (signal.aborted) return []; // left while loading: no poll, no stream
  const state = h('span', { id: 'job-state' }, j.state);
  const summary = h('dl', { class: 'kv' }, h('dt', {}, 'State'), h('dd', {}, state), h('dt', {}, 'Progress'), h('dd', { id: 'job-progress' }, progress(j.jobProgress)),
    h('dt', {}, 'Backend'), h('dd', { id: 'job-backend' }, '…'), h('dt', {}, 'Created'), h('dd', {}, when(j.createTime)),
    h('dt', {}, 'Status'), h('dd', { id: 'job-status' }, statusText(j)));
  const chartBox = h('div', { id: 'chart', role: 'img', 'aria-label': 'Train and eval loss by step' });
  const points = h('p', { id: 'points', role: 'status' }, '0 points');
  const skip = new Set(['name', 'state', 'status', 'jobProgress', 'createTime', 'updateTime', 'completedTime']);
  const params = h('dl', { class: 'kv', id: 'hyperparameters' }, Object.entries(j).filter(([k]) => !skip.has(k)).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))]));
  const downloads = h('div', { id: 'downloads' });
  const showDownloads = async (job) => {
    if (!/COMPLETED|EARLY_STOPPED/.test(job.state) || !job.outputModel) return;
    try {
      const m = job.outputModel.split('/');
      const d = await api('GET', `/v1/accounts/${m[1]}/models/${m[3]}:getDownloadEndpoint`);
      downloads.replaceChildren(h('ul', {}, Object.entries(d.filenameToSignedUrls ?? {}).map(([f, u]) => h('li', {}, h('a', { href: u, download: f }, f)))));
    } catch (e) { downloads.replaceChildren(errorBox(e)); }
  };
  let downloadsFor = j.state; // the state the downloads were shown for
  showDownloads(j);
  const note = h('p', { id: 'stream-note', role: 'status' });
  const away = (yes) => { note.textContent = yes ? 'The server is not answering; reconnecting…' : ''; };
  const refresh = async () => {
    let now;
    try {
      now = await api('GET', `supervisedFineTuningJobs/${jobId}`);
    } catch (e) {
      if (e instanceof TypeError) away(true); // fetch itself failed: the server is away
      return;
    }
    away(false);
    if (now.state !== downloadsFor) showDownloads(now);
    downloadsFor = now.state;
    state.textContent = now.state;
    $('#job-progress')?.replaceChildren(progress(now.jobProgress));
    $('#job-status')?.replaceChildren(statusText(now));
  };
  // jobProgress moves between state events, and a finished job can be resumed: poll the job while the page is open.
  const poll = setInterval(refresh, 2000);
  const chart = lossChart(chartBox);
  const stopStream = streamMetrics(jobId, {
    row(r) {
      chart.add(r);
      points.textContent = `${chart.count()} points`;
    },
    state(s) {
      state.textContent = s;
      refresh();
    },
    backend(b) { $('#job-backend')?.replaceChildren(b); },
    away,
    active: () => isActive(state.textContent),
  });
  onLeave(signal, () => { stopStream(); clearInterval(poll); });
  return [h('h2', {}, `Job ${jobId}`), summary, note, h('h2', {}, 'Loss'), chartBox, points, h('h2', {}, 'Adapter'), downloads, h('h2', {}, 'Hyperparameters'), params];
}

/** uPlot chart of train_loss and eval_loss by step; add(row) puts a metrics.jsonl row at its step (a row sent again changes nothing). */
function lossChart(el) {
  const steps = [], train = [], evals = [];
  let plot = null;
  const draw = () => {
    const width = Math.max(280, el.clientWidth || 600);
    const data = [steps, train, evals];
    if (!plot) plot = new uPlot({ width, height: 300, scales: { x: { time: false } }, axes: [{ label: 'step' }, { label: 'loss' }],
      series: [{ label: 'step' }, { label: 'train loss', stroke: '#0b5cad', spanGaps: true }, { label: 'eval loss', stroke: '#d92d20', spanGaps: true, points: { show: true } }] }, data, el);
    else plot.setData(data);
  };
  new ResizeObserver(() => plot && plot.setSize({ width: Math.max(280, el.clientWidth), height: 300 })).observe(el);
  const shown = (ys) => ys.filter((y) => y !== null).length;
  return {
    add(row) {
      let i = steps.indexOf(row.step);
      if (i < 0) { steps.push(row.step); train.push(null); evals.push(null); i = steps.length - 1; }
      if (row.train_loss !== undefined) train[i] = row.train_loss;
      if (row.eval_loss !== undefined) evals[i] = row.eval_loss;
      draw();
    },
    count: () => shown(train) + shown(evals),
  };
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

/**
 * Follows the job's :streamMetrics events until the returned stop() is called: reconnects every 2 s while the server
 * is away (on.away(true) until a connection is made), and when a job whose stream ended (a terminal state) is active
 * again (:resume). Each connection sends every row from the start; the chart keys them by step.
 */
function streamMetrics(jobId, on) {
  const ac = new AbortController();
  (async () => {
    while (!ac.signal.aborted) {
      const ended = await readStream(jobId, on, ac.signal);
      if (ac.signal.aborted) return;
      if (!ended) on.away(true);
      do await sleep(2000, ac.signal); while (ended && !on.active() && !ac.signal.aborted);
    }
  })();
  return () => ac.abort();
}

/** One :streamMetrics connection: true when the server ended it (the job is over), false when it broke or never came up. */
async function readStream(jobId, on, signal) {
  try {
    const r = await fetch(`${base()}/supervisedFineTuningJobs/${jobId}:streamMetrics`, { headers: headers(), signal });
    if (!r.ok) return r.status < 500; // 404: the job is gone; 5xx: try again
    on.away(false);
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const type = /^event: (.*)$/m.exec(ev)?.[1];
        const data = /^data: (.*)$/m.exec(ev)?.[1];
        if (!data) continue;
        if (type === 'metrics') on.row(JSON.parse(data));
        else if (type === 'state') on.state(JSON.parse(data).state);
        else if (type === 'backend') on.backend(JSON.parse(data).backend);
      }
    }
  } catch (e) {
    if (e.name !== 'AbortError' && !(e instanceof TypeError)) console.warn(e); // TypeError: the connection broke
    return false;
  }
}

// ---- models and deployments ----
async function modelsView() {
  const list = await listAll('models', 'models');
  const result = h('p', { role: 'status' });
  const deploy = (m) => h('button', { class: 'secondary', type: 'button', onclick: async () => {
    try {
      const d = await api('POST', 'deployments', { baseModel: m.name });
      result.replaceChildren(h('span', { class: 'ok' }, `deployment ${id(d.name)} created (${d.state})`));
    } catch (e) { result.replaceChildren(errorBox(e)); }
  } }, 'Deploy');
  return [h('h2', {}, 'Models'), table([['Model', (m) => m.name], ['Kind', (m) => m.kind], ['State', (m) => m.state], ['Created', (m) => when(m.createTime)], ['', deploy]], list, 'Models'), result];
}

async function deploymentsView() {
  const [deps, dms] = await Promise.all([listAll('deployments', 'deployments'), listAll('deployedModels', 'deployedModels')]);
  const del = (d) => h('button', { class: 'secondary', type: 'button', onclick: async () => { await api('DELETE', `deployments/${id(d.name)}`).catch(() => {}); route(); } }, 'Delete');
  return [h('h2', {}, 'Deployments'), table([['Deployment', (d) => id(d.name)], ['Model', (d) => d.baseModel], ['State', (d) => (d.state === 'FAILED' && d.status?.message ? `FAILED: ${d.status.message}` : d.state)], ['Created', (d) => when(d.createTime)], ['', del]], deps, 'Deployments'),
    h('h2', {}, 'LoRA models loaded'), table([['Model', (d) => d.model], ['Deployment', (d) => id(d.deployment)], ['State', (d) => d.state]], dms, 'Deployed models'),
    h('p', {}, 'Query them with any OpenAI client at ', h('code', {}, `${location.origin}/inference/v1`), '.')];
}

// ---- router ----
let shownView = null; // the AbortController of the view shown or loading; aborted when the user moves on

/** Shows the view of location.hash; a view still loading when route() runs again is dropped, never painted. */
async function route() {
  shownView?.abort();
  const ac = (shownView = new AbortController());
  const hash = location.hash || '#/jobs';
  const [, section, arg] = hash.split('/');
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#/${section}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const views = { datasets: datasetsView, jobs: arg ? (signal) => jobView(arg, signal) : jobsView, models: modelsView, deployments: deploymentsView };
  main.replaceChildren(h('p', {}, 'Loading…'));
  let nodes;
  try {
    nodes = await (views[section] ?? jobsView)(ac.signal);
  } catch (e) {
    nodes = [errorBox(e)];
  }
  if (!ac.signal.aborted) main.replaceChildren(...nodes); // else another view is loading or shown: leave it be
}
// The skip link moves focus only: following its href would make the hash '#main', which route() reads as a route.
$('a.skip').addEventListener('click', (ev) => { ev.preventDefault(); main.focus(); });
window.addEventListener('hashchange', () => { route(); main.focus(); });
route();
