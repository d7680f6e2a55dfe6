// Browser tests of kubetrail's web UI: a real `kubetrail serve` over a store loaded with the
// real audit samples, generated traffic and hostile events, driven by Playwright in Debian's
// Chromium. Numbers on pages are compared with the HTTP API's answers for the same range.
//
// KUBETRAIL_BIN names the binary (default: the release build in CARGO_TARGET_DIR);
// SCREENSHOTS_DIR, when set, receives a screenshot of each page.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(homedir(), '.cache/kubetrail-target');
const bin = process.env.KUBETRAIL_BIN || path.join(targetDir, 'release/kubetrail');
const READ = 'ui-read-token-0123456789abcdef';
const INGEST = 'ui-ingest-token-0123456789abcd';
const shots = process.env.SCREENSHOTS_DIR;

let dir, server, base, browser, context, page;
// A fixed window covering the generated traffic (the last day, to the minute) and one that
// covers everything, the samples' past years and the hostile events included.
const now = new Date();
now.setUTCSeconds(0, 0);
const iso = (d) => d.toISOString().replace('.000Z', 'Z');
const FROM = iso(new Date(now.getTime() - 24 * 3600 * 1000));
const TO = iso(new Date(now.getTime() + 60 * 1000));
const DAY = `range=custom&from=${FROM}&to=${TO}`;
const DAY_API = `from=${FROM}&to=${TO}`;
const ALL = 'range=custom&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z';
const dialogs = [];

