'use strict';
/* The fleet dashboard (#/dashboard), for web/app.js: numbers, charts drawn
 * as plain SVG (no library, nothing from a CDN), stale devices, certificate
 * expiries, webhook delivery, and a command sent to a selection of devices
 * as a job with a progress bar; OS versions and per-minute command and push
 * outcomes (GET /v1/fleet?charts=1: counters Redis keeps per minute, never
 * a scan); a live activity feed (Server-Sent Events from /v1/events); a
 * command UUID cancelled everywhere.  Uses app.js's h(), api(), every(),
 * toast(), watchJob(). */

const SVGNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of kids) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/* A line chart of samples [{t, v}], w x h pixels. */
function chartLine(samples, w, h, label) {
  const box = svg('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img',
                           'aria-label': label });
  const max = Math.max(1, ...samples.map(s => s.v));
  const n = samples.length;
  const x = i => n < 2 ? w / 2 : 4 + (i * (w - 8)) / (n - 1);
  const y = v => h - 14 - (v / max) * (h - 24);
  box.append(svg('text', { x: 4, y: 10, class: 'axis' }, `${label} (max ${max})`));
  if (n > 0) {
    const d = samples.map((s, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(s.v).toFixed(1)}`).join(' ');
    box.append(svg('path', { d, class: 'line' }));
    box.append(svg('circle', { cx: x(n - 1), cy: y(samples[n - 1].v), r: 3, class: 'dot' }));
  }
  return box;
}

/* Bars [{k, v}] with their labels underneath. */
function chartBars(bars, w, h, label) {
  const box = svg('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img',
                           'aria-label': label });
  const max = Math.max(1, ...bars.map(b => b.v));
  const bw = (w - 8) / Math.max(1, bars.length);
  box.append(svg('text', { x: 4, y: 10, class: 'axis' }, label));
  bars.forEach((b, i) => {
    const bh = (b.v / max) * (h - 34);
    box.append(svg('rect', { x: 4 + i * bw + 2, y: h - 18 - bh, width: Math.max(1, bw - 4), height: bh,
                             class: 'bar' }, svg('title', {}, `${b.k}: ${b.v}`)));
    box.append(svg('text', { x: 4 + i * bw + bw / 2, y: h - 4, class: 'axis', 'text-anchor': 'middle' }, b.k));
  });
  return box;
}

/* Stacked bars per minute: series [{t, n: {key: count}}], one colour class
 * (s0..s5) per key in keys' order, a legend on top. */
function chartStacked(series, keys, w, h, label, id) {
  const box = svg('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img',
                           'aria-label': label, id });
  const tot = s => keys.reduce((a, k) => a + Number(s.n[k] || 0), 0);
  const max = Math.max(1, ...series.map(tot));
  const bw = (w - 8) / Math.max(1, series.length);
  box.append(svg('text', { x: 4, y: 10, class: 'axis' }, `${label} (max ${max}/min)`));
  keys.forEach((k, i) => { // the legend, a line under the title
    const x = 4 + i * 96;
    box.append(svg('rect', { x, y: 15, width: 8, height: 8, class: 'seg s' + (i % 6) }));
    box.append(svg('text', { x: x + 11, y: 22, class: 'axis' }, k.length > 14 ? k.slice(0, 13) + '…' : k));
  });
  series.forEach((s, i) => {
    let y = h - 14;
    keys.forEach((k, j) => {
      const v = Number(s.n[k] || 0);
      if (!v) return;
      const bh = (v / max) * (h - 42);
      y -= bh;
      box.append(svg('rect', { x: 4 + i * bw, y, width: Math.max(1, bw - 1), height: bh, class: 'seg s' + (j % 6) },
        svg('title', {}, `${new Date(s.t).toTimeString().slice(0, 5)} ${k}: ${v}`)));
    });
  });
  if (series.length) {
    box.append(svg('text', { x: 4, y: h - 3, class: 'axis' }, new Date(series[0].t).toTimeString().slice(0, 5)));
    box.append(svg('text', { x: w - 4, y: h - 3, class: 'axis', 'text-anchor': 'end' }, 'now'));
  }
  return box;
}

/* The outcome names of a series, the usual ones first. */
function outcomeKeys(series, first) {
  const seen = new Set();
  series.forEach(s => Object.keys(s.n || {}).forEach(k => seen.add(k)));
  return first.filter(k => seen.has(k)).concat([...seen].filter(k => !first.includes(k)).sort());
}

/* OS versions, most devices first (at most 10 bars). */
function osBars(os) {
  return Object.entries(os || {}).map(([k, v]) => ({ k, v: Number(v) }))
    .sort((a, b) => b.v - a.v || a.k.localeCompare(b.k, undefined, { numeric: true })).slice(0, 10);
}

/* The live activity feed: an EventSource on /console/api/events (the session
 * cookie; it reconnects by itself with Last-Event-ID), newest first. */
function feedEntry(e) {
  const what = [e.request_type, e.status, e.outcome, e.reason, e.what, e.days_left && `${e.days_left} days`]
    .filter(Boolean).join(' · ');
  const t = Number(e.time) || Number(String(e.id).split('-')[0]);
  return h('li', { 'data-id': e.id, 'data-type': e.type || '' },
    h('span', { class: 'muted small' }, fmtTime(t, false)), ' ', h('strong', {}, e.type || 'event'), ' ',
    e.udid ? h('a', { class: 'mono', href: '#/device/' + encodeURIComponent(e.udid) }, e.udid) : null,
    what ? h('span', { class: 'muted' }, ' ' + what) : null);
}

function dashFeed() {
  const list = h('ol', { id: 'feed-list', class: 'feed' });
  const state = h('span', { id: 'feed-state', class: 'badge' }, 'connecting');
  const es = new EventSource('/console/api/events?backlog=20');
  S.streams.push(es);
  es.onopen = () => { state.textContent = 'live'; state.className = 'badge ok'; };
  es.onerror = () => {
    state.textContent = es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting';
    state.className = 'badge warn';
  };
  es.onmessage = ev => {
    let e;
    try { e = JSON.parse(ev.data); } catch (_) { return; }
    list.prepend(feedEntry(e));
    while (list.children.length > 50) list.lastChild.remove();
  };
  es.addEventListener('gap', () => list.prepend(h('li', { class: 'muted' }, 'Older events were trimmed: some are missing here.')));
  return h('div', { id: 'feed' }, h('p', {}, state, ' ', h('span', { class: 'muted small' },
    'events as they happen (Server-Sent Events)')), list);
}

/* A command UUID taken off every queue it is on (a job). */
function dashCancel() {
  const uuid = h('input', { id: 'cancel-uuid', placeholder: 'command UUID', size: 40 });
  const note = h('span', { id: 'cancel-note', class: 'muted' });
  const go = h('button', { type: 'submit', class: 'danger', id: 'cancel-send' }, 'Cancel everywhere');
  const form = h('form', { id: 'cancel-form' }, uuid, ' ', go, ' ', note);
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    const u = uuid.value.trim();
    if (!u || !confirm(`Cancel ${u} on every device it is queued for?`)) return;
    act(go, async () => {
      const r = await api('DELETE', '/commands/' + encodeURIComponent(u));
      watchJob(r.job_id, note, j => { note.textContent = `${j.state}: cancelled on ${j.canceled || 0} device(s)`; });
    });
  });
  return form;
}

const DASH = { samples: [] };

/* The histogram's cumulative buckets as per-bucket counts. */
function pushlatBars(lat) {
  const les = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];
  let prev = 0;
  const out = les.map(le => {
    const c = Number(lat['le_' + le] || 0);
    const b = { k: le < 60 ? `${le}s` : `${le / 60}m`, v: c - prev };
    prev = c;
    return b;
  });
  out.push({ k: '>1h', v: Number(lat.count || 0) - prev });
  return out;
}

function dashNumbers(f) {
  const cell = (id, k, v, bad) => h('div', { class: 'stat' + (bad ? ' bad' : ''), id },
                                   h('div', { class: 'num' }, String(v)), h('div', { class: 'muted' }, k));
  return h('div', { class: 'stats' },
    cell('stat-devices', 'devices', f.devices),
    cell('stat-stale', 'stale', f.stale, f.stale > 0),
    cell('stat-queue', 'commands queued', f.queue_depth),
    cell('stat-repush', 're-pushes due', f.repush_scheduled));
}

function dashExpiry(ex) {
  const rows = Object.entries(ex || {}).map(([k, d]) =>
    h('tr', { class: d <= 30 ? 'warn' : '' }, h('td', {}, k), h('td', {}, `${d} days`),
      h('td', {}, d <= 30 ? 'renew soon' : 'ok')));
  return h('table', { id: 'expiry' }, h('thead', {}, h('tr', {}, h('th', {}, 'certificate'),
    h('th', {}, 'left'), h('th', {}, ''))), h('tbody', {}, rows));
}

function dashStale(list) {
  if (!list || !list.length) return h('p', { class: 'muted', id: 'stale-list' }, 'No stale devices.');
  return h('ul', { id: 'stale-list' }, list.map(d =>
    h('li', {}, h('a', { href: '#/device/' + encodeURIComponent(d.udid) }, d.udid), ' last seen ',
      fmtTime(d.last_seen))));
}

async function dashWebhooks(el) {
  try {
    const w = await api('GET', '/webhooks');
    el.replaceChildren(h('p', { id: 'hook-status' },
      `${w.targets.length} target(s), ${w.delivered} delivered here, ${w.dead} dead letters`),
      ...(w.dead <= 0 ? [] : [h('button', { type: 'button', id: 'hook-replay', onclick: async () => {
        const r = await api('POST', '/webhooks/dead-letter/replay', {});
        toast(`Replaying ${r.replayed} dead letters`);
      } }, 'Replay dead letters')]));
  } catch (e) { el.replaceChildren(h('p', { class: 'muted' }, e.message)); }
}

/* Selection -> job: UDIDs (one a line) or every enrolled device. */
function dashSend() {
  const udids = h('textarea', { id: 'sel-udids', rows: 3, placeholder: 'UDIDs, one a line (empty: all enrolled)' });
  const type = h('select', { id: 'sel-type' },
    ['DeviceInformation', 'ProfileList', 'InstalledApplicationList', 'SecurityInfo', 'DeviceLock']
      .map(t => h('option', { value: t }, t)));
  const bar = h('progress', { id: 'sel-progress', max: 1, value: 0, hidden: true });
  const note = h('span', { id: 'sel-note', class: 'muted' });
  const go = h('button', { type: 'submit', class: 'primary', id: 'sel-send' }, 'Send to selection');
  const form = h('form', { id: 'sel-form' }, udids, h('div', {}, type, ' ', go, ' ', bar, ' ', note));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const list = udids.value.split(/\s+/).filter(Boolean);
    const command = { RequestType: type.value };
    if (type.value === 'DeviceInformation') command.Queries = ['DeviceName', 'OSVersion', 'ModelName'];
    const body = list.length ? { udids: list, async: true, command } : { filter: 'all_enrolled', command };
    go.disabled = true;
    try {
      const r = await api('POST', '/commands', body);
      bar.hidden = false;
      const t = setInterval(async () => {
        try {
          const j = await api('GET', '/jobs/' + r.job_id);
          bar.max = Math.max(1, Number(j.total || 0));
          bar.value = Number(j.done || 0);
          note.textContent = `${j.state}: ${j.done || 0}/${j.total || '?'} (queued ${j.queued || 0})`;
          if (j.state !== 'running') { clearInterval(t); go.disabled = false; }
        } catch (_) { clearInterval(t); go.disabled = false; }
      }, 300);
      S.timers.push(t);
    } catch (e) { toast(e.message, true); go.disabled = false; }
  });
  return form;
}

function pageDashboard() {
  setTitle('Dashboard');
  const nums = h('div', {}), charts = h('div', { class: 'charts' }), ex = h('div', {}),
    stale = h('div', {}), hooks = h('div', {}), charts2 = h('div', { class: 'charts' });
  main().replaceChildren(h('section', { class: 'card', id: 'dashboard' },
    h('h2', {}, 'Fleet'), nums, charts, charts2,
    h('h3', {}, 'Live activity'), dashFeed(),
    h('h3', {}, 'Certificates'), ex, h('h3', {}, 'Stale devices'), stale,
    h('h3', {}, 'Webhooks'), hooks,
    h('h3', {}, 'Send a command to a selection'), dashSend(),
    h('h3', {}, 'Cancel a command on every device'), dashCancel()));
  const refresh = async () => {
    let f;
    try { f = await api('GET', '/fleet?limit=20&charts=1'); } catch (e) { return; }
    DASH.samples.push({ t: Date.now(), dev: f.devices, q: f.queue_depth });
    if (DASH.samples.length > 120) DASH.samples.shift();
    nums.replaceChildren(dashNumbers(f));
    charts.replaceChildren(
      chartLine(DASH.samples.map(s => ({ v: s.dev })), 360, 120, 'devices'),
      chartLine(DASH.samples.map(s => ({ v: s.q })), 360, 120, 'queue depth'),
      chartBars(pushlatBars(f.pushlat || {}), 420, 120, 'push to check-in'));
    const cmd = f.commands_per_minute || [], push = f.pushes_per_minute || [];
    const os = chartBars(osBars(f.os_versions), 360, 140, 'OS versions (devices)');
    os.id = 'chart-os';
    charts2.replaceChildren(os,
      chartStacked(cmd, outcomeKeys(cmd, ['Acknowledged', 'Error', 'CommandFormatError', 'NotNow']),
        420, 140, 'command results per minute', 'chart-cmd'),
      chartStacked(push, outcomeKeys(push, ['ok', 'failed', 'bad_token', 'topic_mismatch']),
        420, 140, 'push outcomes per minute', 'chart-push'));
    ex.replaceChildren(dashExpiry(f.expiry));
    stale.replaceChildren(dashStale(f.stale_devices));
    dashWebhooks(hooks);
  };
  refresh();
  every(5000, refresh);
}
