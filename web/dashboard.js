'use strict';
/* The fleet dashboard (#/dashboard), for web/app.js: numbers, charts drawn
 * as plain SVG (no library, nothing from a CDN), stale devices, certificate
 * expiries, webhook delivery, and a command sent to a selection of devices
 * as a job with a progress bar.  Uses app.js's h(), api(), every(), toast(). */

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
    stale = h('div', {}), hooks = h('div', {});
  main().replaceChildren(h('section', { class: 'card', id: 'dashboard' },
    h('h2', {}, 'Fleet'), nums, charts,
    h('h3', {}, 'Certificates'), ex, h('h3', {}, 'Stale devices'), stale,
    h('h3', {}, 'Webhooks'), hooks,
    h('h3', {}, 'Send a command to a selection'), dashSend()));
  const refresh = async () => {
    let f;
    try { f = await api('GET', '/fleet?limit=20'); } catch (e) { return; }
    DASH.samples.push({ t: Date.now(), dev: f.devices, q: f.queue_depth });
    if (DASH.samples.length > 120) DASH.samples.shift();
    nums.replaceChildren(dashNumbers(f));
    charts.replaceChildren(
      chartLine(DASH.samples.map(s => ({ v: s.dev })), 360, 120, 'devices'),
      chartLine(DASH.samples.map(s => ({ v: s.q })), 360, 120, 'queue depth'),
      chartBars(pushlatBars(f.pushlat || {}), 420, 120, 'push to check-in'));
    ex.replaceChildren(dashExpiry(f.expiry));
    stale.replaceChildren(dashStale(f.stale_devices));
    dashWebhooks(hooks);
  };
  refresh();
  every(5000, refresh);
}
