// console.mjs: the web console in a real browser (headless Debian chromium
// driven by playwright-core), run by test/integration/console.sh, which
// starts Redis, mdmd, the mock APNs and a simulated device first.
//
// Environment: BASE (https://localhost:PORT), ADMIN_USER, ADMIN_PASS, UDID
// (the device to find), SERIAL (its serial number), UDID_EVIL (a device
// whose name is markup), PROFILE (a .mobileconfig to upload), SHOT
// (screenshot path), PROFILE_DIR (a fresh --user-data-dir).
// Prints "ok   NAME" / "FAIL NAME: why" per check; exits 0 unless the
// browser could not be driven at all.  Every wait is for a condition on the
// page with a deadline, never a fixed sleep.
import { chromium, request } from 'playwright-core';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const BASE = env('BASE');
const USER = env('ADMIN_USER');
const PASS = env('ADMIN_PASS');
const UDID = env('UDID');
const SERIAL = env('SERIAL');
const SHOT = env('SHOT');
// Screenshots of the other pages go next to the device page's, for people.
const shot = (name) => page.screenshot({ path: SHOT.replace(/[^/]*$/, `console-${name}.png`), fullPage: true });
const WAIT = { timeout: 30000 };

let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${String(e.message || e).split('\n')[0]}`);
  }
}
function assert(cond, why) { if (!cond) throw new Error(why); }

// A fresh profile directory per run (--user-data-dir): playwright passes it
// itself for a persistent context.  The server certificate comes from the
// test's throwaway CA: the browser is told to accept it (loopback only).
const ctx = await chromium.launchPersistentContext(env('PROFILE_DIR'), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  ignoreHTTPSErrors: true,
  viewport: { width: 1280, height: 900 },
});
const page = ctx.pages()[0] || await ctx.newPage();
const problems = [];
page.on('pageerror', e => problems.push(`page error: ${e.message}`));
// While a check expects a refusal, the browser's own log line for that 400 is no problem.
let expect400 = false;
page.on('console', m => {
  if (m.type() === 'error' && !(expect400 && /status of 400/.test(m.text()))) problems.push(`console: ${m.text()}`);
});

try {
  await check('/ redirects to the console login', async () => {
    await page.goto(BASE + '/');
    assert(new URL(page.url()).pathname === '/console/', `landed on ${page.url()}`);
    await page.locator('#login-form').waitFor(WAIT);
    await shot('login');
  });

  await check('a wrong password is refused on the page', async () => {
    await page.fill('#login-user', USER);
    await page.fill('#login-pass', 'not-the-password');
    await page.click('#login-submit');
    await page.getByText('Wrong username or password.').waitFor(WAIT);
  });

  await check('login shows the device list', async () => {
    await page.fill('#login-user', USER);
    await page.fill('#login-pass', PASS);
    await page.click('#login-submit');
    await page.locator('#devices tbody tr[data-udid]').first().waitFor(WAIT);
    assert((await page.textContent('#who-name')) === USER, 'user name not in the header');
  });

  await check('the session cookie is HttpOnly, Secure, SameSite=Strict', async () => {
    const c = (await ctx.cookies()).find(x => x.name === '__Host-mdmd_session');
    assert(c, 'no session cookie');
    assert(c.httpOnly && c.secure && c.sameSite === 'Strict', JSON.stringify(c));
    assert(/^[0-9a-f]{64}$/.test(c.value), 'not a 256-bit hex id');
    assert(await page.evaluate(() => document.cookie) === '', 'the page can read the cookie');
  });

  await check('search by serial number prefix (any case) finds the device', async () => {
    await page.fill('#device-search', SERIAL.slice(0, -1).toLowerCase() + SERIAL.slice(-1));
    await page.locator(`#devices tbody tr[data-udid="${UDID}"]`).waitFor(WAIT);
    await page.waitForFunction(() => document.querySelectorAll('#devices tbody tr[data-udid]').length === 1,
      null, WAIT);
  });

  await check('a search without a match says so', async () => {
    await page.fill('#device-search', 'zz-no-such-device');
    await page.getByText('No device matches').waitFor(WAIT);
  });

  await check('a device name with markup stays text', async () => {
    await page.fill('#device-search', env('UDID_EVIL'));
    const row = page.locator(`#devices tbody tr[data-udid="${env('UDID_EVIL')}"]`);
    await row.waitFor(WAIT);
    assert((await row.textContent()).includes('<img'), 'the name is not shown as text');
    assert(await page.locator('#devices img').count() === 0, 'the name became markup');
  });

  await check('search by UDID prefix, then open the device page', async () => {
    await page.fill('#device-search', UDID.slice(0, 10));
    await page.waitForFunction(() => document.querySelectorAll('#devices tbody tr[data-udid]').length > 1,
      null, WAIT);
    await shot('devices');
    await page.locator(`#devices tbody tr[data-udid="${UDID}"]`).click(WAIT);
    await page.locator('#device-udid').waitFor(WAIT);
    assert((await page.textContent('#device-udid')) === UDID, 'another device');
    await page.locator('#card-enrollment [data-field=state]', { hasText: 'enrolled' }).waitFor(WAIT);
  });

  let uuid = '';
  await check('issue DeviceInformation from the command form', async () => {
    await page.locator('#cmd-type').waitFor(WAIT);
    assert(await page.locator('#cmd-type option').count() > 50, 'the RequestType list is short');
    await page.selectOption('#cmd-type', 'DeviceInformation');
    assert((await page.inputValue('#cmd-Queries')).includes('DeviceName'), 'Queries not prefilled');
    await page.click('#cmd-send');
    const t = page.locator('.toast', { hasText: 'DeviceInformation queued' });
    await t.waitFor(WAIT);
    uuid = (/\(([0-9A-F-]{36})\)/.exec(await t.textContent()) || [])[1] || '';
    assert(uuid, 'no command UUID in the confirmation');
  });

  await check('the device answers and the result appears in the history', async () => {
    const entry = page.locator(`#history details[data-uuid="${uuid}"]`);
    await entry.locator('.badge', { hasText: 'Acknowledged' }).waitFor({ timeout: 45000 });
    await entry.locator('summary').click();
    const json = entry.locator('pre.json').last();
    await json.waitFor(WAIT);
    const text = await json.textContent();
    assert(text.includes('QueryResponses') && text.includes(UDID), 'result JSON lacks QueryResponses');
  });

  await check('the device page shows the answer, the empty queue and the push', async () => {
    await page.locator('#card-info [data-field=device_name]', { hasText: UDID }).waitFor(WAIT);
    await page.locator('#card-info [data-field=info_updated_at]').waitFor(WAIT);
    await page.locator('#queue', { hasText: 'Nothing queued.' }).waitFor(WAIT);
    await page.locator('#card-push [data-field=last_push_outcome]', { hasText: 'ok' }).waitFor(WAIT);
  });

  await check('screenshot of the device page', async () => {
    await page.evaluate(() => { document.querySelectorAll('.toast').forEach(t => t.remove()); window.scrollTo(0, 0); });
    await page.screenshot({ path: SHOT, fullPage: true });
  });

  await check('push now', async () => {
    await page.click('#push-now');
    await page.locator('.toast', { hasText: 'Push sent' }).waitFor(WAIT);
  });

  await check('Return to Service: on with app preservation, then back to the fleet\'s', async () => {
    await page.locator('#rts-state', { hasText: 'fleet' }).waitFor(WAIT);
    await page.click('#rts-apps');
    await page.locator('#rts-state', { hasText: 'app preservation' }).waitFor(WAIT);
    await page.click('#rts-fleet');
    await page.locator('#rts-state', { hasText: 'fleet' }).waitFor(WAIT);
  });

  await check('users page lists the admin', async () => {
    await page.click('#nav a[data-page=users]');
    await page.locator(`#users tr[data-user="${USER}"]`).waitFor(WAIT);
    await shot('users');
  });

  // confirm() dialogs (delete) are accepted, as a user would.
  page.on('dialog', d => d.accept());

  await check('profiles: upload a .mobileconfig, assign it, delete it', async () => {
    await page.click('#nav a[data-page=profiles]');
    const card = page.locator('section.card', { has: page.getByRole('heading', { name: 'Configuration profiles' }) });
    await card.locator('input[type=file]').setInputFiles(env('PROFILE'));
    await card.getByRole('button', { name: 'Upload' }).click();
    const row = () => card.locator('tbody tr', { hasText: 'com.example.console' });
    await row().waitFor(WAIT);
    await row().getByRole('button', { name: 'Assign' }).click();
    await row().locator('input[type=checkbox]').check();
    await row().getByRole('button', { name: 'Save' }).click();
    await row().locator('.badge', { hasText: 'everyone' }).waitFor(WAIT);
    await shot('profiles');
    await row().getByRole('button', { name: 'Delete' }).click();
    await row().waitFor({ state: 'detached', timeout: 30000 });
  });

  await check('apps: publish an App Store app, delete it', async () => {
    await page.click('#nav a[data-page=apps]');
    const card = page.locator('section.card', { has: page.getByRole('heading', { name: 'Apps', exact: true }) });
    await card.getByPlaceholder('bundle id').fill('com.example.consoleapp');
    await card.getByPlaceholder('display name').fill('Console App');
    await card.getByPlaceholder('iTunes store id').fill('123456789');
    await card.getByRole('button', { name: 'Publish' }).click();
    const row = card.locator('tbody tr', { hasText: 'com.example.consoleapp' });
    await row.locator('td', { hasText: '123456789' }).waitFor(WAIT);
    await row.getByRole('button', { name: 'Delete' }).click();
    await row.waitFor({ state: 'detached', timeout: 30000 });
  });

  await check('declarations: a bad one is refused, naming the key', async () => {
    await page.click('#nav a[data-page=declarations]');
    await page.locator('#card-declarations').waitFor(WAIT);
    await page.fill('#declaration-json', JSON.stringify({
      Type: 'com.apple.configuration.softwareupdate.enforcement.specific', Identifier: 'com.example.console-os',
      Payload: { TargetOSVersion: '18.2' } }));
    expect400 = true;
    await page.getByRole('button', { name: 'Save declaration' }).click();
    await page.locator('#declaration-error', { hasText: 'Payload.TargetLocalDateTime is required' }).waitFor(WAIT);
    expect400 = false;
  });

  await check('declarations: save one and an activation, group them, assign to everyone', async () => {
    const save = async (d) => {
      await page.fill('#declaration-json', JSON.stringify(d));
      await page.getByRole('button', { name: 'Save declaration' }).click();
      await page.locator(`#declarations tr[data-id="${d.Identifier}"]`).waitFor(WAIT);
    };
    await save({ Type: 'com.apple.configuration.softwareupdate.enforcement.specific', Identifier: 'com.example.console-os',
      Payload: { TargetOSVersion: '18.2', TargetLocalDateTime: '2026-12-31T18:00:00' } });
    await save({ Type: 'com.apple.activation.simple', Identifier: 'com.example.console-act',
      Payload: { StandardConfigurations: ['com.example.console-os'] } });
    const card = page.locator('#card-sets');
    await card.getByPlaceholder('set name').fill('console');
    await card.getByPlaceholder('declaration identifiers').fill('com.example.console-os, com.example.console-act');
    await card.getByRole('button', { name: 'Save set' }).click();
    const row = page.locator('#sets tr[data-set="console"]');
    await row.waitFor(WAIT);
    await row.getByRole('button', { name: 'Assign' }).click();
    await row.locator('input[type=checkbox]').check();
    await row.getByRole('button', { name: 'Save' }).click();
    await row.locator('.badge', { hasText: 'everyone' }).waitFor(WAIT);
    await shot('declarations');
  });

  await check('the device syncs and its page shows the declarative status', async () => {
    await page.goto(`${BASE}/console#/device/${encodeURIComponent(UDID)}`);
    // The card loads once per render: reload until the device's report is in.
    const row = page.locator('#card-ddm tr[data-declaration="com.example.console-os"]');
    const deadline = Date.now() + 30000;
    for (;;) {
      try { await row.waitFor({ timeout: 2000 }); break; } catch (e) {
        assert(Date.now() < deadline, 'no declarative status on the device page');
        await page.reload();
      }
    }
    await page.locator('#card-ddm tr[data-item="softwareupdate.install-state"]').waitFor(WAIT);
  });

  await check('fleet status: devices not on 18.2', async () => {
    await page.click('#nav a[data-page=declarations]');
    await page.fill('#fleet-item', 'device.operating-system.version');
    await page.fill('#fleet-value', '18.2');
    await page.check('#fleet-not');
    await page.getByRole('button', { name: 'Find devices' }).click();
    await page.locator(`#fleet tr[data-enrollment="${UDID}"]`).waitFor(WAIT);
  });

  let old = '';
  await check('logout returns to the login page', async () => {
    old = ((await ctx.cookies()).find(x => x.name === '__Host-mdmd_session') || {}).value || '';
    await page.click('#logout');
    await page.locator('#login-form').waitFor(WAIT);
    await page.getByText('You have logged out.').waitFor(WAIT);
  });

  await check('the old session no longer works', async () => {
    assert(old, 'no cookie was captured');
    const api = await request.newContext({ ignoreHTTPSErrors: true,
      extraHTTPHeaders: { Cookie: `__Host-mdmd_session=${old}` } });
    const r = await api.get(BASE + '/console/api/session');
    await api.dispose();
    assert(r.status() === 401, `status ${r.status()}`);
    await page.goto(BASE + '/console/#/devices');
    await page.locator('#login-form').waitFor(WAIT);
  });

  await check('no script errors or CSP violations on the way', async () => {
    // The wrong-password and post-logout 401s are expected resource errors.
    const real = problems.filter(p => !/status of 401/.test(p));
    assert(real.length === 0, real.join(' | '));
  });
} finally {
  await ctx.close();
}
console.log(`browser checks done, ${failed} failed`);
