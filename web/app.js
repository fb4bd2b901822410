'use strict';
/* Mobile Manager: the mdmd web console, one page over /console/api
 * (handlers/console/console.h).  No framework and no build step.
 *
 * Safety rules this file keeps:
 *  - whatever the server or a device sent goes into the page as text
 *    (h() below builds elements; innerHTML is never used), so a device name
 *    like "<img onerror=...>" stays text;
 *  - every request but GET carries the session's CSRF token;
 *  - the session cookie is HttpOnly: this code never sees it, it learns the
 *    user and the CSRF token from /console/api/session or the login. */

const S = { user: null, csrf: null, schema: null, timers: [], streams: [] };

/* ---------------------------------------------------------------- helpers */

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'value') e.value = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const $ = (sel, root) => (root || document).querySelector(sel);
const main = () => $('#main');

function pad(n) { return String(n).padStart(2, '0'); }

/* ms since the epoch (number or string) -> "2025-03-01 14:02:11 (5 min ago)". */
function fmtTime(ms, withAge = true) {
  const n = Number(ms);
  if (!ms || !Number.isFinite(n) || n <= 0) return '—';
  const d = new Date(n);
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
            `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withAge ? `${s} (${fmtAge(n)})` : s;
}

function fmtAge(n) {
  const s = Math.round((Date.now() - n) / 1000);
  if (s < 0) return 'in the future';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function toast(text, bad) {
  const t = h('div', { class: 'toast' + (bad ? ' bad' : '') }, text);
  $('#toasts').append(t);
  setTimeout(() => t.remove(), bad ? 7000 : 3500);
}

function stateBadge(state) {
  const cls = { enrolled: 'ok', authenticated: 'warn', checked_out: '' }[state] ?? '';
  return h('span', { class: 'badge ' + cls }, state || 'unknown');
}

function statusBadge(status) {
  const cls = { Acknowledged: 'ok', Error: 'bad', CommandFormatError: 'bad', NotNow: 'warn' }[status] ?? '';
  return h('span', { class: 'badge ' + cls }, status || '?');
}

/* A JSON value as coloured text nodes (never markup). */
function jsonView(v) {
  const pre = h('pre', { class: 'json' });
  const put = (cls, text) => pre.append(cls ? h('span', { class: cls }, text) : text);
  const walk = (x, ind) => {
    const next = ind + '  ';
    if (Array.isArray(x)) {
      if (x.length === 0) return put(null, '[]');
      put(null, '[\n');
      x.forEach((e, i) => { put(null, next); walk(e, next); put(null, i < x.length - 1 ? ',\n' : '\n'); });
      put(null, ind + ']');
    } else if (x !== null && typeof x === 'object') {
      const keys = Object.keys(x);
      if (keys.length === 0) return put(null, '{}');
      put(null, '{\n');
      keys.forEach((k, i) => {
        put(null, next); put('k', JSON.stringify(k)); put(null, ': ');
        walk(x[k], next); put(null, i < keys.length - 1 ? ',\n' : '\n');
      });
      put(null, ind + '}');
    } else if (typeof x === 'string') put('s', JSON.stringify(x));
    else if (typeof x === 'number') put('n', String(x));
    else if (typeof x === 'boolean') put('b', String(x));
    else put('z', 'null');
  };
  walk(v, '');
  return pre;
}

function every(ms, fn) { S.timers.push(setInterval(fn, ms)); }
function stopTimers() {
  S.timers.forEach(clearInterval); S.timers = [];
  S.streams.forEach(s => s.close()); S.streams = []; // EventSources of the page left
}

/* Polls a bulk job until it is no longer running; then done(job). */
function watchJob(id, note, done) {
  const t = setInterval(async () => {
    let j;
    try { j = await api('GET', '/jobs/' + encodeURIComponent(id)); } catch (_) { clearInterval(t); return; }
    if (note) note.textContent = `${j.state}: ${j.done || 0}/${j.total || '?'}`;
    if (j.state !== 'running') { clearInterval(t); done(j); }
  }, 300);
  S.timers.push(t);
}

/* -------------------------------------------------------------------- API */

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/* body: an object (sent as JSON), or raw bytes with their ctype. */
async function api(method, path, body, ctype) {
  const opt = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin',
                cache: 'no-store' };
  if (method !== 'GET') opt.headers['X-CSRF-Token'] = S.csrf || '';
  if (body !== undefined) {
    opt.headers['Content-Type'] = ctype || 'application/json';
    opt.body = ctype ? body : JSON.stringify(body);
  }
  const r = await fetch('/console/api' + path, opt);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (r.status === 401 && path !== '/login') {
    S.user = S.csrf = null;
    showLogin(path === '/session' ? undefined : 'Your session has ended. Please log in again.');
    throw new ApiError(401, 'not logged in');
  }
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || `HTTP ${r.status}`);
  return data;
}

/* Runs an action from a button: disables it meanwhile, reports failures. */
async function act(btn, fn) {
  if (btn) btn.disabled = true;
  try { return await fn(); } catch (e) {
    if (e.status !== 401) toast(e.message, true);
  } finally { if (btn) btn.disabled = false; }
}

const enc = encodeURIComponent;

/* ----------------------------------------------------------------- router */

function route() {
  stopTimers();
  if (!S.user) return showLogin();
  const [path, query] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const page = parts[0] || 'devices';
  document.querySelectorAll('#nav a').forEach(a =>
    a.classList.toggle('active', a.dataset.page === (page === 'device' ? 'devices' : page)));
  const params = new URLSearchParams(query || '');
  switch (page) {
    case 'device': return pageDevice(parts[1] || '');
    case 'dashboard': return pageDashboard(); // web/dashboard.js
    case 'users': return pageUsers();
    case 'profiles': return pageContent(['profiles', 'provisioning']);
    case 'apps': return pageContent(['apps']);
    case 'declarations': return pageDeclarations();
    default: return pageDevices(params);
  }
}

function setTitle(t) { document.title = t ? `${t} · Mobile Manager` : 'Mobile Manager'; }

/* ------------------------------------------------------------------ login */

function showLogin(message) {
  stopTimers();
  $('#top').hidden = true;
  setTitle('Log in');
  const err = h('div', { class: 'msg bad', hidden: true });
  const user = h('input', { name: 'username', id: 'login-user', autocomplete: 'username', required: true,
                            autofocus: true });
  const pass = h('input', { name: 'password', id: 'login-pass', type: 'password',
                            autocomplete: 'current-password', required: true });
  const btn = h('button', { class: 'primary', type: 'submit', id: 'login-submit' }, 'Log in');
  const form = h('form', { class: 'card', id: 'login-form' },
    h('h1', {}, h('img', { src: 'favicon.svg', alt: '', width: 28, height: 28 }), 'Mobile Manager'),
    message ? h('div', { class: 'msg info' }, message) : null, err,
    h('label', { class: 'field' }, h('span', { class: 'name' }, 'Username'), user),
    h('label', { class: 'field' }, h('span', { class: 'name' }, 'Password'), pass),
    btn);
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    btn.disabled = true;
    err.hidden = true;
    try {
      const r = await api('POST', '/login', { username: user.value, password: pass.value });
      pass.value = '';
      S.user = r.user;
      S.csrf = r.csrf;
      enterApp();
    } catch (e) {
      err.textContent = e.status === 401 ? 'Wrong username or password.' : e.message;
      err.hidden = false;
      pass.value = '';
      pass.focus();
    } finally { btn.disabled = false; }
  });
  main().replaceChildren(h('div', { class: 'login' }, form));
  user.focus();
}

function enterApp() {
  $('#top').hidden = false;
  $('#who-name').textContent = S.user;
  if (!location.hash || location.hash === '#/login') location.hash = '#/devices';
  else route();
}

async function logout() {
  try { await api('POST', '/logout'); } catch (_) { /* the session is gone either way */ }
  S.user = S.csrf = null;
  history.replaceState(null, '', '#/devices');
  showLogin('You have logged out.');
}

/* ---------------------------------------------------------------- devices */

const PAGE = 50;

function pageDevices(params) {
  setTitle('Devices');
  const st = { q: params.get('q') || '', state: params.get('state') || '', offsets: [0], seq: 0 };
  const search = h('input', { type: 'search', id: 'device-search', value: st.q, autocomplete: 'off',
                              placeholder: 'Search by UDID, serial number, device name or user (prefix)' });
  const state = h('select', { id: 'device-state' },
    [['', 'Any state'], ['enrolled', 'Enrolled'], ['authenticated', 'Enrolling'],
     ['checked_out', 'Checked out']].map(([v, t]) => h('option', { value: v, selected: v === st.state }, t)));
  const info = h('span', { class: 'muted' });
  const tbody = h('tbody');
  const prev = h('button', { type: 'button', disabled: true }, '‹ Previous');
  const next = h('button', { type: 'button', disabled: true }, 'Next ›');

  async function load() {
    const seq = ++st.seq;
    const off = st.offsets[st.offsets.length - 1];
    const qs = new URLSearchParams({ offset: off, limit: PAGE });
    if (st.q) qs.set('q', st.q);
    if (st.state) qs.set('state', st.state);
    const keep = new URLSearchParams();
    if (st.q) keep.set('q', st.q);
    if (st.state) keep.set('state', st.state);
    history.replaceState(null, '', '#/devices' + (keep.toString() ? '?' + keep : ''));
    let r;
    try { r = await api('GET', '/devices?' + qs); } catch (e) {
      if (e.status !== 401) tbody.replaceChildren(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, e.message)));
      return;
    }
    if (seq !== st.seq) return;          /* a newer search is under way */
    tbody.replaceChildren(...r.devices.map(deviceRow));
    if (r.devices.length === 0)
      tbody.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' },
        st.q ? `No device matches “${st.q}”.` : 'No devices yet.')));
    info.textContent = st.q ? `${r.devices.length} shown · ${r.total} index matches`
                            : `${r.total} devices in all · page ${st.offsets.length}`;
    prev.disabled = st.offsets.length === 1;
    next.disabled = r.next_offset < 0;
    next.onclick = () => { st.offsets.push(r.next_offset); load(); };
  }
  prev.onclick = () => { st.offsets.pop(); load(); };
  let debounce = 0;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { st.q = search.value.trim(); st.offsets = [0]; load(); }, 250);
  });
  search.addEventListener('keydown', ev => {
    if (ev.key === 'Enter') { clearTimeout(debounce); st.q = search.value.trim(); st.offsets = [0]; load(); }
  });
  state.addEventListener('change', () => { st.state = state.value; st.offsets = [0]; load(); });

  main().replaceChildren(
    h('div', { class: 'pagehead' }, h('div', { class: 'title' }, h('h1', {}, 'Devices'),
      h('p', { class: 'sub' }, 'Newest seen first. Search matches the start of a UDID, serial number, device name or user name.'))),
    h('div', { class: 'card' },
      h('div', { class: 'toolbar' }, search, state),
      h('div', { class: 'tablewrap' }, h('table', { id: 'devices' },
        h('thead', {}, h('tr', {}, ['Name', 'UDID', 'Serial', 'Model', 'OS', 'State', 'User', 'Last seen']
          .map(t => h('th', {}, t)))), tbody)),
      h('div', { class: 'pager' }, info, prev, next)));
  search.focus();
  load();
}

function deviceRow(d) {
  const go = () => { location.hash = '#/device/' + enc(d.udid); };
  return h('tr', { class: 'link', onclick: go, 'data-udid': d.udid },
    h('td', {}, h('a', { href: '#/device/' + enc(d.udid) }, d.device_name || '(unnamed)')),
    h('td', { class: 'udid' }, d.udid),
    h('td', { class: 'mono' }, d.serial_number || '—'),
    h('td', {}, d.model_name || d.product_name || '—'),
    h('td', {}, d.os_version || '—'),
    h('td', {}, stateBadge(d.state)),
    h('td', {}, d.user || '—'),
    h('td', {}, fmtTime(d.last_seen)));
}

/* ----------------------------------------------------------------- device */

const ENROLL_FIELDS = [
  ['state', 'State'], ['user', 'User'], ['authenticated_at', 'Authenticated', 't'],
  ['enrolled_at', 'Enrolled', 't'], ['checked_out_at', 'Checked out', 't'], ['last_seen', 'Last seen', 't'],
  ['token_updated_at', 'Token updated', 't'], ['topic', 'Topic'], ['token', 'Push token', 'tok'],
  ['token_invalid', 'Token marked dead', 't'], ['awaiting_configuration', 'Awaiting configuration'],
];
const PUSH_FIELDS = [
  ['last_push_at', 'Pushed', 't'], ['last_push_outcome', 'Outcome', 'outcome'],
  ['last_push_status', 'APNs status'], ['last_push_reason', 'APNs reason'], ['last_push_id', 'apns-id'],
];
const INFO_FIELDS = [
  ['device_name', 'Name'], ['serial_number', 'Serial number'], ['product_name', 'Product'],
  ['model_name', 'Model name'], ['model', 'Model'], ['os_version', 'OS version'],
  ['build_version', 'Build'], ['capacity_gb', 'Capacity (GB)'], ['available_capacity_gb', 'Available (GB)'],
  ['battery_level', 'Battery'], ['wifi_mac', 'Wi-Fi MAC'], ['bluetooth_mac', 'Bluetooth MAC'],
  ['supervised', 'Supervised'], ['activation_lock', 'Activation Lock'], ['imei', 'IMEI'], ['meid', 'MEID'],
  ['phone_number', 'Phone number'], ['iccid', 'ICCID'], ['info_updated_at', 'Information updated', 't'],
];
/* Never shown as such: secrets a console user has no use for. */
const HIDDEN_FIELDS = new Set(['unlock_token', 'push_magic', 'cert_fp', 'issued_fp', 'udid']);

function fieldValue(dev, key, kind) {
  const v = dev[key];
  if (v === undefined || v === '') return null;
  if (kind === 't') return fmtTime(v);
  if (kind === 'tok') return h('span', { class: 'mono' }, v.slice(0, 12) + '…');
  if (kind === 'outcome') return h('span', { class: 'badge ' + (v === 'ok' ? 'ok' : 'bad') }, v);
  if (key === 'state') return stateBadge(v);
  if (key === 'battery_level' && Number.isFinite(Number(v))) return `${Math.round(Number(v) * 100)} %`;
  return v;
}

function kvList(dev, fields, emptyText) {
  const rows = [];
  for (const [key, label, kind] of fields) {
    const v = fieldValue(dev, key, kind);
    if (v !== null) rows.push(h('dt', {}, label), h('dd', { 'data-field': key }, v));
  }
  return rows.length ? h('dl', { class: 'kv' }, rows) : h('p', { class: 'muted' }, emptyText);
}

/* Device-record fields no list above names (later DeviceInformation keys). */
function otherFields(dev) {
  const known = new Set([...ENROLL_FIELDS, ...PUSH_FIELDS, ...INFO_FIELDS].map(f => f[0]));
  return Object.keys(dev).filter(k => !known.has(k) && !HIDDEN_FIELDS.has(k)).sort()
    .map(k => [k, k]);
}

function pageDevice(udid) {
  setTitle(udid);
  const st = { udid, dev: null, queue: '', history: '', open: new Set(), before: null, extra: [] };
  const head = h('div', { class: 'pagehead' });
  const cards = h('div', { class: 'grid' });
  const queueBody = h('div', { id: 'queue' });
  const histBody = h('div', { id: 'history' });
  const more = h('button', { type: 'button', hidden: true }, 'Older results');
  const form = h('div', { id: 'command-form' }, h('p', { class: 'muted' }, 'Loading the command list…'));

  async function refresh() {
    let d, hist, pend;
    try {
      [d, hist, pend] = await Promise.all([api('GET', '/devices/' + enc(udid)),
                                           api('GET', `/devices/${enc(udid)}/commands?count=25`),
                                           api('GET', `/devices/${enc(udid)}/commands/pending`)]);
    } catch (e) {
      if (e.status === 404) main().replaceChildren(h('div', { class: 'card empty' },
        'No device with the UDID ', h('span', { class: 'mono' }, udid), '. ',
        h('a', { href: '#/devices' }, 'Back to the devices')));
      else if (e.status !== 401) toast(e.message, true);
      stopTimers();
      return;
    }
    renderDevice(d);
    renderQueue(pend);
    renderHistory(hist);
  }

  async function renderRts() {
    const path = `/devices/${enc(udid)}/return-to-service`;
    let cur = null;
    try { cur = await api('GET', path); } catch (e) { return; }
    const say = !cur.set ? 'The fleet\'s setting applies (off unless set).'
      : cur.enabled ? (cur.preserve_apps ? 'On, with app preservation (the escrowed bootstrap token is sent).' : 'On.')
      : 'Off for this device.';
    const set = body => ev => act(ev.target, async () => {
      if (body === null) await api('DELETE', path); else await api('PUT', path, body);
      toast('Return to Service updated.');
      document.getElementById('card-rts')?.remove();
      renderRts();
    });
    document.getElementById('card-rts')?.remove();
    cards.append(h('section', { class: 'card', id: 'card-rts' }, h('h2', {}, 'Return to Service'),
      h('p', { id: 'rts-state' }, say),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'rts-on', onclick: set({ enabled: true }) }, 'On'),
        h('button', { type: 'button', id: 'rts-apps', onclick: set({ enabled: true, preserve_apps: true }) },
          'On, preserve apps'),
        h('button', { type: 'button', id: 'rts-off', onclick: set({ enabled: false }) }, 'Off'),
        h('button', { type: 'button', id: 'rts-fleet', onclick: set(null) }, 'Use the fleet\'s'))));
  }

  function renderDevice(d) {
    const dev = d.device;
    const sig = JSON.stringify(d);
    if (sig === st.sig) return;
    st.sig = sig;
    st.dev = dev;
    setTitle(dev.device_name || udid);
    head.replaceChildren(
      h('div', { class: 'title' }, h('h1', {}, dev.device_name || 'Unnamed device', ' ', stateBadge(dev.state)),
        h('div', { class: 'mono', id: 'device-udid' }, udid)),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'push-now', onclick: ev => act(ev.target, async () => {
          const r = await api('POST', '/push', { udids: [udid] });
          toast(r.pushing ? 'Push sent to APNs.' : 'Nothing to push: the device has no live push token.', !r.pushing);
        }) }, 'Push now'),
        h('button', { type: 'button', class: 'danger', id: 'clear-queue', onclick: ev => act(ev.target, async () => {
          if (!confirm('Drop every command still queued for this device?')) return;
          const r = await api('DELETE', `/devices/${enc(udid)}/commands`);
          toast(`${r.dropped} queued command(s) dropped.`);
          refresh();
        }) }, 'Clear queue'),
        h('button', { type: 'button', onclick: () => refresh() }, 'Refresh')));
    // Return to Service (iOS/visionOS 26): this device's setting, else the fleet's.
    if (!udid.includes(':')) renderRts();
    // A device's user channels (<UDID>:<user>), each a page of its own.
    api('GET', `/devices/${enc(udid)}/channels`).then(r => {
      if (!r.items || !r.items.length) return;
      cards.append(h('section', { class: 'card', id: 'card-channels' }, h('h2', {}, 'User channels'),
        h('ul', {}, ...r.items.map(u => h('li', {},
          h('a', { class: 'mono', href: '#/device/' + enc(udid + ':' + u) }, u))))));
    }).catch(() => {});
    cards.replaceChildren(
      h('section', { class: 'card', id: 'card-enrollment' }, h('h2', {}, 'Enrollment'),
        kvList(dev, ENROLL_FIELDS, '—')),
      h('section', { class: 'card', id: 'card-info' }, h('h2', {}, 'Device information'),
        kvList(dev, INFO_FIELDS.concat(otherFields(dev)), 'No DeviceInformation answer yet.')),
      h('section', { class: 'card', id: 'card-push' }, h('h2', {}, 'Last push'),
        kvList(dev, PUSH_FIELDS, 'No push sent to this device yet.')),
      ddmStatusCard(udid));
  }

  /* Queue surgery: each pending command with its body, state and times;
   * delete it from this queue, or cancel its UUID on every device (a job). */
  function pendingEntry(c, i) {
    const state = { notnow: ['NotNow', 'warn'], sent: ['sent', 'ok'], queued: ['queued', ''] }[c.state]
      || [c.state, ''];
    const when = c.state === 'sent' ? `sent ${fmtTime(c.sent_at)}` : `queued ${fmtTime(c.created)}`;
    const note = h('span', { class: 'muted small q-note' });
    const del = h('button', { type: 'button', class: 'small danger q-delete', onclick: ev => act(ev.target, async () => {
      if (!confirm(`Remove ${c.request_type} from this device's queue?`)) return;
      await api('DELETE', `/devices/${enc(udid)}/commands/${enc(c.uuid)}`);
      toast(`${c.request_type} removed from the queue.`);
      refresh();
    }) }, 'Delete');
    const cancel = h('button', { type: 'button', class: 'small danger q-cancel', onclick: ev => act(ev.target, async () => {
      if (!confirm(`Cancel ${c.uuid} on every device it is queued for?`)) return;
      const r = await api('DELETE', `/commands/${enc(c.uuid)}`);
      watchJob(r.job_id, note, j => { toast(`Cancelled on ${j.canceled || 0} device(s).`); refresh(); });
    }) }, 'Cancel everywhere');
    const det = h('details', { class: 'pending', 'data-uuid': c.uuid, 'data-state': c.state },
      h('summary', {}, h('span', { class: 'badge' }, i === 0 ? 'next' : `#${i + 1}`), ' ',
        h('strong', {}, c.request_type || '(unknown)'), ' ', h('span', { class: 'badge ' + state[1] }, state[0]),
        ' ', h('span', { class: 'muted small' }, when)),
      h('div', { class: 'body' }, h('div', { class: 'mono small' }, c.uuid),
        h('pre', { class: 'plist' }, c.plist || ''), h('div', { class: 'actions' }, del, ' ', cancel, ' ', note)));
    det.open = st.open.has('q:' + c.uuid);
    det.addEventListener('toggle', () => { det.open ? st.open.add('q:' + c.uuid) : st.open.delete('q:' + c.uuid); });
    return h('li', {}, det);
  }

  function renderQueue(pend) {
    const sig = JSON.stringify(pend);
    if (sig === st.queue) return;
    st.queue = sig;
    queueBody.replaceChildren(pend.length === 0 ? h('p', { class: 'muted' }, 'Nothing queued.')
      : h('ul', { class: 'queue', id: 'pending' }, pend.map(pendingEntry)));
  }

  function historyEntry(c) {
    const det = h('details', { class: 'entry', 'data-uuid': c.uuid || '' },
      h('summary', {}, h('span', { class: 'muted' }, fmtTime(c.time, false)),
        h('strong', {}, c.request_type || '(unknown command)'), h('span', {}, statusBadge(c.status))),
      h('div', { class: 'body' },
        h('dl', { class: 'kv' }, h('dt', {}, 'Command UUID'), h('dd', { class: 'mono' }, c.uuid || '—'),
          h('dt', {}, 'Was queued'), h('dd', {}, c.queued ? 'yes' : 'no (a result the server did not ask for)')),
        c.error_chain ? [h('h3', {}, 'Error chain'), jsonView(c.error_chain)] : null,
        h('h3', {}, 'Result, as the device sent it'), jsonView(c.result)));
    det.open = st.open.has(c.id);
    det.addEventListener('toggle', () => { det.open ? st.open.add(c.id) : st.open.delete(c.id); });
    return det;
  }

  function renderHistory(hist) {
    const sig = JSON.stringify(hist);
    if (sig === st.history) return;
    st.history = sig;
    const all = hist.commands.concat(st.extra);
    histBody.replaceChildren(...(all.length === 0 ? [h('p', { class: 'muted' }, 'No command has finished yet.')]
      : all.map(historyEntry)));
    st.before = st.extra.length ? st.before : hist.next_before;
    more.hidden = hist.commands.length < 25;
  }

  more.addEventListener('click', () => act(more, async () => {
    const r = await api('GET', `/devices/${enc(udid)}/commands?count=25&before=${enc(st.before)}`);
    st.extra = st.extra.concat(r.commands);
    st.before = r.next_before;
    r.commands.forEach(c => histBody.append(historyEntry(c)));
    more.hidden = r.commands.length < 25;
  }));

  main().replaceChildren(head, cards,
    h('div', { class: 'columns' },
      h('div', { class: 'col' },
        h('section', { class: 'card', id: 'card-command' }, h('h2', {}, 'Send a command'), form)),
      h('div', { class: 'col' },
        h('section', { class: 'card', id: 'card-queue' }, h('h2', {}, 'Pending queue'), queueBody),
        h('section', { class: 'card', id: 'card-history' },
          h('h2', {}, 'Command history', h('span', { class: 'spacer' }),
            h('span', { class: 'muted small' }, 'newest first · click for the result')), histBody, more))));
  refresh();
  every(3000, () => { if (!document.hidden) refresh(); });
  loadSchema().then(schema => form.replaceChildren(commandForm(schema, udid, () => refresh())))
    .catch(e => form.replaceChildren(h('p', { class: 'msg bad' }, e.message)));
}

