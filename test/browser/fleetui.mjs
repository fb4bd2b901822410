// fleetui.mjs: the dashboard's live activity feed, its OS-version and
// per-minute command/push charts, and queue surgery on a device page, in
// headless chromium (run by test/integration/fleetui.sh).  Environment:
// BASE, ADMIN_USER, ADMIN_PASS, UDID (a device with three commands queued:
// one sent, one NotNow'd, one waiting), UDID2 (shares a command with UDID:
// X_UUID), REDIS_PORT, SHOTDIR (screenshots), PROFILE_DIR.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';

const env = (k) => { if (!process.env[k]) throw new Error(`${k} is not set`); return process.env[k]; };
const BASE = env('BASE'), UDID = env('UDID'), UDID2 = env('UDID2'), X = env('X_UUID');
const SHOTDIR = env('SHOTDIR');
const WAIT = { timeout: 30000 };
let failed = 0;
async function check(name, fn) {
  try { await fn(); console.log(`ok   ${name}`); } catch (e) {
    failed++; console.log(`FAIL ${name}: ${String(e.message || e).split('\n')[0]}`);
  }
}
function assert(c, why) { if (!c) throw new Error(why); }
const redis = (...a) => execFileSync('redis-cli', ['-p', env('REDIS_PORT'), ...a]).toString().trim();

