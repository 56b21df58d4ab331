// The dashboard in headless Chromium (as dashboard.test.ts) against a real `lorasft serve` whose store is seeded
// directly, no training: lists longer than the API's largest page (200 rows) are shown whole, the jobs list keeps
// polling one page, and a view that is still loading when the user moves on does not paint over the next one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { tmpDir } from '../helpers/index.ts';
import { openStore, type Store } from '../../src/serve/store.ts';
import { startServe, stopAllServers, type Serve } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];
const N = 205; // more than one page of the API (pageSize is at most 200)

let data: string;
let srv: Serve;
let browser: Browser;

const num = (i: number) => String(i).padStart(3, '0');
const time = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();

/** Rows as the service writes them (the oldest, number 000, is on the last page: lists are newest first). */
function seedJob(store: Store, account: string, id: string, i: number): void {
  const name = `accounts/${account}/supervisedFineTuningJobs/${id}`;
  const state = 'JOB_STATE_COMPLETED';
  const body = { name, state, createTime: time(i), updateTime: time(i), jobProgress: { percent: 100 } };
  store.insert({ kind: 'job', name, account, state, body, meta: { dir: path.join(data, 'jobs', account, id) } });
}

function seed(store: Store): void {
  for (let i = 0; i < N; i++) {
    const ds = `accounts/local/datasets/ds-${num(i)}`;
    const dsBody = { name: ds, state: 'READY', exampleCount: '1', createTime: time(i) };
    store.insert({ kind: 'dataset', name: ds, account: 'local', state: 'READY', body: dsBody, meta: {} });
    const m = `accounts/local/models/m-${num(i)}`;
    const mBody = { name: m, kind: 'HF_BASE_MODEL', state: 'READY', createTime: time(i) };
    store.insert({ kind: 'model', name: m, account: 'local', state: 'READY', body: mBody, meta: {} });
    seedJob(store, 'local', `job-${num(i)}`, i);
  }
  const team = 'accounts/team/datasets/team-ds'; // a job of account local may train on it (by its full name)
  const body = { name: team, state: 'READY', exampleCount: '1', createTime: time(N) };
  store.insert({ kind: 'dataset', name: team, account: 'team', state: 'READY', body, meta: {} });
}

beforeAll(async () => {
  data = path.join(tmpDir('dashlists'), 'data');
  const store = openStore(data);
  seed(store);
  store.close();
  srv = await startServe(data, ['--workers', '1', '--no-demo-model']);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, timeout: 120_000 });
});

afterAll(async () => {
  await browser?.close();
  await stopAllServers();
});

/** A page at `hash` of the test server whose console errors fail `check()`. */
async function open(hash: string): Promise<{ page: Page; check(): void }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && errors.push(`${m.text()} (${m.location().url})`)));
  page.on('pageerror', (e) => errors.push(String(e)));
  if (hash) await page.goto(`${srv.url}/${hash}`);
  return { page, check: () => expect(errors).toEqual([]) };
}

const rows = (page: Page, sel: string) => page.locator(`${sel} tbody tr`).count();