/* ----------------------------------------------------------- command form */

const COMMON = ['DeviceInformation', 'SecurityInfo', 'ProfileList', 'InstalledApplicationList',
  'CertificateList', 'ProvisioningProfileList', 'RestrictionsList', 'InstallProfile', 'RemoveProfile',
  'InstallApplication', 'RemoveApplication', 'DeviceLock', 'RestartDevice', 'ShutDownDevice',
  'ClearPasscode', 'EraseDevice', 'Settings'];
const DANGEROUS = new Set(['EraseDevice', 'ClearPasscode', 'DeviceLock', 'ShutDownDevice',
  'RestartDevice', 'DisableLostMode', 'EnableLostMode', 'ClearRestrictionsPassword']);
/* Useful starting values, so the usual commands need no typing. */
const PRESETS = {
  DeviceInformation: { Queries: ['DeviceName', 'OSVersion', 'BuildVersion', 'ModelName', 'Model',
    'ProductName', 'SerialNumber', 'DeviceCapacity', 'AvailableDeviceCapacity', 'BatteryLevel',
    'WiFiMAC', 'BluetoothMAC', 'IsSupervised', 'IsActivationLockEnabled', 'IMEI', 'MEID'] },
};
const TYPE_HINT = { string: 'text', integer: 'whole number', real: 'number', boolean: 'true / false',
  data: 'base64, or pick a file', date: 'ISO 8601, e.g. 2025-01-31T12:00:00Z', array: 'JSON array',
  dictionary: 'JSON object', unknown: 'JSON value' };