function kubetrail(...args) {
  return execFileSync(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
}

async function api(pathAndQuery, init = {}) {
  const r = await fetch(base + pathAndQuery, {
    ...init,
    headers: { authorization: `Bearer ${init.token || READ}`, ...(init.headers || {}) },
  });
  assert.equal(r.status, 200, `${pathAndQuery}: ${await r.clone().text()}`);
  return r.json();
}

const number = (text) => Number(text.replace(/,/g, '').trim());

async function tile(name) {
  return number(await page.locator(`[data-tile="${name}"] .value`).innerText());
}

async function shot(name) {
  if (shots) await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'kubetrail-ui-'));
  const data = path.join(dir, 'data');
  writeFileSync(
    path.join(dir, 'tokens.yaml'),
    `- {name: browser, token: ${READ}, role: read}\n- {name: agent, token: ${INGEST}, role: ingest}\n`,
  );
  // About 30k events ending now, so the default range (24h) has data too.
  writeFileSync(path.join(dir, 'gen.jsonl'), kubetrail('gen', '--events', '30000', '--seed', '11', '--rate', '0.6'));
  // With the detection rules: the generated day has execs and port-forwards that raise alerts.
  kubetrail('import', '--detect', '--data-dir', data, '--cluster', 'prod', path.join(dir, 'gen.jsonl'));
  const samples = readdirSync(path.join(repo, 'testdata/real-audit'))
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => path.join(repo, 'testdata/real-audit', f));
  kubetrail('import', '--data-dir', data, '--cluster', 'samples', ...samples);
  kubetrail('import', '--data-dir', data, '--cluster', 'lab', path.join(here, 'fixtures/hostile.jsonl'));
  kubetrail('import', '--data-dir', data, '--cluster', 'shop', path.join(here, 'fixtures/changes.jsonl'));
  // Requests of the identities the RBAC snapshot below binds.
  kubetrail('import', '--data-dir', data, '--cluster', 'rbac', path.join(repo, 'testdata/rbac/snapshot-requests.jsonl'));

  server = spawn(bin, ['serve', '--data-dir', data, '--tokens-file', path.join(dir, 'tokens.yaml'),
    '--listen', '127.0.0.1:0', '--rbac', path.join(repo, 'testdata/rbac/snapshot.yaml')],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  base = await new Promise((resolve, reject) => {
    let seen = '';
    server.stderr.on('data', (chunk) => {
      seen += chunk;
      const m = seen.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${seen}`)));
  });

  // An agent reports a gap: the overview must show it.
  const status = {
    node: 'cp-1', cluster: 'prod', lagBytes: 0, pendingFiles: 0, shippedEvents: 10, droppedBytes: 4096,
    gaps: [{ id: 'gap-1', file: '/var/log/kubernetes/kubernetes-2026-11-26T10-00-00.000.audit',
      fingerprint: 'abc', fromOffset: 0, bytes: 4096, detectedAt: iso(new Date(now.getTime() - 3600 * 1000)),
      reason: 'deleted before it was read' }],
  };
  const r = await fetch(`${base}/api/v1/agents/status`, {
    method: 'POST', body: JSON.stringify(status),
    headers: { authorization: `Bearer ${INGEST}`, 'content-type': 'application/json' },
  });
  assert.equal(r.status, 200, await r.text());

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  page = await context.newPage();
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('signing in: a wrong token is refused, a read token opens the overview', async () => {
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/login\?next=%2F$/);
  await shot('login');
  await page.fill('#token', 'not-a-token');
  await page.click('button[type=submit]');
  assert.match(await page.locator('p.error').innerText(), /Unknown token/);
  await page.fill('#token', READ);
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/`);
  assert.equal(await page.locator('h1').innerText(), 'Overview');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'kubetrail_session');
  assert.ok(session?.httpOnly, 'HttpOnly session cookie');
  assert.equal(session.sameSite, 'Strict');
  // The default range has data: the generated traffic ends now.
  assert.ok((await tile('requests')) > 1000);
  await shot('overview');
});

test('the overview shows the API\'s numbers for the same range', async () => {
  await page.goto(`${base}/?${DAY}`);
  const o = await api(`/api/v1/audit/reports/overview?${DAY_API}`);
  const want = {
    requests: o.requests, failed: o.failed.total, forbidden: o.forbidden.total,
    deletions: o.deletions.total, exec: o.execAttach.total, secrets: o.secretAccess.total,
    rbac: o.rbacChanges.total, anonymous: o.anonymous.total, gaps: 1,
  };
  for (const [name, value] of Object.entries(want)) {
    assert.equal(await tile(name), value, `tile ${name}`);
  }
  assert.ok(o.requests > 1000 && o.failed.total > 0 && o.execAttach.total > 0);
  // The chart's bars add up to the requests, and each bar tells its value on hover.
  const totals = await page.locator('g.bucket').evaluateAll((gs) => gs.map((g) => Number(g.dataset.total)));
  assert.equal(totals.reduce((a, b) => a + b, 0), o.requests);
  const hover = await page.locator('g.bucket rect title').first().textContent();
  assert.match(hover, /UTC · \w+: [\d,]+$/);
  // A bar opens exactly the requests it counts.
  const bars = await page.locator('a.bar').evaluateAll((as) =>
    as.map((a) => [a.getAttribute('href'), Number(a.querySelector('g.bucket').dataset.total)]));
  assert.ok(bars.length > 10, `${bars.length} linked bars`);
  for (const [href, total] of [bars[0], bars[bars.length - 1]]) {
    await page.goto(base + href);
    assert.equal(number(await page.locator('#match-count').innerText()), total, href);
  }
  await page.goto(`${base}/?${DAY}`);
  // Top users, in the API's order with its counts.
  const rows = await page.locator('#top-users tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.cells[0].innerText, tr.cells[1].innerText]));
  assert.deepEqual(rows, o.topUsers.map((g) => [g.keys[0] || '(none)', g.count.toLocaleString('en-US')]));
  // The gap an agent reported.
  assert.match(await page.locator('#gaps').innerText(), /deleted before it was read/);
  // Counts link to exactly the events behind them: a row of the failed requests (user and
  // code), the busiest resource, the anonymous tile.
  for (const [selector, value] of [
    ['#failed tbody tr:first-child td.num a', '#failed tbody tr:first-child td.num'],
    ['#top-resources tbody tr:first-child td a', '#top-resources tbody tr:first-child td.num'],
    ['[data-tile="anonymous"]', '[data-tile="anonymous"] .value'],
  ]) {
    await page.goto(`${base}/?${DAY}`);
    const shown = number(await page.locator(value).innerText());
    await page.locator(selector).click();
    await page.waitForURL(/\/search\?/);
    assert.equal(number(await page.locator('#match-count').innerText()), shown, selector);
  }
  await page.goto(`${base}/?${DAY}`);
  // Cluster-scoped requests have no namespace to filter by: that row is not a link.
  const namespaces = await page.locator('#top-namespaces tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.cells[0].innerText, tr.cells[0].querySelector('a') !== null]));
  assert.ok(namespaces.some(([name]) => name === '(cluster)'));
  for (const [name, linked] of namespaces) assert.equal(linked, name !== '(cluster)', name);
  // Split by response class instead of verb: same total.
  await page.click('text=by response');
  await page.waitForURL(/by=code/);
  const byCode = await page.locator('g.bucket').evaluateAll((gs) => gs.map((g) => Number(g.dataset.total)));
  assert.equal(byCode.reduce((a, b) => a + b, 0), o.requests);
  assert.match(await page.locator('ul.legend').innerText(), /2xx/);
});

test('filters in the scope bar narrow every panel, and the state is in the URL', async () => {
  await page.goto(`${base}/?${DAY}`);
  await page.fill('.scopeform input[name=namespace]', 'kube-system');
  await page.click('.scopeform button[type=submit]');
  await page.waitForURL(/namespace=kube-system/);
  const o = await api(`/api/v1/audit/reports/overview?${DAY_API}&namespace=kube-system`);
  assert.equal(await tile('requests'), o.requests);
  assert.ok(o.requests > 0);
  // Navigation keeps the scope.
  await page.click('header nav >> text=Resource operations');
  assert.match(page.url(), /\/resources\?.*namespace=kube-system/);
});

test('resource operations equal the API\'s report and drill down to the operations', async () => {
  await page.goto(`${base}/resources?${DAY}`);
  const report = await api(`/api/v1/audit/reports/resources?${DAY_API}`);
  const rows = await page.locator('#resources tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.dataset.resource, ...[...tr.cells].slice(1).map((c) => c.innerText)]));
  assert.deepEqual(rows, report.map((r) => [r.resource,
    ...[r.create, r.update, r.patch, r.delete, r.total].map((n) => n.toLocaleString('en-US'))]));
  await shot('resources');
  // Drill down: a resource's creates.
  const first = report.find((r) => r.create > 0);
  await page.locator(`#resources tr[data-resource="${first.resource}"] td:nth-child(2) a`).click();
  await page.waitForURL(/\/search\?/);
  assert.equal(number(await page.locator('#match-count').innerText()), first.create);
});

test('search: the form filters, results link into the filter, pages follow the cursor', async () => {
  await page.goto(`${base}/search?${DAY}`);
  await page.fill('form.filter input[name=verb]', 'delete');
  await page.click('form.filter button[type=submit]');
  await page.waitForURL(/verb=delete/);
  const agg = await api(`/api/v1/audit/aggregate?${DAY_API}&verb=delete&by=verb`);
  const want = agg.groups.reduce((a, g) => a + g.count, 0);
  assert.equal(number(await page.locator('#match-count').innerText()), want);
  await shot('search');
  // A namespace in the results adds itself to the filter.
  const ns = await page.locator('table.events tbody tr td:nth-child(6) a').first().innerText();
  await page.locator('table.events tbody tr td:nth-child(6) a').first().click();
  await page.waitForURL(/namespace=/);
  const narrowed = await api(`/api/v1/audit/aggregate?${DAY_API}&verb=delete&namespace=${encodeURIComponent(ns)}&by=verb`);
  assert.equal(number(await page.locator('#match-count').innerText()),
    narrowed.groups.reduce((a, g) => a + g.count, 0));
  assert.match(await page.locator('ul.chips').innerText(), new RegExp(`namespace ${ns}`));

  // Paging: the second page continues where the first ended.
  await page.goto(`${base}/search?${DAY}&limit=20`);
  const firstPage = await page.locator('table.events tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.auditId));
  assert.equal(firstPage.length, 20);
  await page.click('#next-page');
  await page.waitForURL(/cursor=/);
  const secondPage = await page.locator('table.events tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.auditId));
  assert.equal(secondPage.length, 20);
  const api40 = await api(`/api/v1/audit/events?${DAY_API}&limit=40`);
  // The identity the store keys by: events without an auditID have a synthetic one.
  assert.deepEqual([...firstPage, ...secondPage], api40.items.map((e) => e.auditID));
});

test('from the overview to an event, its user and its object\'s history', async () => {
  await page.goto(`${base}/?${DAY}`);
  await page.locator('#exec-attach td.num a').first().click();
  await page.waitForURL(/\/search\?/);
  const row = page.locator('table.events tbody tr').first();
  const auditId = await row.getAttribute('data-audit-id');
  await row.locator('td.time a').click();
  await page.waitForURL(/\/event\?/);
  assert.equal(await page.locator('#event-audit-id').innerText(), auditId);
  assert.match(await page.locator('#annotations').innerText(), /Authorization/);
  // The whole event is there, as a tree and as the original JSON.
  const api1 = await api(`/api/v1/audit/events?auditID=${auditId}&${DAY_API}`);
  assert.ok(api1.items.length >= 1);
  await page.click('text=Original JSON');
  const shown = JSON.parse(await page.locator('pre.raw').innerText());
  assert.equal(shown.auditID, auditId);
  await shot('event');

  const user = await page.locator('#event-user').innerText();
  await page.click('#event-user');
  await page.waitForURL(/\/user\?/);
  assert.equal(await page.locator('#user-name').innerText(), user);
  const u = await api(`/api/v1/audit/reports/users?${DAY_API}&user=${encodeURIComponent(user)}`);
  assert.equal(u.length, 1);
  await page.goto(`${base}/user?${DAY}&user=${encodeURIComponent(user)}`);
  assert.equal(await tile('requests'), u[0].requests);
  assert.equal(await tile('writes'), u[0].writes);
  assert.equal(await tile('forbidden'), u[0].forbidden);
  await shot('user');

  await page.goBack();
  await page.goto(`${base}/search?${DAY}&verb=delete&resource=deployments.apps`);
  await page.locator('table.events tbody tr td.time a').first().click();
  await page.waitForURL(/\/event\?/);
  await page.click('#event-history');
  await page.waitForURL(/\/history\?/);
  const name = await page.locator('#object-name').innerText();
  const params = new URL(page.url()).searchParams;
  const history = await api(`/api/v1/audit/history?resource=${params.get('resource')}&name=${encodeURIComponent(name)}&namespace=${params.get('namespace')}&cluster=${params.get('cluster')}`);
  const rows = await page.locator('table.events tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.auditId));
  // The page is newest first, the API oldest first.
  assert.deepEqual(rows, history.items.map((e) => e.auditID).reverse());
  await shot('history');
});

// An exec into a pod by a user whose name is markup, sent to the running server's webhook:
// live detection raises pod-exec on it after the commit.
const hostileExecId = '6f0c1e2d-hostile-exec-8000-000000000009';
async function postHostileExec() {
  const t = iso(new Date(now.getTime() - 5 * 60 * 1000)).replace('Z', '.000000Z');
  const list = { kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: [{
    level: 'Metadata', auditID: hostileExecId, stage: 'ResponseStarted',
    requestURI: '/api/v1/namespaces/default/pods/web/exec?command=sh&container=web&stdin=true',
    verb: 'create', user: { username: '"><img src=x onerror=alert(8)>', groups: ['system:authenticated'] },
    sourceIPs: ['203.0.113.66'], userAgent: '<script>alert(9)</script>',
    objectRef: { resource: 'pods', namespace: 'default', name: 'web', apiVersion: 'v1', subresource: 'exec' },
    responseStatus: { metadata: {}, code: 101 }, requestReceivedTimestamp: t, stageTimestamp: t,
  }] };
  const r = await fetch(`${base}/api/v1/audit/webhook?cluster=lab`, {
    method: 'POST', body: JSON.stringify(list),
    headers: { authorization: `Bearer ${INGEST}`, 'content-type': 'application/json' },
  });
  assert.equal(r.status, 200, await r.text());
  // Detection runs after the acknowledgement: wait for the alert.
  for (let i = 0; i < 200; i++) {
    const a = await api(`/api/v1/alerts?cluster=lab&rule=pod-exec`);
    if (a.alerts.some((x) => x.auditID === hostileExecId)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail('live detection raised no alert for the exec');
}

test('an object\'s history shows what each write changed, and hides the no-op and dry-run writes', async () => {
  const object = 'resource=deployments.apps&namespace=shop&name=web&cluster=shop';
  const history = await api(`/api/v1/audit/history?${object}&diff=true&from=2024-06-03T00:00:00Z&to=2024-06-04T00:00:00Z`);
  assert.equal(history.items.length, 5);
  const visible = history.items.filter((i) => !i.diff.noop && !i.diff.dryRun);
  assert.equal(visible.length, 3, 'one no-op, one dry run');
  await page.goto(`${base}/history?${object}`);
  const rows = () => page.locator('table.events tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.auditId));
  assert.deepEqual(await rows(), visible.map((i) => i.auditID).reverse());
  assert.equal(await page.locator('#hidden-writes').innerText(), '2');
  // The update of the image: its changes, side by side, once opened.
  const update = page.locator(`tr[data-audit-id="${visible[2].auditID}"]`);
  await update.locator('details.changes summary').click();
  const cells = await update.locator('div.diff-row:not(.diff-head)').evaluateAll((rs) => rs.map((r) => [...r.children].map((c) => c.innerText)));
  assert.deepEqual(cells, visible[2].diff.changes.map((c) => [c.path, c.old === undefined ? '' : JSON.stringify(c.old), c.new === undefined ? '' : JSON.stringify(c.new)]));
  assert.deepEqual(cells[0], ['/spec/template/spec/containers/0/image', '"nginx:1.25"', '"nginx:1.27"']);
  await page.locator(`tr[data-audit-id="${visible[1].auditID}"] details.changes summary`).click();
  await shot('history-diff');
  await page.click('text=show them');
  await page.waitForURL(/noop=show/);
  assert.deepEqual(await rows(), history.items.map((i) => i.auditID).reverse());
  assert.equal(await page.locator('tr.noop').count(), 1);
  assert.equal(await page.locator('.badge.dry-run').count(), 1);
  // The event page of the update says what it changed too.
  await page.locator(`tr[data-audit-id="${visible[2].auditID}"] td.time a`).click();
  await page.waitForURL(/\/event\?/);
  await page.locator('#event-changes details.changes summary').click();
  const paths = await page.locator('#event-changes code.path').allInnerTexts();
  assert.deepEqual(paths, visible[2].diff.changes.map((c) => c.path));
});

test('the Changes page lists the newest writes with what each changed, as the API answers it', async () => {
  const scope = 'cluster=shop&range=custom&from=2024-06-03T00:00:00Z&to=2024-06-04T00:00:00Z';
  const apiScope = 'cluster=shop&from=2024-06-03T00:00:00Z&to=2024-06-04T00:00:00Z';
  const feed = await api(`/api/v1/audit/changes?${apiScope}&limit=100`);
  assert.ok(feed.items.length >= 3, 'the fixture has writes');
  assert.equal(feed.hidden, 2, 'one no-op, one dry run');
  // From the navigation, with the scope kept.
  await page.goto(`${base}/?${scope}`);
  await page.click('header nav a:has-text("Changes")');
  await page.waitForURL(/\/changes\?/);
  const rows = () => page.locator('table.changes-feed tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.auditId));
  assert.deepEqual(await rows(), feed.items.map((i) => i.auditID), 'newest first, as the API');
  assert.equal(await page.locator('#hidden-writes').innerText(), '2');
  const image = feed.items.find((i) => i.diff.changes.some((c) => c.path === '/spec/template/spec/containers/0/image'));
  const row = page.locator(`tr[data-audit-id="${image.auditID}"]`);
  await row.locator('details.changes summary').click();
  const paths = await row.locator('code.path').allInnerTexts();
  assert.deepEqual(paths, image.diff.changes.map((c) => c.path));
  await shot('changes');
  // Narrowed by resource, from the form; the object links to its history.
  await page.fill('form.filter input[name=resource]', 'deployments.apps');
  await page.click('form.filter button[type=submit]');
  await page.waitForURL(/resource=deployments.apps/);
  const deployments = await api(`/api/v1/audit/changes?${apiScope}&resource=deployments.apps`);
  assert.deepEqual(await rows(), deployments.items.map((i) => i.auditID));
  await page.locator('a.object').first().click();
  await page.waitForURL(/\/history\?/);
  assert.equal(await page.locator('#object-name').innerText(), 'web');
  // Every write, the hidden ones marked.
  await page.goto(`${base}/changes?${scope}&noop=show`);
  assert.equal((await rows()).length, feed.items.length + 2);
  assert.equal(await page.locator('.badge.dry-run').count(), 1);
  const typo = await page.goto(`${base}/changes?${scope}&noop=maybe`);
  assert.equal(typo.status(), 400);
});

test('the cluster is picked from the clusters the store holds, and an unknown one says so', async () => {
  await page.goto(`${base}/search?${ALL}`);
  const options = await page.locator('form.scopeform select[name=cluster] option').evaluateAll((os) => os.map((o) => o.value));
  const known = (await api('/api/v1/audit/aggregate?by=cluster&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z')).groups.map((g) => g.keys[0]).sort();
  assert.deepEqual(options, ['', ...known]);
  assert.ok(known.includes('samples') && known.includes('prod'), known.join());
  await page.selectOption('form.scopeform select[name=cluster]', 'samples');
  await page.click('form.scopeform button[type=submit]');
  await page.waitForURL(/cluster=samples/);
  const clusters = await page.locator('table.events tbody tr').evaluateAll((trs) => trs.map((t) => t.children[1].innerText));
  assert.ok(clusters.length > 0 && clusters.every((c) => c === 'samples'));
  // A typo is not "0 events" without a word.
  await page.goto(`${base}/?${ALL}&cluster=sampels`);
  assert.match(await page.locator('p.unknown-cluster').innerText(), /No events from cluster sampels in the store — did you mean samples\?/);
  await page.click('p.unknown-cluster a');
  await page.waitForURL(/cluster=samples/);
  assert.equal(await page.locator('p.unknown-cluster').count(), 0);
});

test('an empty range says where the newest events are and links to them', async () => {
  await page.goto(`${base}/?range=1h&cluster=shop`);
  assert.equal(await tile('requests'), 0);
  assert.match(await page.locator('#empty-range').innerText(), /The newest event for this scope is from 2024-06-03 09:30:00 UTC/);
  await page.click('#empty-range a');
  await page.waitForURL(/range=custom/);
  assert.ok((await tile('requests')) > 0);
  assert.equal(await page.locator('#empty-range').count(), 0);
  await page.goto(`${base}/search?range=1h&cluster=shop&verb=delete`);
  assert.match(await page.locator('#empty-range').innerText(), /no events for this scope, in any range/);
});

test('no table cell or panel of the overview overflows, at three widths', async () => {
  for (const width of [1024, 1400, 1920]) {
    await page.setViewportSize({ width, height: 900 });
    await page.goto(`${base}/?${DAY}`);
    const overflowing = await page.evaluate(() => {
      const out = [];
      for (const el of document.querySelectorAll('.panel, .panel td')) {
        if (el.scrollWidth > el.clientWidth + 1) out.push(`${el.tagName} ${el.closest('.panel')?.id || ''}: ${el.innerText.slice(0, 60)}`);
      }
      // A cell is not squeezed to a few letters per line (kub/ern/etes-/adm/in).
      for (const td of document.querySelectorAll('.panel td')) {
        const letters = td.innerText.replace(/\s/g, '').length;
        const style = getComputedStyle(td);
        // The text's own lines (a row is as tall as its tallest cell).
        const text = document.createRange();
        text.selectNodeContents(td);
        const lines = Math.round(text.getBoundingClientRect().height / (parseFloat(style.fontSize) * 1.3));
        if (letters > 8 && letters / Math.max(lines, 1) < 6) out.push(`TD squeezed to ${lines} lines: ${td.innerText.slice(0, 60)}`);
      }
      return out;
    });
    assert.deepEqual(overflowing, [], `at ${width}px`);
    if (width === 1024) await shot('overview-1024');
  }
  await page.setViewportSize({ width: 1400, height: 1000 });
});

test('tables show the cluster and whom an impersonating request acted as', async () => {
  await page.goto(`${base}/search?${ALL}&user=system:admin&stages=final`);
  const cells = await page.locator('table.events tbody tr').evaluateAll((trs) => trs.map((t) => [t.children[1].innerText, t.children[2].innerText]));
  assert.ok(cells.length > 0);
  assert.ok(cells.every(([cluster]) => cluster === 'samples'), JSON.stringify(cells.slice(0, 3)));
  assert.ok(cells.some(([, user]) => user === 'system:admin → bob'), JSON.stringify(cells.slice(0, 3)));
  // The acted-as identity links to its own page.
  await page.locator('a.acting-as', { hasText: 'bob' }).first().click();
  await page.waitForURL(/\/user\?/);
  assert.equal(new URL(page.url()).searchParams.get('user'), 'bob');
});

test('the overview lists the executed commands the API reports, and the fleet every cluster', async () => {
  await page.goto(`${base}/?${DAY}`);
  const o = await api(`/api/v1/audit/reports/overview?${DAY_API}`);
  assert.ok(o.executedCommands.length > 0, 'the generated day has execs');
  const rows = await page.locator('#executed-commands tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.cells[1].innerText, tr.cells[4].innerText]));
  assert.equal(rows.length, o.executedCommands.length);
  o.executedCommands.forEach((c, i) => {
    assert.ok(rows[i][0].startsWith(c.user), `${rows[i][0]} / ${c.user}`);
    if (c.kind === 'exec') assert.ok(rows[i][1].startsWith(c.commandLine), `${rows[i][1]} / ${c.commandLine}`);
  });
  // A command's time opens its request's events.
  await page.locator('#executed-commands tbody tr:first-child td:first-child a').click();
  await page.waitForURL(/\/search\?/);
  assert.ok(number(await page.locator('#match-count').innerText()) >= 1);

  await page.goto(`${base}/fleet?${ALL}`);
  await shot('fleet');
  const fleet = await page.locator('#clusters tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.dataset.cluster, tr.cells[1].innerText, tr.classList.contains('silent')]));
  assert.deepEqual(fleet.map(([c]) => c), ['lab', 'prod', 'rbac', 'samples', 'shop']);
  for (const [cluster, requests] of fleet) {
    const r = await api(`/api/v1/audit/reports/overview?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&cluster=${cluster}`);
    assert.equal(number(requests), r.requests, cluster);
  }
  // prod's generated traffic ends now; the lab and shop fixtures are months old. (Some samples
  // carry no time and are stored at their import: the samples cluster is not asserted.)
  const silent = Object.fromEntries(fleet.map(([c, , s]) => [c, s]));
  assert.deepEqual([silent.prod, silent.lab, silent.shop], [false, true, true]);
});

test('hiding system identities leaves the people, as the API counts them', async () => {
  await page.goto(`${base}/?${DAY}`);
  await page.locator('label.check input[name="user"]').check();
  await page.click('form.scopeform button[type="submit"]');
  await page.waitForURL(/user=%21system%3A\*/);
  const o = await api(`/api/v1/audit/reports/overview?${DAY_API}&user=${encodeURIComponent('!system:*')}`);
  assert.equal(await tile('requests'), o.requests);
  const users = await page.locator('#top-users tr').evaluateAll((trs) => trs.map((tr) => tr.cells[0].innerText));
  assert.ok(users.length > 0 && users.every((u) => !u.startsWith('system:')), JSON.stringify(users));
  assert.ok(await page.locator('label.check input[name="user"]').isChecked());
});

test('the Alerts page shows what the rules raised, as the API answers it', async () => {
  await postHostileExec();
  await page.goto(`${base}/alerts?${DAY}`);
  const listed = await api(`/api/v1/alerts?${DAY_API}&limit=5000`);
  assert.ok(listed.alerts.length > 0, 'the generated day raised alerts');
  // Each severity's tile counts the API's alerts of that severity.
  for (const sev of ['critical', 'high', 'medium', 'low', 'info']) {
    assert.equal(await tile(`sev-${sev}`), listed.alerts.filter((a) => a.severity === sev).length, sev);
  }
  // Newest first, the API's order.
  const rows = await page.locator('table.alerts tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.dataset.rule, tr.dataset.auditId]));
  assert.deepEqual(rows, listed.alerts.slice(0, 500).map((a) => [a.rule, a.auditID]));
  await shot('alerts');
  // At least high: every row is high or critical, and the count is the API's.
  await page.selectOption('form.filter select[name=minSeverity]', 'high');
  await page.click('form.filter button[type=submit]');
  await page.waitForURL(/minSeverity=high/);
  const high = await api(`/api/v1/alerts?${DAY_API}&minSeverity=high&limit=5000`);
  const sevs = await page.locator('table.alerts tbody tr .sev').allInnerTexts();
  assert.equal(sevs.length, Math.min(500, high.alerts.length));
  assert.ok(sevs.every((s) => s === 'high' || s === 'critical'), sevs.join());
  // A rule's alerts, and from an alert to its event, which names the alert.
  await page.goto(`${base}/alerts?${DAY}&rule=pod-exec`);
  const first = page.locator('table.alerts tbody tr').first();
  const auditId = await first.getAttribute('data-audit-id');
  await first.locator('td:last-child a').first().click();
  await page.waitForURL(/\/event\?/);
  assert.equal(await page.locator('#event-audit-id').innerText(), auditId);
  assert.match(await page.locator('#event-alerts').innerText(), /pod-exec/);
  // A typo is refused with the closest rule, not answered "no alerts".
  const typo = await page.goto(`${base}/alerts?${DAY}&rule=pod-exek`);
  assert.equal(typo.status(), 400);
  assert.match(await page.locator('p.error').innerText(), /did you mean "pod-exec"/);
  // The overview's panel counts the same alerts.
  await page.goto(`${base}/?${DAY}`);
  const medium = number(await page.locator('#alerts-by-severity tr[data-severity="medium"] td.num').innerText());
  assert.equal(medium, listed.alerts.filter((a) => a.severity === 'medium').length);
});

test('the rule catalogue lists every running rule with its alerts', async () => {
  await page.goto(`${base}/rules?${DAY}`);
  const { rules } = await api('/api/v1/rules');
  const ids = await page.locator('table.rules > tbody > tr').evaluateAll((trs) => trs.map((t) => t.dataset.rule));
  assert.deepEqual(ids, rules.map((r) => r.id));
  assert.equal(ids.length, 35);
  const execs = await api(`/api/v1/alerts?${DAY_API}&rule=pod-exec&limit=5000`);
  assert.equal(number(await page.locator('tr[data-rule="pod-exec"] td.num').innerText()), execs.alerts.length);
  // What a rule detects, the upstream rules it covers and its parameters unfold in place.
  await page.locator('tr[data-rule="pod-exec"] summary').click();
  assert.match(await page.locator('tr[data-rule="pod-exec"] details').innerText(), /falco/);
  await shot('rules');
  await page.locator('tr[data-rule="pod-exec"] td.num a').click();
  await page.waitForURL(/\/alerts\?.*rule=pod-exec/);
  assert.equal(await page.locator('table.alerts tbody tr').count(), Math.min(500, execs.alerts.length));
});

test('attacker-controlled text is inert on every page', async () => {
  const hostileUser = '"><img src=x onerror=alert(1)>';
  const pages = [
    `/?${ALL}`,
    `/?${ALL}&cluster=lab`,
    `/resources?${ALL}&cluster=lab`,
    `/search?${ALL}&cluster=lab`,
    `/search?${ALL}&text=alert`,
    `/user?${ALL}&user=${encodeURIComponent(hostileUser)}`,
    `/user?${ALL}&user=${encodeURIComponent('<script>alert(7)</script>')}`,
    '/event?cluster=lab&auditID=6f0c1e2d-hostile-4000-8000-000000000001',
    '/event?cluster=lab&auditID=6f0c1e2d-hostile-4000-8000-000000000002',
    `/history?resource=configmaps&namespace=default&name=${encodeURIComponent('javascript:alert(3)')}&cluster=lab`,
    `/alerts?${ALL}&cluster=lab`,
    `/changes?${ALL}&cluster=lab&noop=show`,
    `/rules?${ALL}`,
    `/event?cluster=lab&auditID=${hostileExecId}`,
  ];
  for (const p of pages) {
    const response = await page.goto(base + p);
    assert.equal(response.status(), 200, p);
    const found = await page.evaluate(() => ({
      scripts: document.querySelectorAll('script').length,
      injected: document.querySelectorAll('img[src="x"], iframe, svg[onload], i').length,
      handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
      jsLinks: [...document.querySelectorAll('a[href]')].filter((a) => (a.getAttribute('href') || '').trim().toLowerCase().startsWith('javascript:')).length,
    }));
    assert.deepEqual(found, { scripts: 0, injected: 0, handlers: 0, jsLinks: 0 }, p);
  }
  // And the payloads are shown, as text.
  await page.goto(`${base}/event?cluster=lab&auditID=6f0c1e2d-hostile-4000-8000-000000000001`);
  const text = await page.locator('main').innerText();
  for (const payload of ['<script>alert(2)</script>', hostileUser, 'javascript:alert(3)', '<script>alert(4)</script>', 'example.com/<i>note</i>']) {
    assert.ok(text.includes(payload), `shown as text: ${payload}`);
  }
  await page.goto(`${base}/search?${ALL}&cluster=lab`);
  assert.ok((await page.locator('main').innerText()).includes('<script>alert(7)</script>'));
  assert.deepEqual(dialogs, [], 'no script ran');
});

test('the user page compares granted with used and offers the least-privilege role the API suggests', async () => {
  const range = 'from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z';
  await page.goto(`${base}/user?range=custom&${range}&user=alice`);
  const unused = await api(`/api/v1/rbac/unused?user=alice&${range}`);
  const rows = await page.locator('#permissions table.permissions').first().locator('tbody tr').count();
  assert.equal(rows, unused.subjects[0].permissions.length);
  assert.equal(await page.locator('#permissions tr.unused').count(), unused.subjects[0].unused);
  assert.match(await page.locator('#permissions').innerText(), /list configmaps -n dev/);
  // The role shown is the API's, byte for byte, and the download holds the same text.
  const r = await fetch(`${base}/api/v1/rbac/suggest?user=alice&format=yaml&${range}`,
    { headers: { authorization: `Bearer ${READ}` } });
  assert.equal(r.status, 200);
  const yaml = await r.text();
  assert.equal((await page.locator('#least-privilege pre.yaml').innerText()).trimEnd(), yaml.trimEnd());
  const href = await page.locator('#least-privilege a[download]').getAttribute('href');
  assert.equal(decodeURIComponent(href.replace('data:application/yaml;charset=utf-8,', '')), yaml);
  await shot('user-rbac');
});

test('signing out ends the session', async () => {
  await page.goto(`${base}/`);
  await page.click('text=Sign out');
  await page.waitForURL(/\/login$/);
  await page.goto(`${base}/search`);
  assert.match(page.url(), /\/login\?next=/);
});