describe('dashboard lists and routing (headless Chromium)', () => {
  it("shows every dataset, model and job past the first page (was: the newest 200), and the job form offers every account's datasets", async () => {
    const { page, check } = await open('#/datasets');
    await expect.poll(() => rows(page, '#datasets-table')).toBe(N); // the account's own: not team-ds
    expect(await page.textContent('#datasets-table')).toContain('ds-000');
    await page.goto(`${srv.url}/#/models`);
    await expect.poll(() => page.locator('main tbody tr', { hasText: /m-\d{3}/ }).count()).toBe(N);
    await page.goto(`${srv.url}/#/jobs`);
    await page.waitForSelector('#job-form');
    expect(await rows(page, '#jobs-table')).toBe(N);
    expect(await page.textContent('#jobs-table')).toContain('job-000');
    const datasets = await page.$$eval('#list-dataset option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    // Every account's, as for base models: a job takes any account's dataset (was: account local's only).
    expect(datasets.length).toBe(N + 1);
    expect(datasets).toContain('accounts/local/datasets/ds-000');
    expect(datasets).toContain('accounts/team/datasets/team-ds');
    check();
    await page.close();
  });

  it("GET /v1/accounts/-/datasets lists every account's datasets, page after page", async () => {
    const names: string[] = [];
    let token = '';
    do {
      const r = await fetch(`${srv.url}/v1/accounts/-/datasets?pageSize=200${token ? `&pageToken=${token}` : ''}`);
      const j = await r.json();
      expect(r.status, JSON.stringify(j)).toBe(200);
      names.push(...j.datasets.map((d: { name: string }) => d.name));
      token = j.nextPageToken;
    } while (token);
    expect(names.length).toBe(N + 1);
    expect(names[0]).toBe('accounts/team/datasets/team-ds'); // newest first
  });

  it('the jobs list polls one page and keeps the older rows: a new job shows at the top, job-000 stays', async () => {
    const { page, check } = await open('#/jobs');
    await page.waitForSelector('#job-form');
    const asked: string[] = [];
    page.on('request', (r) => void (/supervisedFineTuningJobs\?/.test(r.url()) && asked.push(r.url())));
    const since = Date.now();
    const store = openStore(data);
    seedJob(store, 'local', 'job-new', N);
    store.close();
    const first = () => page.locator('#jobs-table tbody tr').first().textContent();
    await expect.poll(first, { timeout: 30_000, interval: 200 }).toContain('job-new');
    expect(await rows(page, '#jobs-table')).toBe(N + 1);
    expect(await page.textContent('#jobs-table')).toContain('job-000');
    // One request a poll (every 2 s), not one a page (was: one request a poll, of the newest 200 only).
    expect(asked.length, asked.join('\n')).toBeLessThanOrEqual((Date.now() - since) / 2000 + 1);
    expect(asked.filter((u) => /pageToken=/.test(u))).toEqual([]);
    check();
    await page.close();
  });

  it('shows every deployment and loaded model past the first page', async () => {
    const { page, check } = await open('');
    const pages = (field: string, item: (n: number) => object) => (u: URL) => {
      const second = u.searchParams.get('pageToken') === 'p2';
      return { [field]: [item(second ? 2 : 1)], nextPageToken: second ? '' : 'p2' };
    };
    const answers: Record<string, (u: URL) => object> = {
      deployments: pages('deployments', (n) => ({ name: `accounts/local/deployments/dep-${n}`, state: 'READY' })),
      deployedModels: pages('deployedModels', (n) => ({ name: `x/deployedModels/dm-${n}`, model: `lora-${n}` })),
    };
    await page.route(/\/v1\/accounts\/local\/(deployments|deployedModels)(\?|$)/, (route) => {
      const u = new URL(route.request().url());
      const body = answers[u.pathname.split('/').pop()!](u);
      return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
    });
    await page.goto(`${srv.url}/#/deployments`);
    await expect.poll(() => page.textContent('main')).toContain('dep-1');
    const text = await page.textContent('main');
    for (const s of ['dep-1', 'dep-2', 'lora-1', 'lora-2']) expect(text).toContain(s);
    check();
    await page.close();
  });

  it('a job page still loading when the user moves on neither paints over the next view nor starts its poll and stream', async () => {
    const { page, check } = await open('');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await page.route(/\/supervisedFineTuningJobs\/job-000$/, async (route) => {
      await held;
      await route.continue().catch(() => {}); // (a request the page gave up on)
    });
    const asked: string[] = [];
    page.on('request', (r) => void (/job-000/.test(r.url()) && asked.push(r.url())));
    await page.goto(`${srv.url}/#/jobs/job-000`);
    await expect.poll(() => page.textContent('main')).toBe('Loading…');
    await page.evaluate(() => (location.hash = '#/datasets'));
    await page.waitForSelector('#upload-form');
    const answered = page.waitForResponse(/\/supervisedFineTuningJobs\/job-000$/);
    release();
    await answered;
    await page.waitForTimeout(3000); // the job page polls every 2 s and opens its stream at once
    expect(await page.locator('#upload-form').count()).toBe(1); // (was: the job page, painted over the datasets)
    expect(await page.locator('#chart').count()).toBe(0);
    expect(asked).toEqual([`${srv.url}/v1/accounts/local/supervisedFineTuningJobs/job-000`]);
    check();
    await page.close();
  });
});