async function loadSchema() {
  if (!S.schema) S.schema = (await api('GET', '/schema')).commands;
  return S.schema;
}

function keyInput(k, preset) {
  const id = 'cmd-' + k.name;
  const attrs = { id, name: k.name, 'data-type': k.type };
  switch (k.type) {
    case 'boolean':
      return h('select', attrs, h('option', { value: '' }, '(leave out)'),
        h('option', { value: 'true', selected: preset === true }, 'true'),
        h('option', { value: 'false', selected: preset === false }, 'false'));
    case 'integer': return h('input', { ...attrs, type: 'number', step: 1, value: preset ?? '' });
    case 'real': return h('input', { ...attrs, type: 'number', step: 'any', value: preset ?? '' });
    case 'string': case 'date': return h('input', { ...attrs, value: preset ?? '' });
    case 'data': return h('textarea', { ...attrs, rows: 3 }, preset ?? '');
    default:
      return h('textarea', { ...attrs, rows: 4, placeholder: k.type === 'array' ? '["…"]' : '{"…": …}' },
        preset !== undefined ? JSON.stringify(preset, null, 1) : '');
  }
}

function readKey(k, el) {
  const raw = el.value.trim();
  if (raw === '') {
    if (k.required) throw new Error('required');
    return undefined;
  }
  switch (k.type) {
    case 'string': case 'date': return el.value;
    case 'boolean': return raw === 'true';
    case 'integer':
      if (!/^-?\d+$/.test(raw)) throw new Error('not a whole number');
      return Number(raw);
    case 'real':
      if (!Number.isFinite(Number(raw))) throw new Error('not a number');
      return Number(raw);
    case 'data':
      if (!/^[A-Za-z0-9+/\s]*={0,2}$/.test(raw)) throw new Error('not base64');
      return raw.replace(/\s+/g, '');
    default:
      try { return JSON.parse(raw); } catch (e) { throw new Error('not valid JSON'); }
  }
}

