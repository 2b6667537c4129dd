/* earshot status page: polls /api/v1 every few seconds and draws assistants, a 24 h timeline of
 * activations, upload-rate sparklines, the suspected activations (with label buttons) and the
 * collector's health. No framework, no external resources. Data goes into the DOM as text only. */
/* global document, window, localStorage */
(function () {
  'use strict';

  const POLL_MS = 3000;
  const DAY_MS = 24 * 3600 * 1000;
  const SPARK_POINTS = 40;
  const TOKEN_KEY = 'earshot-token';
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  /** upload samples per assistant MAC: [{ t, bytesUp }] */
  const samples = new Map();
  let lastMessageIsError = false;

  // ---- token ---------------------------------------------------------------------------------

  const getToken = () => localStorage.getItem(TOKEN_KEY) || '';
  /** A token the API refused (401): never sent again, so a stale one in this browser does not spend the
   * address's wrong-token budget (api.failedTokensPerMinute) every poll and lock out the right one */
  let refusedToken = '';
  function showTokenForm(show) {
    $('token-form').hidden = !show;
    $('token-change').hidden = show;
    if (show) $('token-input').focus();
  }
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('token-input').value.trim();
    if (!value) return;
    localStorage.setItem(TOKEN_KEY, value);
    refusedToken = '';
    $('token-input').value = '';
    showTokenForm(false);
    say('Token saved in this browser.');
    void refresh();
  });
  $('token-change').addEventListener('click', () => showTokenForm(true));

  function say(text, isError) {
    const el = $('message');
    el.textContent = visible(text);
    el.className = isError ? 'message error' : 'message';
    el.hidden = !text;
    lastMessageIsError = Boolean(isError && text);
  }

  // ---- API -----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, init) {
    const headers = Object.assign({ accept: 'application/json' }, init && init.body ? { 'content-type': 'application/json' } : {});
    const token = getToken();
    if (token && token !== refusedToken) headers.authorization = 'Bearer ' + token;
    const res = await fetch('api/v1/' + path, Object.assign({}, init, { headers }));
    let body = null;
    try { body = await res.json(); } catch { body = null; }
    if (res.status === 401 && headers.authorization) refusedToken = token;
    if (!res.ok) throw new ApiError(res.status, (body && body.message) || res.statusText);
    return body;
  }

  function explain(err, what) {
    if (err instanceof ApiError && err.status === 401) {
      showTokenForm(true);
      return getToken() && getToken() === refusedToken
        ? 'The API refused the token (401) while ' + what + '. Enter the right token (api.token / EARSHOT_API_TOKEN).'
        : 'The API needs a token (401) for ' + what + '. Enter it above (api.token / EARSHOT_API_TOKEN).';
    }
    if (err instanceof ApiError) return 'The API answered ' + err.status + ' while ' + what + ': ' + err.message;
    return 'Cannot reach earshot while ' + what + ' (' + (err && err.message ? err.message : err) + ').';
  }

  // ---- helpers -------------------------------------------------------------------------------

  /** Bidirectional controls (U+202A-202E, U+2066-2069, U+200E/F, U+061C) as visible marks: a name from
   * the network carrying U+202E reversed the page's own text after it (times, counts) */
  const BIDI = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;
  const visible = (text) => String(text).replace(BIDI, (c) => `<U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}>`);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') node.textContent = visible(v);
      else if (k === 'class') node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) if (c) node.append(c);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }
  function bytes(n) {
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }
  const rate = (bps) => bytes(bps) + '/s';
  const time = (ms) => new Date(ms).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
  const clock = (ms) => new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  function duration(s) {
    if (s < 59.95) return s.toFixed(1) + ' s';
    // whole seconds first, so 119.6 s is "2 min 0 s", not "1 min 60 s"
    const whole = Math.round(s);
    const d = Math.floor(whole / 86400);
    const h = Math.floor((whole % 86400) / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const sec = whole % 60;
    if (d > 0) return `${d} d ${h} h`;
    if (h > 0) return `${h} h ${m} min`;
    return `${m} min ${sec} s`;
  }
  const baseName = (d) => d.name || d.model || d.vendor || d.mac;
  /** names shared by several devices ("amazon" x 4) get the MAC's last two bytes */
  let shared = new Set();
  function nameDevices(devices) {
    const seen = new Map();
    for (const d of devices) seen.set(baseName(d), (seen.get(baseName(d)) || 0) + 1);
    shared = new Set([...seen].filter(([, n]) => n > 1).map(([name]) => name));
  }
  const deviceName = (d) => (shared.has(baseName(d)) && baseName(d) !== d.mac ? `${baseName(d)} ${d.mac.slice(-5)}` : baseName(d));
  const labelOf = (a) => {
    const r = (a.reasons || []).find((x) => x.startsWith('label:'));
    return r ? r.slice('label:'.length) : null;
  };

  // ---- drawing -------------------------------------------------------------------------------

  function sparkline(points) {
    const w = 240;
    const h = 48;
    const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'upload rate' });
    if (points.length < 2) return s;
    const max = Math.max(1, ...points);
    const xy = points.map((v, i) => [(i / (SPARK_POINTS - 1)) * w, h - 2 - (v / max) * (h - 4)]);
    const offset = w - xy[xy.length - 1][0];
    const line = xy.map(([x, y], i) => (i ? 'L' : 'M') + (x + offset).toFixed(1) + ' ' + y.toFixed(1)).join(' ');
    s.append(svg('path', { class: 'spark-area', d: `${line} L${w} ${h} L${(xy[0][0] + offset).toFixed(1)} ${h} Z` }));
    s.append(svg('path', { class: 'spark-line', d: line }));
    return s;
  }

  function rates(mac) {
    const list = samples.get(mac) || [];
    const out = [];
    for (let i = 1; i < list.length; i++) {
      const dt = (list[i].t - list[i - 1].t) / 1000;
      out.push(dt > 0 ? Math.max(0, list[i].bytesUp - list[i - 1].bytesUp) / dt : 0);
    }
    return out.slice(-SPARK_POINTS);
  }

  function drawAssistants(assistants, activations) {
    const box = $('assistants');
    box.replaceChildren();
    if (assistants.length === 0) {
      box.append(el('p', { class: 'muted', text: 'No assistant seen yet.' }));
      return;
    }
    for (const d of assistants) {
      const open = activations.find((a) => a.device === d.mac && a.open);
      const r = rates(d.mac);
      const now = r.length ? r[r.length - 1] : 0;
      box.append(el('article', { class: 'card assistant', 'data-mac': d.mac }, [
        el('h3', {}, [
          el('span', { text: deviceName(d) }),
          el('span', { class: open ? 'pill listening state' : 'pill idle state', text: open ? 'listening now' : 'idle' }),
        ]),
        el('div', { class: 'meta', text: [d.mac, d.vendor, d.model].filter(Boolean).join(' · ') }),
        el('div', { class: 'meta', text: (d.ips || []).join(', ') }),
        el('div', { class: 'meta', text: `upload ${rate(now)} now · ${bytes(d.bytesUp)} up, ${bytes(d.bytesDown)} down in total` }),
        sparkline(r),
      ]));
    }
  }

  /** A local assistant's activations (a satellite streaming to the local server): where the voice went. */
  function drawLocal(activations, names) {
    const list = activations.filter((a) => a.local).slice(0, 10);
    $('local-section').hidden = list.length === 0;
    const box = $('local');
    box.replaceChildren();
    for (const a of list) {
      const l = a.local;
      const seconds = ((Date.parse(a.end) - Date.parse(a.start)) / 1000).toFixed(1);
      const where = l.voiceDestination === 'home' ? 'voice stayed at home'
        : l.voiceDestination === 'pending' ? 'listening: watching where the voice goes'
          : `voice went to ${l.cloud.map((c) => `${c.name} (${c.service})`).join(', ')}`;
      box.append(el('li', { 'data-id': a.id, class: `local ${l.voiceDestination}` }, [
        el('strong', { text: where }),
        el('small', { text: `${names.get(a.device) || a.device} · ${time(Date.parse(a.start))} · ${seconds} s · ${bytes(l.audioBytes)} of audio to ${names.get(l.server) || l.serverAddress}` }),
      ]));
    }
  }

  function drawTimeline(activations, assistants, replay) {
    const box = $('timeline');
    box.replaceChildren();
    const newest = activations.reduce((m, a) => Math.max(m, Date.parse(a.end)), 0);
    const end = replay && newest > 0 ? newest : Date.now();
    const start = end - DAY_MS;
    $('timeline-note').textContent = replay
      ? (newest > 0
        ? `Replayed capture: the 24 h before the newest activation (${time(newest)}), not before now.`
        : 'Replayed capture: no activation yet.')
      : `${time(start)} – now`;
    const inWindow = activations.filter((a) => Date.parse(a.end) >= start && Date.parse(a.start) <= end);
    const macs = assistants.map((d) => d.mac);
    for (const a of inWindow) if (!macs.includes(a.device)) macs.push(a.device);
    const names = new Map(assistants.map((d) => [d.mac, deviceName(d)]));
    const rowH = 26;
    const left = 8;
    const w = 1000;
    const top = 18;
    const h = top + Math.max(1, macs.length) * rowH + 4;
    const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': 'activations of the last 24 hours' });
    const x = (ms) => left + ((ms - start) / DAY_MS) * (w - 2 * left);
    for (let i = 0; i <= 4; i++) {
      const t = start + (i * DAY_MS) / 4;
      s.append(svg('line', { x1: x(t), x2: x(t), y1: top - 4, y2: h, stroke: '#e2e5ea' }));
      const label = svg('text', { x: x(t), y: 11, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' });
      label.textContent = i === 4 && !replay ? 'now' : clock(t);
      s.append(label);
    }
    macs.forEach((mac, row) => {
      const y = top + row * rowH;
      s.append(svg('rect', { x: left, y: y + 4, width: w - 2 * left, height: rowH - 8, fill: '#f5f6f8', rx: 3 }));
      const name = svg('text', { x: left + 4, y: y + rowH / 2 + 4 });
      name.textContent = visible(names.get(mac) || mac);
      s.append(name);
      for (const a of inWindow.filter((b) => b.device === mac)) {
        const x0 = x(Math.max(start, Date.parse(a.start)));
        const mark = svg('rect', { class: 'mark ' + a.verdict, x: x0, y: y + 2, width: Math.max(4, x(Date.parse(a.end)) - x0), height: rowH - 4, rx: 2, 'data-id': a.id });
        const title = svg('title', {});
        title.textContent = `${time(Date.parse(a.start))} · ${a.verdict} · ${bytes(a.bytesUp)} up`;
        mark.append(title);
        s.append(mark);
      }
    });
    box.append(s);
    if (inWindow.length === 0) box.append(el('p', { class: 'muted', text: 'No activation in this window.' }));
  }

  /** Suspected activations shown as cards (the newest); the API lists them all. */
  const SUSPECTED_CARDS = 50;

  function drawSuspected(activations, names) {
    const box = $('suspected');
    box.replaceChildren();
    const all = activations.filter((a) => a.verdict === 'suspected');
    if (all.length === 0) {
      box.append(el('li', { class: 'muted', text: 'None: every activation matched a wake event or a label.' }));
      return;
    }
    const list = all.slice(0, SUSPECTED_CARDS);
    for (const a of list) {
      const s = Date.parse(a.start);
      const label = labelOf(a);
      const buttons = el('div', { class: 'actions' }, [
        el('button', { type: 'button', class: 'intended', text: 'intended' }),
        el('button', { type: 'button', class: 'not-intended', text: 'not intended' }),
      ]);
      buttons.children[0].addEventListener('click', () => void sendLabel(a.id, 'intended', buttons));
      buttons.children[1].addEventListener('click', () => void sendLabel(a.id, 'not-intended', buttons));
      box.append(el('li', { class: 'card', 'data-id': a.id }, [
        el('div', { class: 'what' }, [
          el('strong', { text: `${time(s)} · ${names.get(a.device) || a.device}` }),
          el('small', { text: `${duration((Date.parse(a.end) - s) / 1000)} · ${bytes(a.bytesUp)} up${a.serverName ? ' to ' + a.serverName : ''}${a.open ? ' · still uploading' : ''}` }),
          el('small', { text: `${a.id} · ${label ? 'you said: ' + label.replace('-', ' ') : (a.reasons || []).join(', ')}` }),
        ]),
        buttons,
      ]));
    }
    if (all.length > list.length) {
      box.append(el('li', { class: 'muted' }, [
        document.createTextNode(`and ${all.length - list.length} more: `),
        el('a', { href: 'api/v1/activations?verdict=suspected&limit=1000', text: 'api/v1/activations?verdict=suspected' }),
      ]));
    }
  }

  /** The day (YYYY-MM-DD) of ISO time `iso` in time zone `zone` (detect.timeZone, the privacy days' zone). */
  const dayFormats = new Map();
  function localDay(iso, zone) {
    if (!zone || zone === 'UTC') return iso.slice(0, 10);
    let format = dayFormats.get(zone);
    if (!format) {
      try {
        format = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' });
      } catch {
        return iso.slice(0, 10);
      }
      dayFormats.set(zone, format);
    }
    const parts = Object.fromEntries(format.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day}`;
  }

  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  // rounded down: 99.96 % is not "100 %" while some bytes go to an unknown organisation
  const share = (x) => `${x >= 1 ? 100 : Math.floor(x * 1000) / 10} %`;

  /** Endpoints shown per assistant (the busiest); the API has them all. */
  const PRIVACY_ENDPOINTS = 8;

  function drawPrivacy(privacy, activations, names) {
    const box = $('privacy');
    const notes = $('notices');
    if (privacy === null) {
      box.replaceChildren(el('p', { class: 'muted', text: 'Privacy is off (privacy.enabled, or tagging off).' }));
      notes.replaceChildren();
      return;
    }
    const fresh = new Set(privacy.notices.map((n) => n.device + ' ' + n.endpoint));
    notes.replaceChildren(...privacy.notices.slice(0, 5).map((n) => el('li', { class: 'card' }, [
      el('div', { class: 'what' }, [
        el('strong', { text: `New: ${names.get(n.device) || n.deviceName || n.device} ${n.what === 'new-service' ? 'used a new kind of service' : 'contacted'} ${n.subject}` }),
        el('small', { text: `${time(Date.parse(n.seen))} · ${n.endpoint} · ${n.service}` }),
      ]),
    ])));
    if (privacy.devices.length === 0) {
      box.replaceChildren(el('p', { class: 'muted', text: 'No assistant has finished a connection yet.' }));
      return;
    }
    box.replaceChildren(...privacy.devices.map((d) => {
      const today = d.days[d.days.length - 1];
      const todayActivations = today ? activations.filter((a) => a.device === d.mac && localDay(a.start, privacy.timeZone) === today.day).length : 0;
      const orgs = new Set(d.endpoints.map((e) => e.org).filter((o) => o));
      const rows = d.endpoints.slice(0, PRIVACY_ENDPOINTS).map((e) => el('tr', {}, [
        el('td', {}, [
          document.createTextNode(visible(e.name)),
          fresh.has(d.mac + ' ' + e.name) ? el('span', { class: 'badge new', text: 'new' }) : null,
        ]),
        el('td', {}, [
          document.createTextNode(e.org || '?'),
          e.party === 'third' ? el('span', { class: 'badge third', text: 'third party' }) : null,
        ]),
        el('td', { text: e.service }),
        el('td', { class: 'num', text: bytes(e.bytesUp) }),
        el('td', { class: 'num', text: bytes(e.bytesDown) }),
      ]));
      return el('div', { class: 'card privacy' }, [
        el('h3', { text: names.get(d.mac) || d.name || d.mac }),
        el('p', { class: 'meta', text: `${plural(orgs.size, 'organisation')} · ${plural(d.endpoints.length, 'endpoint')} · ${share(d.namedShare)} of its bytes to a known organisation${d.learning ? ' · learning until ' + time(Date.parse(d.learningUntil)) : ''}` }),
        today ? el('p', { class: 'meta', text: `${today.day}: ${bytes(today.otherUp)} uploaded besides voice, ${bytes(today.voiceUp)} voice, ${todayActivations} activation${todayActivations === 1 ? '' : 's'}${today.localUp > 0 ? ` · ${bytes(today.localUp)} sent within the home` : ''}` }) : null,
        // a narrow phone scrolls the table, not the page
        el('div', { class: 'scroll' }, [el('table', {}, [
          el('thead', {}, [el('tr', {}, [el('th', { text: 'endpoint' }), el('th', { text: 'organisation' }), el('th', { text: 'service' }), el('th', { class: 'num', text: 'up' }), el('th', { class: 'num', text: 'down' })])]),
          el('tbody', {}, rows),
        ])]),
        d.endpoints.length > PRIVACY_ENDPOINTS ? el('p', { class: 'meta', text: `and ${d.endpoints.length - PRIVACY_ENDPOINTS} more (api/v1/privacy)` }) : null,
      ]);
    }));
  }

  // network hygiene findings, the most severe first (the API's order): one card per finding, and one for
  // the same finding about several devices (every assistant on one segment gets the same advice), naming them
  function groupFindings(list) {
    const groups = new Map();
    for (const f of list) {
      const key = JSON.stringify([f.kind, f.severity, f.title, f.subject, f.evidence, f.evidenceDropped, f.advice]);
      const g = groups.get(key);
      if (g) g.push(f);
      else groups.set(key, [f]);
    }
    return [...groups.values()];
  }
  function drawFindings(result, names) {
    const box = $('findings');
    box.replaceChildren();
    const list = result.findings || [];
    if (list.length === 0) {
      box.append(el('li', { class: 'muted', text: 'None: no port mapping, inbound connection, DNS around your resolver or plaintext seen.' }));
      return;
    }
    const nameOf = (f) => (f.device ? names.get(f.device) || f.deviceName || f.device : 'no device');
    for (const group of groupFindings(list)) {
      const f = group[0];
      const assistants = group.filter((x) => x.assistant).length;
      const who = group.length === 1
        ? nameOf(f) + (f.assistant ? ' (assistant)' : '')
        : `${group.map(nameOf).join(', ')} (${assistants === group.length ? `${group.length} assistants` : `${group.length} devices`})`;
      // a count is each device's own (the segment advice counts the computers beside it): not summed
      const counts = group.map((x) => x.count);
      const low = Math.min(...counts);
      const high = Math.max(...counts);
      const seen = group.length === 1 ? `${low}×` : `${low === high ? low : `${low}–${high}`}× each`;
      const first = Math.min(...group.map((x) => Date.parse(x.firstSeen)));
      const last = Math.max(...group.map((x) => Date.parse(x.lastSeen)));
      box.append(el('li', { class: 'card finding', 'data-kind': f.kind, 'data-devices': String(group.length) }, [
        el('div', { class: 'what' }, [
          el('strong', {}, [el('span', { class: 'pill ' + f.severity, text: f.severity }), el('span', { text: ' ' + f.title })]),
          el('small', { class: 'who', text: `${who} · seen ${seen} · ${time(first)} – ${time(last)}` }),
          ...f.evidence.slice(0, 3).map((e) => el('small', { class: 'evidence', text: e })),
          f.evidence.length + f.evidenceDropped > 3 ? el('small', { text: `… ${f.evidence.length + f.evidenceDropped - 3} more` }) : null,
          el('small', { class: 'advice', text: 'What to do: ' + f.advice }),
        ]),
      ]));
    }
    if (result.total > list.length) box.append(el('li', { class: 'muted', text: `${result.total - list.length} more in /api/v1/findings` }));
  }

  function drawHealth(h) {
    // which home: several earshots (one per site) look alike in a browser's tabs
    if (h.site) {
      $('site-name').textContent = visible(h.site);
      document.title = `earshot · ${h.site}`;
    }
    const pill = $('health-pill');
    pill.textContent = h.status === 'ok' ? 'collector ok' : 'collector ' + h.status;
    pill.className = 'pill ' + (h.status === 'ok' ? 'ok' : 'degraded');
    const c = h.capture || {};
    const rows = [
      ['site', h.site || '?'],
      ['status', h.status],
      ['capture', `${c.running ? 'running' : 'ended'} · ${c.source || '?'}`],
      ['packets', `${c.packets} (${bytes(c.bytes || 0)})`],
      ['drops', `${c.kernelDrops} kernel, ${c.interfaceDrops} interface, ${c.decodeErrors} decode errors`],
      ['flows', `${c.flowsActive} open, ${c.flowsEvicted} evicted`],
      ['activations', String(h.activations)],
      ['InfluxDB', h.influx ? `${h.influx.reachable ? 'reachable' : 'unreachable'} · ${h.influx.pointsWritten} points written, ${h.influx.queueDepth} queued` : 'not configured'],
      ['uptime', duration(h.uptimeS || 0)],
      ['version', h.version],
    ];
    $('health').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
  }

  // ---- actions -------------------------------------------------------------------------------

  async function sendLabel(id, label, buttons) {
    if (!getToken()) {
      showTokenForm(true);
      say('Labelling needs the API token: enter it above, then press the button again.', true);
      return;
    }
    for (const b of buttons.children) b.disabled = true;
    try {
      const a = await api(`activations/${encodeURIComponent(id)}/label`, { method: 'POST', body: JSON.stringify({ label }) });
      say(`Activation ${a.id} marked ${label.replace('-', ' ')}: verdict ${a.verdict}.`);
      await refresh();
    } catch (err) {
      say(explain(err, 'labelling'), true);
    } finally {
      for (const b of buttons.children) b.disabled = false;
    }
  }

  // ---- polling -------------------------------------------------------------------------------

  let busy = false;
  /** When the API last answered every read: what the page shows is from then. */
  let lastUpdateMs = 0;
  /** Each section's inputs when it was last drawn: one that did not change is not drawn again, so focus,
   * a selection (an activation id being copied) and a tooltip survive the poll */
  const drawn = new Map();
  function drawIfChanged(section, inputs, draw) {
    const key = JSON.stringify(inputs);
    if (drawn.get(section) === key) return;
    drawn.set(section, key);
    draw();
  }
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      // health first: a refused token or an unreachable collector costs one request, not five
      const h = await api('health');
      const [d, a, p, f] = await Promise.all([api('devices'), api('activations?limit=1000'),
        api('privacy').catch((err) => (err && err.status === 409 ? null : Promise.reject(err))), api('findings?limit=50')]);
      const t = Date.now();
      const assistants = d.devices.filter((x) => x.assistant);
      for (const x of assistants) {
        const list = samples.get(x.mac) || [];
        list.push({ t, bytesUp: x.bytesUp });
        if (list.length > SPARK_POINTS + 1) list.shift();
        samples.set(x.mac, list);
      }
      nameDevices(d.devices);
      const names = new Map(d.devices.map((x) => [x.mac, deviceName(x)]));
      const replay = /^file\b/i.test((h.capture && h.capture.source) || '');
      const named = [...names];
      document.body.classList.remove('stale');
      lastUpdateMs = Date.now();
      drawHealth(h);
      drawAssistants(assistants, a.activations);
      // the timeline's "now" moves: drawn again once a minute at least
      drawIfChanged('timeline', [a.activations, assistants.map(deviceName), replay, replay ? 0 : Math.floor(Date.now() / 60_000)], () => drawTimeline(a.activations, assistants, replay));
      drawIfChanged('suspected', [a.activations.filter((x) => x.verdict === 'suspected'), named], () => drawSuspected(a.activations, names));
      drawIfChanged('privacy', [p, a.activations.map((x) => [x.device, x.start]), named], () => drawPrivacy(p, a.activations, names));
      drawIfChanged('findings', [f, named], () => drawFindings(f, names));
      drawIfChanged('local', [a.activations.filter((x) => x.local), named], () => drawLocal(a.activations, names));
      if (lastMessageIsError && !$('message').textContent.includes('labelling')) say('');
    } catch (err) {
      $('health-pill').textContent = 'unreachable';
      $('health-pill').className = 'pill error';
      // what the page shows is old now: no assistant is "listening now", no status is current
      document.body.classList.add('stale');
      for (const pill of document.querySelectorAll('.assistant .state')) {
        pill.textContent = 'unknown';
        pill.className = 'pill state unknown';
      }
      const since = lastUpdateMs > 0 ? ` Showing what it said at ${new Date(lastUpdateMs).toLocaleTimeString()}.` : '';
      say(explain(err, 'reading the status') + since, true);
    } finally {
      busy = false;
    }
  }

  showTokenForm(!getToken());
  void refresh();
  window.setInterval(() => void refresh(), POLL_MS);
})();