const ctx = await chromium.launchPersistentContext(env('PROFILE_DIR'), {
  executablePath: '/usr/bin/chromium', headless: true, ignoreHTTPSErrors: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'],
  viewport: { width: 1280, height: 1300 },
});
const page = ctx.pages()[0] || await ctx.newPage();
const problems = [];
page.on('pageerror', e => problems.push(`page error: ${e.message}`));
page.on('console', m => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
page.on('dialog', d => d.accept()); // confirm() of delete and cancel, as a user would
const api = (method, path) => page.evaluate(async ([m, p]) => {
  const r = await fetch('/console/api' + p, { method: m, credentials: 'same-origin' });
  return r.json();
}, [method, path]);
try {
  await check('log in, the dashboard', async () => {
    await page.goto(BASE + '/console/#/dashboard');
    await page.locator('#login-form').waitFor(WAIT);
    await page.fill('#login-user', env('ADMIN_USER'));
    await page.fill('#login-pass', env('ADMIN_PASS'));
    await page.click('#login-submit');
    await page.locator('#dashboard').waitFor(WAIT);
  });
  await check('live feed: connected, with the backlog (the enrollments)', async () => {
    await page.locator('#feed-state', { hasText: 'live' }).waitFor(WAIT);
    await page.locator(`#feed-list li[data-type="enrolled"]`).first().waitFor(WAIT);
  });
  await check('live feed: an event that happens now appears at the top', async () => {
    const t0 = Date.now();
    const id = redis('xadd', 'mdm:events', '*', 'type', 'live_probe', 'udid', 'LIVE-1', 'time', String(t0));
    const li = page.locator(`#feed-list li[data-id="${id}"]`);
    await li.waitFor(WAIT);
    console.log(`     (it appeared ${Date.now() - t0} ms after the XADD)`);
    assert(await page.locator('#feed-list li').first().getAttribute('data-id') === id, 'not the first entry');
    assert((await li.textContent()).includes('LIVE-1'), 'no udid');
  });
  await check('charts: OS versions (2 bars: 17.5 and 18.1)', async () => {
    await page.locator('#chart-os rect.bar').nth(1).waitFor(WAIT);
    assert(await page.locator('#chart-os rect.bar').count() === 2, 'not 2 bars');
    const t = await page.locator('#chart-os').textContent();
    assert(t.includes('17.5') && t.includes('18.1'), t);
  });
  await check('charts: command results per minute, with Acknowledged, Error and NotNow', async () => {
    await page.locator('#chart-cmd rect.seg').first().waitFor(WAIT);
    const t = await page.locator('#chart-cmd').textContent();
    assert(t.includes('Acknowledged') && t.includes('Error') && t.includes('NotNow'), t);
  });
  await check('charts: push outcomes per minute', async () => {
    await page.locator('#chart-push rect.seg').first().waitFor(WAIT);
    assert((await page.locator('#chart-push').textContent()).includes('ok'), 'no ok');
  });
  await check('dashboard: screenshot', async () => {
    await page.screenshot({ path: SHOTDIR + '/console-dashboard-live.png', fullPage: true });
  });

  // --- queue surgery on the device page ---
  await check('device page: the pending queue with states and times', async () => {
    await page.goto(BASE + '/console/#/device/' + encodeURIComponent(UDID));
    await page.locator('#pending details').nth(2).waitFor(WAIT);
    const states = await page.locator('#pending details').evaluateAll(d => d.map(e => e.dataset.state));
    assert(JSON.stringify(states) === '["notnow","queued","queued"]' || states.includes('sent'),
      `states ${states}`);
    assert(states.includes('notnow'), `no NotNow: ${states}`);
    await page.locator('#pending .badge', { hasText: 'NotNow' }).first().waitFor(WAIT);
    assert((await page.locator('#pending').textContent()).includes('queued 20'), 'no time');
    await page.locator('#card-queue').screenshot({ path: SHOTDIR + '/console-queue-states.png' });
  });
  await check('device page: a command\'s body', async () => {
    const first = page.locator('#pending details').first();
    await first.locator('summary').click();
    await first.locator('pre.plist').waitFor(WAIT);
    assert((await first.locator('pre.plist').textContent()).includes('<key>RequestType</key>'), 'no plist');
  });
  await check('device page: urgent enqueue goes to the head', async () => {
    await page.locator('#cmd-type').waitFor(WAIT);
    await page.selectOption('#cmd-type', 'DeviceLock');
    await page.check('#cmd-urgent');
    await page.click('#cmd-send');
    await page.locator('.toast', { hasText: 'DeviceLock queued at the head' }).waitFor(WAIT);
    await page.locator('#pending details').first().locator('strong', { hasText: 'DeviceLock' }).waitFor(WAIT);
    const q = await api('GET', `/devices/${encodeURIComponent(UDID)}/commands/pending`);
    assert(q[0].request_type === 'DeviceLock', `head is ${q[0].request_type}`);
  });
  await check('device page: delete one command', async () => {
    const before = await api('GET', `/devices/${encodeURIComponent(UDID)}/commands/pending`);
    const victim = before.find(c => c.uuid !== X && c.request_type !== 'DeviceLock');
    const d = page.locator(`#pending details[data-uuid="${victim.uuid}"]`);
    if (!(await d.evaluate(e => e.open))) await d.locator('summary').click();
    await d.locator('.q-delete').click();
    await page.locator(`#pending details[data-uuid="${victim.uuid}"]`).waitFor({ state: 'detached', ...WAIT });
    const after = await api('GET', `/devices/${encodeURIComponent(UDID)}/commands/pending`);
    assert(after.length === before.length - 1 && !after.some(c => c.uuid === victim.uuid), 'still queued');
  });
  await check('device page: cancel a command everywhere (a job), gone from both devices', async () => {
    const d = page.locator(`#pending details[data-uuid="${X}"]`);
    await d.waitFor(WAIT);
    if (!(await d.evaluate(e => e.open))) await d.locator('summary').click();
    await d.locator('.q-cancel').click();
    await page.locator('.toast', { hasText: 'Cancelled on 2 device(s)' }).waitFor(WAIT);
    for (const u of [UDID, UDID2]) {
      const q = await api('GET', `/devices/${encodeURIComponent(u)}/commands/pending`);
      assert(!q.some(c => c.uuid === X), `still on ${u}`);
    }
  });
  await check('device page: screenshot of the queue', async () => {
    await page.locator('#pending details').first().locator('summary').click();
    await page.locator('#card-queue').screenshot({ path: SHOTDIR + '/console-queue.png' });
    await page.screenshot({ path: SHOTDIR + '/console-device-queue.png', fullPage: true });
  });
  await check('no script errors', async () => {
    const real = problems.filter(p => !/status of 401/.test(p)); // the session probe before login
    assert(real.length === 0, real.join(' | '));
  });
} finally { await ctx.close(); }
console.log(`browser checks done, ${failed} failed`);