function commandForm(schema, udid, onSent) {
  const byName = new Map(schema.map(c => [c.request_type, c]));
  const common = COMMON.filter(n => byName.has(n));
  const select = h('select', { id: 'cmd-type', name: 'RequestType' },
    h('optgroup', { label: 'Common' }, common.map(n => h('option', { value: n }, n))),
    h('optgroup', { label: `All ${schema.length} commands Apple defines` },
      schema.map(c => h('option', { value: c.request_type }, c.request_type))));
  const fields = h('div', { class: 'fields' });
  const preview = h('details', { class: 'preview' });
  const send = h('button', { type: 'submit', class: 'primary', id: 'cmd-send' }, 'Queue command');
  const urgent = h('input', { type: 'checkbox', id: 'cmd-urgent' });
  const inputs = new Map();

  function build(strict) {
    const cmd = byName.get(select.value);
    const out = { RequestType: cmd.request_type };
    let ok = true;
    for (const k of cmd.keys) {
      const el = inputs.get(k.name);
      const err = el.parentElement.querySelector('.err');
      err.textContent = '';
      try {
        const v = readKey(k, el);
        if (v !== undefined) out[k.name] = v;
      } catch (e) {
        ok = false;
        if (strict || e.message !== 'required') err.textContent = e.message;
      }
    }
    return ok ? out : null;
  }

  function showPreview() {
    const c = build(false);
    preview.replaceChildren(h('summary', {}, 'What will be sent'),
      c ? jsonView(c) : h('p', { class: 'muted' }, 'Fill in the fields marked *.'));
  }

  function renderFields() {
    const cmd = byName.get(select.value);
    const preset = PRESETS[cmd.request_type] || {};
    inputs.clear();
    fields.replaceChildren(...(cmd.keys.length === 0 ? [h('p', { class: 'muted' }, 'This command takes no parameters.')]
      : cmd.keys.map(k => {
        const el = keyInput(k, preset[k.name]);
        inputs.set(k.name, el);
        el.addEventListener('input', showPreview);
        el.addEventListener('change', showPreview);
        const file = k.type === 'data' ? h('input', { type: 'file', onchange: ev => readFileB64(ev.target, el, showPreview) }) : null;
        return h('div', { class: 'field' },
          h('label', { for: el.id, class: 'name' }, k.name, k.required ? h('span', { class: 'req' }, '*') : null,
            h('span', { class: 'hint' }, TYPE_HINT[k.type] || k.type)), el, file, h('div', { class: 'err' }));
      })));
    showPreview();
  }

  const form = h('form', { id: 'cmd-form' },
    h('div', { class: 'field' }, h('label', { for: 'cmd-type', class: 'name' }, 'Request type'), select),
    fields, h('div', { class: 'field' }, h('label', { for: 'cmd-urgent' }, urgent,
      ' Urgent: to the head of the queue (sent before everything queued)')),
    h('div', { class: 'row' }, send, h('span', { class: 'muted' },
      'The device is pushed right away and runs it when it next connects.')), preview);
  select.addEventListener('change', renderFields);
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    const cmd = build(true);
    if (!cmd) return toast('Some fields need fixing first.', true);
    if (DANGEROUS.has(cmd.RequestType) && !confirm(`Really send ${cmd.RequestType} to this device?`)) return;
    act(send, async () => {
      const body = { udids: [udid], command: cmd };
      if (urgent.checked) body.priority = 'high';
      const r = await api('POST', '/commands', body);
      if (r.queued === 0) toast('Not queued: the device is not enrolled.', true);
      else toast(`${cmd.RequestType} queued${urgent.checked ? ' at the head' : ''} (${r.command_uuid}).`);
      onSent();
    });
  });
  select.value = common.includes('DeviceInformation') ? 'DeviceInformation' : schema[0].request_type;
  renderFields();
  return form;
}

