// fleet.mjs: the console's fleet dashboard in headless chromium (run by
// test/integration/console.sh after console.mjs): the numbers, the SVG
// charts, certificate expiries, stale devices, and a command sent to a
// selection as a job whose progress bar completes.  Same environment as
// console.mjs; SHOT's directory gets console-dashboard.png.
import { chromium } from 'playwright-core';

const env = (k) => { if (!process.env[k]) throw new Error(`${k} is not set`); return process.env[k]; };
const BASE = env('BASE'), USER = env('ADMIN_USER'), PASS = env('ADMIN_PASS'), UDID = env('UDID');
const SHOT = env('SHOT');
const WAIT = { timeout: 30000 };
let failed = 0;
async function check(name, fn) {
  try { await fn(); console.log(`ok   ${name}`); } catch (e) {
    failed++; console.log(`FAIL ${name}: ${String(e.message || e).split('\n')[0]}`);
  }
}
function assert(c, why) { if (!c) throw new Error(why); }

const ctx = await chromium.launchPersistentContext(env('PROFILE_DIR') + '-fleet', {
  executablePath: '/usr/bin/chromium', headless: true, ignoreHTTPSErrors: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'],
  viewport: { width: 1280, height: 1100 },
});
const page = ctx.pages()[0] || await ctx.newPage();
const problems = [];
page.on('pageerror', e => problems.push(`page error: ${e.message}`));
page.on('console', m => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
try {
  await check('dashboard: log in and open it', async () => {
    await page.goto(BASE + '/console/#/dashboard');
    await page.locator('#login-form').waitFor(WAIT);
    await page.fill('#login-user', USER);
    await page.fill('#login-pass', PASS);
    await page.click('#login-submit');
    await page.locator('#dashboard').waitFor(WAIT);
  });
  await check('dashboard: the numbers', async () => {
    await page.locator('#stat-devices .num').waitFor(WAIT);
    const n = Number(await page.locator('#stat-devices .num').textContent());
    assert(n >= 1, `devices ${n}`);
  });
  await check('dashboard: six SVG charts, drawn', async () => {
    await page.locator('svg.chart').nth(5).waitFor(WAIT); // fleetui.mjs checks the last three
    assert(await page.locator('svg.chart').count() === 6, 'not 6 charts');
    assert(await page.locator('svg.chart path.line').count() >= 2, 'no lines');
  });
  await check('dashboard: certificate expiries listed', async () => {
    await page.locator('#expiry td', { hasText: 'ca' }).first().waitFor(WAIT);
  });
  await check('dashboard: send a command to a selection, progress to done', async () => {
    await page.fill('#sel-udids', UDID);
    await page.selectOption('#sel-type', 'ProfileList');
    await page.click('#sel-send');
    await page.locator('#sel-note', { hasText: 'done: 1/1' }).waitFor(WAIT);
    const v = await page.locator('#sel-progress').evaluate(e => [e.value, e.max]);
    assert(v[0] === 1 && v[1] === 1, `progress ${v}`);
  });
  await check('dashboard: no stray text where nothing is to show', async () => {
    const t = await page.locator('#dashboard').textContent();
    assert(!/\bnull\b|undefined/.test(t), 'null/undefined on the page');
  });
  await check('dashboard: screenshot', async () => {
    await page.screenshot({ path: SHOT.replace(/[^/]*$/, 'console-dashboard.png'), fullPage: true });
  });
  await check('dashboard: no script errors', async () => {
    const real = problems.filter(p => !/status of 401/.test(p)); // the session probe before login
    assert(real.length === 0, real.join(' | '));
  });
} finally { await ctx.close(); }
console.log(`browser checks done, ${failed} failed`);