function readFileB64(input, target, done) {
  const f = input.files[0];
  if (!f) return;
  const rd = new FileReader();
  rd.onload = () => { target.value = String(rd.result).replace(/^data:[^,]*,/, ''); done(); };
  rd.readAsDataURL(f);
}

/* ------------------------------------------------------------------ users */

function pageUsers() {
  setTitle('Users');
  const tbody = h('tbody');
  const name = h('input', { id: 'user-name', autocomplete: 'off', required: true, placeholder: 'e.g. alice' });
  const pass = h('input', { id: 'user-pass', type: 'password', autocomplete: 'new-password', required: true,
                            minlength: 8, placeholder: 'at least 8 characters' });
  const role = h('select', { id: 'user-role' }, h('option', { value: 'user' }, 'user (enrolls devices)'),
    h('option', { value: 'admin' }, 'admin (uses this console)'));
  const add = h('button', { type: 'submit', class: 'primary' }, 'Create user');

  async function load() {
    try {
      const r = await api('GET', '/users');
      tbody.replaceChildren(...r.users.map(userRow));
      if (!r.users.length) tbody.append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No users.')));
    } catch (e) { if (e.status !== 401) tbody.replaceChildren(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, e.message))); }
  }

  function userRow(u) {
    const slot = h('div');
    const pw = () => {
      const input = h('input', { type: 'password', autocomplete: 'new-password', placeholder: 'new password' });
      const save = h('button', { type: 'button', class: 'small primary' }, 'Save');
      save.onclick = () => act(save, async () => {
        await api('PUT', `/users/${enc(u.username)}/password`, { password: input.value });
        toast(`Password of ${u.username} changed.`);
        slot.replaceChildren();
      });
      slot.replaceChildren(h('div', { class: 'inline-form' }, input, save,
        h('button', { type: 'button', class: 'small', onclick: () => slot.replaceChildren() }, 'Cancel')));
      input.focus();
    };
    const del = h('button', { type: 'button', class: 'small danger' }, 'Delete');
    del.onclick = () => act(del, async () => {
      const self = u.username === S.user ? ' This is you: your session ends too.' : '';
      if (!confirm(`Delete the user ${u.username}?${self}`)) return;
      await api('DELETE', '/users/' + enc(u.username));
      toast(`${u.username} deleted.`);
      load();
    });
    return h('tr', { 'data-user': u.username },
      h('td', {}, h('strong', {}, u.username), u.username === S.user ? h('span', { class: 'muted' }, ' (you)') : null),
      h('td', {}, h('span', { class: 'badge' + (u.role === 'admin' ? ' ok' : '') }, u.role)),
      h('td', {}, fmtTime(u.created)), h('td', {}, fmtTime(u.updated)),
      h('td', {}, h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', onclick: pw }, 'Set password'), del), slot));
  }

  const form = h('form', { class: 'formgrid', id: 'user-form' },
    h('label', {}, h('span', { class: 'name' }, 'Username'), name),
    h('label', {}, h('span', { class: 'name' }, 'Password'), pass),
    h('label', {}, h('span', { class: 'name' }, 'Role'), role), h('div', {}, add));
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    act(add, async () => {
      await api('POST', '/users', { username: name.value.trim(), password: pass.value, role: role.value });
      toast(`${name.value.trim()} created.`);
      name.value = pass.value = '';
      load();
    });
  });
  main().replaceChildren(
    h('div', { class: 'pagehead' }, h('div', { class: 'title' }, h('h1', {}, 'Users'),
      h('p', { class: 'sub' }, 'Admins log in here; users log in on the enrollment page to enroll their devices.'))),
    h('div', { class: 'card' }, h('h2', {}, 'New user'), form),
    h('div', { class: 'card' }, h('div', { class: 'tablewrap' }, h('table', { id: 'users' },
      h('thead', {}, h('tr', {}, ['User', 'Role', 'Created', 'Updated', ''].map(t => h('th', {}, t)))), tbody))));
  load();
}

/* ---------------------------------------------------- profiles and apps */

const KINDS = {
  profiles: { title: 'Configuration profiles', path: '/profiles', list: 'profiles', upload: 'file',
    accept: '.mobileconfig', ctype: 'application/x-apple-aspen-config',
    what: 'A .mobileconfig (XML, binary or signed). Assigned profiles are installed when a user\'s device enrolls.',
    cols: [['identifier', 'Identifier'], ['name', 'Name'], ['signed', 'Signed'], ['size', 'Bytes']] },
  provisioning: { title: 'Provisioning profiles', path: '/provisioning-profiles', list: 'provisioning_profiles',
    upload: 'file', accept: '.mobileprovision', ctype: 'application/octet-stream',
    what: 'A .mobileprovision, for in-house apps.',
    cols: [['name', 'Name'], ['app_id_name', 'App ID'], ['team_name', 'Team'], ['expires', 'Expires']] },
  apps: { title: 'Apps', path: '/apps', list: 'apps', upload: 'json',
    what: 'An App Store app (its iTunes store id) or an in-house app (the https:// URL of its manifest).',
    cols: [['identifier', 'Bundle id'], ['name', 'Name'], ['itunes_store_id', 'Store id'], ['manifest_url', 'Manifest']] },
};

function pageContent(kinds) {
  setTitle(KINDS[kinds[0]].title);
  main().replaceChildren(h('div', { class: 'pagehead' }, h('div', { class: 'title' },
    h('h1', {}, kinds.length > 1 ? 'Profiles' : KINDS[kinds[0]].title),
    h('p', { class: 'sub' }, 'Content that devices get after enrolling, for the users it is assigned to (or everyone).'))),
    ...kinds.map(k => contentCard(KINDS[k])));
}

function contentCard(k) {
  const tbody = h('tbody');
  const status = h('div');
  const ncols = k.cols.length + 3;

  async function load() {
    try {
      const r = await api('GET', k.path);
      const items = r[k.list] || [];
      tbody.replaceChildren(...items.map(row));
      if (!items.length) tbody.append(h('tr', {}, h('td', { colspan: ncols, class: 'empty' }, 'None yet.')));
    } catch (e) {
      if (e.status === 404 || e.status === 405)
        card.replaceChildren(h('h2', {}, k.title), h('p', { class: 'muted' }, 'Not available on this server yet.'));
      else if (e.status !== 401) tbody.replaceChildren(h('tr', {}, h('td', { colspan: ncols, class: 'empty' }, e.message)));
    }
  }

  function cell(it, key) {
    const v = it[key];
    if (v === undefined || v === null || v === '') return '—';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (key === 'expires') return v;
    return String(v);
  }

  function row(it) {
    const slot = h('div');
    const assigned = it.everyone ? h('span', { class: 'badge ok' }, 'everyone')
      : (it.users && it.users.length ? it.users.join(', ') : h('span', { class: 'muted' }, 'nobody'));
    const assign = () => {
      const users = h('input', { placeholder: 'user names, comma-separated', value: (it.users || []).join(', ') });
      const all = h('input', { type: 'checkbox', checked: !!it.everyone });
      const save = h('button', { type: 'button', class: 'small primary' }, 'Save');
      save.onclick = () => act(save, async () => {
        const names = users.value.split(',').map(s => s.trim()).filter(Boolean);
        await api('PUT', `${k.path}/${enc(it.id)}/assignment`, { users: names, everyone: all.checked });
        toast('Assignment saved.');
        load();
      });
      slot.replaceChildren(h('div', { class: 'inline-form' }, users,
        h('label', { class: 'row' }, all, 'everyone'), save,
        h('button', { type: 'button', class: 'small', onclick: () => slot.replaceChildren() }, 'Cancel')));
    };
    const del = h('button', { type: 'button', class: 'small danger' }, 'Delete');
    del.onclick = () => act(del, async () => {
      if (!confirm(`Delete ${it.id}? Devices that have it keep it.`)) return;
      await api('DELETE', `${k.path}/${enc(it.id)}`);
      toast(`${it.id} deleted.`);
      load();
    });
    return h('tr', {}, k.cols.map(([key]) => h('td', { class: key === 'identifier' ? 'mono' : null }, cell(it, key))),
      h('td', {}, assigned), h('td', {}, fmtTime(it.updated, false)),
      h('td', {}, h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', onclick: assign }, 'Assign'), del), slot));
  }

  const card = h('section', { class: 'card' }, h('h2', {}, k.title), h('p', { class: 'muted' }, k.what),
    uploadForm(k, load, status), status,
    h('div', { class: 'tablewrap' }, h('table', {}, h('thead', {}, h('tr', {},
      k.cols.map(c => h('th', {}, c[1])), h('th', {}, 'Assigned to'), h('th', {}, 'Updated'), h('th', {}, ''))), tbody)));
  load();
  return card;
}

function uploadForm(k, reload) {
  if (k.upload === 'file') {
    const file = h('input', { type: 'file', accept: k.accept });
    const up = h('button', { type: 'submit', class: 'primary' }, 'Upload');
    const f = h('form', { class: 'toolbar' }, file, up);
    f.addEventListener('submit', ev => {
      ev.preventDefault();
      if (!file.files[0]) return toast('Pick a file first.', true);
      act(up, async () => {
        const bytes = await file.files[0].arrayBuffer();
        const r = await api('POST', k.path, bytes, k.ctype);
        toast(`${r.id} ${r.replaced ? 'replaced' : 'uploaded'}.`);
        f.reset();
        reload();
      });
    });
    return f;
  }
  const id = h('input', { placeholder: 'bundle id, e.g. com.example.app', required: true });
  const name = h('input', { placeholder: 'display name (optional)' });
  const src = h('input', { placeholder: 'iTunes store id or https:// manifest URL', required: true });
  const add = h('button', { type: 'submit', class: 'primary' }, 'Publish');
  const f = h('form', { class: 'formgrid' }, id, name, src, h('div', {}, add));
  f.addEventListener('submit', ev => {
    ev.preventDefault();
    const body = { identifier: id.value.trim() };
    if (name.value.trim()) body.name = name.value.trim();
    if (/^\d+$/.test(src.value.trim())) body.itunes_store_id = Number(src.value.trim());
    else body.manifest_url = src.value.trim();
    act(add, async () => {
      const r = await api('POST', k.path, body);
      toast(`${r.id} ${r.replaced ? 'updated' : 'published'}.`);
      f.reset();
      reload();
    });
  });
  return f;
}

/* ------------------------------------------- declarative management (DDM) */

/* A device's declarative status (GET /devices/{udid}/status): its status
 * items and each declaration's state.  Loaded once per render. */
function ddmStatusCard(udid) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const card = h('section', { class: 'card', id: 'card-ddm' }, h('h2', {}, 'Declarative status'), body);
  api('GET', `/devices/${enc(udid)}/status`).then(r => {
    const items = r.status_items || {};
    const decls = items['management.declarations'] || {};
    const rows = Object.keys(items).filter(k => k !== 'management.declarations').sort().map(k =>
      h('tr', { 'data-item': k }, h('td', { class: 'mono' }, k),
        h('td', {}, typeof items[k] === 'string' ? items[k] : JSON.stringify(items[k]))));
    const drows = [];
    for (const kind of Object.keys(decls))
      for (const d of decls[kind]) drows.push(h('tr', { 'data-declaration': d.identifier },
        h('td', {}, kind), h('td', { class: 'mono' }, d.identifier),
        h('td', {}, h('span', { class: 'badge ' + (d.valid === 'valid' ? 'ok' : 'bad') }, d.valid)),
        h('td', {}, d.active ? 'active' : 'inactive'),
        h('td', {}, (d.reasons || []).map(x => `${x.code}${x.description ? ': ' + x.description : ''}`).join('; '))));
    body.replaceChildren(
      h('p', { class: 'muted' }, 'Last report ', fmtTime(r.ddm && r.ddm.last_status)),
      h('div', { class: 'tablewrap' }, h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Status item'), h('th', {}, 'Value'))),
        h('tbody', {}, rows))),
      h('div', { class: 'tablewrap' }, h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Kind'),
        h('th', {}, 'Declaration'), h('th', {}, 'Valid'), h('th', {}, 'Active'), h('th', {}, 'Reasons'))),
        h('tbody', {}, drows.length ? drows : h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No declarations reported.'))))));
  }).catch(e => {
    if (e.status === 404) body.replaceChildren(h('p', { class: 'muted' }, 'This device has not sent a declarative status report.'));
    else if (e.status !== 401) body.replaceChildren(h('p', { class: 'muted' }, e.message));
  });
  return card;
}

function pageDeclarations() {
  setTitle('Declarations');
  const declBody = h('tbody', { id: 'declarations' });
  const setBody = h('tbody', { id: 'sets' });
  const fleetBody = h('tbody', { id: 'fleet' });
  const err = h('div', { class: 'msg bad', id: 'declaration-error', hidden: true });

  async function load() {
    const [d, s] = await Promise.all([api('GET', '/declarations'), api('GET', '/declaration-sets')]);
    declBody.replaceChildren(...d.declarations.map(x => h('tr', { 'data-id': x.identifier },
      h('td', { class: 'mono' }, x.identifier), h('td', {}, x.type), h('td', {}, x.kind),
      h('td', { class: 'mono' }, x.server_token), h('td', {}, fmtTime(x.updated, false)),
      h('td', {}, h('button', { type: 'button', class: 'small danger', onclick: ev => act(ev.target, async () => {
        if (!confirm(`Delete ${x.identifier}? Devices that have it drop it.`)) return;
        await api('DELETE', `/declarations/${enc(x.identifier)}`);
        toast(`${x.identifier} deleted.`);
        load();
      }) }, 'Delete')))));
    if (!d.declarations.length) declBody.append(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'None yet.')));
    setBody.replaceChildren(...s.sets.map(setRow));
    if (!s.sets.length) setBody.append(h('tr', {}, h('td', { colspan: 4, class: 'empty' }, 'None yet.')));
  }

  function setRow(x) {
    const slot = h('div');
    const assign = async () => {
      const cur = await api('GET', `/declaration-sets/${enc(x.name)}`);
      const udids = h('input', { placeholder: 'UDIDs (or UDID:UserID), comma-separated', value: cur.udids.join(', ') });
      const users = h('input', { placeholder: 'user names, comma-separated', value: cur.users.join(', ') });
      const all = h('input', { type: 'checkbox', checked: !!cur.everyone });
      const save = h('button', { type: 'button', class: 'small primary' }, 'Save');
      const list = v => v.split(',').map(t => t.trim()).filter(Boolean);
      save.onclick = () => act(save, async () => {
        const r = await api('PUT', `/declaration-sets/${enc(x.name)}/assignment`,
          { udids: list(udids.value), users: list(users.value), everyone: all.checked });
        toast(`Assignment saved; devices are told (job ${r.job_id}).`);
        load();
      });
      slot.replaceChildren(h('div', { class: 'inline-form' }, udids, users,
        h('label', { class: 'row' }, all, 'everyone'), save,
        h('button', { type: 'button', class: 'small', onclick: () => slot.replaceChildren() }, 'Cancel')));
    };
    const to = [x.everyone ? 'everyone' : null, x.targets ? `${x.targets} device(s)` : null,
                x.users ? `${x.users} user(s)` : null].filter(Boolean).join(', ');
    return h('tr', { 'data-set': x.name }, h('td', { class: 'mono' }, x.name), h('td', {}, String(x.declarations)),
      h('td', {}, to ? h('span', { class: 'badge ok' }, to) : h('span', { class: 'muted' }, 'nobody')),
      h('td', {}, h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', onclick: ev => act(ev.target, assign) }, 'Assign'),
        h('button', { type: 'button', class: 'small danger', onclick: ev => act(ev.target, async () => {
          if (!confirm(`Delete the set ${x.name}?`)) return;
          await api('DELETE', `/declaration-sets/${enc(x.name)}`);
          load();
        }) }, 'Delete')), slot));
  }

  const text = h('textarea', { id: 'declaration-json', rows: 6, spellcheck: 'false',
    placeholder: '{"Type": "com.apple.configuration.softwareupdate.enforcement.specific", "Identifier": "com.example.os", "Payload": {...}}' });
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save declaration');
  const form = h('form', { class: 'formgrid' }, text, h('div', {}, save));
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    err.hidden = true;
    let d;
    try { d = JSON.parse(text.value); } catch (e) { err.textContent = `Not JSON: ${e.message}`; err.hidden = false; return; }
    act(save, async () => {
      try {
        const r = await api('PUT', `/declarations/${enc(d.Identifier || '')}`, d);
        toast(`${r.identifier} ${r.created ? 'created' : r.changed ? 'replaced' : 'unchanged'}.`);
        form.reset();
        load();
      } catch (e) { err.textContent = e.message; err.hidden = false; }
    });
  });

  const sname = h('input', { placeholder: 'set name', required: true });
  const sids = h('input', { placeholder: 'declaration identifiers, comma-separated', required: true });
  const sadd = h('button', { type: 'submit', class: 'primary' }, 'Save set');
  const sform = h('form', { class: 'formgrid' }, sname, sids, h('div', {}, sadd));
  sform.addEventListener('submit', ev => {
    ev.preventDefault();
    act(sadd, async () => {
      await api('PUT', `/declaration-sets/${enc(sname.value.trim())}`,
        { declarations: sids.value.split(',').map(t => t.trim()).filter(Boolean) });
      toast(`Set ${sname.value.trim()} saved.`);
      sform.reset();
      load();
    });
  });

  const item = h('input', { placeholder: 'status item, e.g. device.operating-system.version', id: 'fleet-item' });
  const value = h('input', { placeholder: 'value, e.g. 18.2', id: 'fleet-value' });
  const not = h('input', { type: 'checkbox', id: 'fleet-not' });
  const find = h('button', { type: 'submit' }, 'Find devices');
  const failed = h('button', { type: 'button', id: 'fleet-failed' }, 'Failed declarations');
  const fform = h('form', { class: 'toolbar' }, item, value, h('label', { class: 'row' }, not, 'not equal'), find, failed);
  async function fleet(q) {
    const r = await api('GET', '/ddm/status?' + q + '&limit=200');
    fleetBody.replaceChildren(...r.enrollments.map(e => h('tr', { 'data-enrollment': e.enrollment },
      h('td', {}, h('a', { href: '#/device/' + enc(e.enrollment.split(':')[0]), class: 'mono' }, e.enrollment)),
      h('td', {}, typeof e.value === 'string' ? e.value : JSON.stringify(e.value)))));
    if (!r.enrollments.length) fleetBody.append(h('tr', {}, h('td', { colspan: 2, class: 'empty' }, 'No devices match.')));
  }
  fform.addEventListener('submit', ev => {
    ev.preventDefault();
    act(find, () => fleet(`item=${enc(item.value.trim())}&value=${enc(value.value.trim())}${not.checked ? '&not=1' : ''}`));
  });
  failed.onclick = () => act(failed, () => fleet('failed=1'));

  const table = (heads, body) => h('div', { class: 'tablewrap' }, h('table', {},
    h('thead', {}, h('tr', {}, heads.map(x => h('th', {}, x)))), body));
  main().replaceChildren(h('div', { class: 'pagehead' }, h('div', { class: 'title' },
    h('h1', {}, 'Declarations'),
    h('p', { class: 'sub' }, 'Declarative Device Management: declarations, the sets that group them, who gets each set, and what devices report.'))),
    h('section', { class: 'card', id: 'card-declarations' }, h('h2', {}, 'Declarations'),
      h('p', { class: 'muted' }, 'Apple\'s declaration JSON (Type, Identifier, Payload), checked against Apple\'s schema for its type.'),
      form, err, table(['Identifier', 'Type', 'Kind', 'Server token', 'Updated', ''], declBody)),
    h('section', { class: 'card', id: 'card-sets' }, h('h2', {}, 'Declaration sets'),
      sform, table(['Name', 'Declarations', 'Assigned to', ''], setBody)),
    h('section', { class: 'card', id: 'card-fleet' }, h('h2', {}, 'Fleet status'),
      h('p', { class: 'muted' }, 'Devices by what their status reports say.'),
      fform, table(['Enrollment', 'Value'], fleetBody)));
  act(null, load);
}

/* ------------------------------------------------------------------- boot */

async function boot() {
  $('#logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  try {
    const r = await api('GET', '/session');
    S.user = r.user;
    S.csrf = r.csrf;
    enterApp();
  } catch (e) {
    if (e.status !== 401) showLogin(`The server did not answer (${e.message}).`);
  }
}

boot();
