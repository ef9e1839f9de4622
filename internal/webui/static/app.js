// Warren web UI: plain JavaScript, no framework, no build step.
//
// Every view is one GET on the management API, rendered with textContent
// (names from clients are never parsed as HTML). Fields the API leaves out
// show as 0 or blank. Credentials live in sessionStorage for this tab and
// go out as an HTTP basic Authorization header; a 401 shows the login form.
'use strict';

(function () {
  const REFRESH_MS = 5000; // how often the current view is fetched again
  const ARM_MS = 10000; // how long a Purge/Delete button waits for its second click
  const AUTH_KEY = 'warren.auth';

  const ENDPOINTS = {
    overview: '/api/overview',
    queues: '/api/queues',
    exchanges: '/api/exchanges',
    connections: '/api/connections',
  };
  const VIEWS = Object.keys(ENDPOINTS);

  const $ = (id) => document.getElementById(id);

  // --- values that may be missing -------------------------------------

  function num(v) {
    return typeof v === 'number' && isFinite(v) ? v : 0;
  }
  function str(v) {
    return typeof v === 'string' || typeof v === 'number' ? String(v) : '';
  }
  function bool(v) {
    return v === true ? 'yes' : v === false ? 'no' : '';
  }
  // get(o, 'a', 'b') is o.a.b, or undefined when a step is missing.
  function get(obj, ...path) {
    for (const key of path) {
      if (obj === null || typeof obj !== 'object') return undefined;
      obj = obj[key];
    }
    return obj;
  }
  // rate shows a per-second rate with at most two decimals: 0, 0.2, 12.35.
  function rate(v) {
    return String(Number(num(v).toFixed(2)));
  }
  // list accepts a plain array or a paginated {items: [...]} answer.
  function list(data) {
    if (Array.isArray(data)) return data;
    if (data && Array.isArray(data.items)) return data.items;
    return [];
  }

  // --- credentials and API calls --------------------------------------

  class Unauthorized extends Error {}

  function auth() {
    try {
      return JSON.parse(sessionStorage.getItem(AUTH_KEY));
    } catch (e) {
      return null;
    }
  }

  function basicHeader(user, password) {
    // btoa takes Latin-1 only; encode as UTF-8 first.
    let s = '';
    for (const b of new TextEncoder().encode(user + ':' + password)) s += String.fromCharCode(b);
    return 'Basic ' + btoa(s);
  }

  async function api(method, path) {
    const a = auth();
    if (!a) throw new Unauthorized('not logged in');
    const headers = { Authorization: a.header };
    // Only GETs ask for JSON: RabbitMQ answers a purge that does with 406.
    if (method === 'GET') headers.Accept = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      credentials: 'omit', // no browser password prompt on 401, no cached login
      cache: 'no-store',
    });
    if (res.status === 401) throw new Unauthorized('not authorised');
    if (!res.ok) {
      let reason = res.statusText;
      try {
        const body = await res.json();
        reason = body.reason || body.error || reason;
      } catch (e) { /* not JSON: keep the status text */ }
      throw new Error(method + ' ' + path + ': ' + res.status + ' ' + reason);
    }
    return method === 'GET' ? res.json() : null;
  }

  function showLogin(message) {
    sessionStorage.removeItem(AUTH_KEY);
    $('login').hidden = false;
    $('views').hidden = true;
    $('logout').hidden = true;
    $('whoami').textContent = '';
    $('login-error').textContent = message || '';
  }

  function showApp() {
    $('login').hidden = true;
    $('views').hidden = false;
    $('logout').hidden = false;
    $('whoami').textContent = auth().user;
  }

  function fail(err) {
    if (err instanceof Unauthorized) {
      showLogin(auth() ? 'User name or password not accepted.' : '');
    } else {
      $('error').textContent = err.message;
    }
  }

  // --- routing and refresh ---------------------------------------------

  function currentView() {
    const v = location.hash.replace(/^#\/?/, '');
    return VIEWS.includes(v) ? v : 'overview';
  }

  function showView() {
    const view = currentView();
    for (const name of VIEWS) $('view-' + name).hidden = name !== view;
    for (const a of document.querySelectorAll('#nav a')) {
      a.classList.toggle('active', a.dataset.view === view);
    }
  }

  let generation = 0; // answers to older requests are dropped

  async function refresh() {
    if (!auth()) return;
    const view = currentView();
    const gen = ++generation;
    try {
      const data = await api('GET', ENDPOINTS[view]);
      if (gen !== generation) return;
      RENDER[view](data);
      $('error').textContent = '';
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (err) {
      if (gen === generation) fail(err);
    }
  }

  // --- rendering ---------------------------------------------------------

  function setText(id, text) {
    $(id).textContent = text;
  }

  function cell(text, testid, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (testid) td.dataset.testid = testid;
    if (cls) td.className = cls;
    return td;
  }

  function fillTable(id, rows, emptyText) {
    const tbody = $(id).tBodies[0];
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = cell(emptyText, id + '-empty', 'empty');
      td.colSpan = $(id).tHead.rows[0].cells.length;
      tr.append(td);
      rows = [tr];
    }
    tbody.replaceChildren(...rows);
  }

  function row(testid, name, cells) {
    const tr = document.createElement('tr');
    tr.dataset.testid = testid;
    tr.dataset.name = name;
    tr.append(...cells);
    return tr;
  }

  function renderOverview(o) {
    setText('ov-rate-publish', rate(get(o, 'message_stats', 'publish_details', 'rate')));
    setText('ov-rate-deliver', rate(get(o, 'message_stats', 'deliver_get_details', 'rate')));
    setText('ov-rate-ack', rate(get(o, 'message_stats', 'ack_details', 'rate')));
    for (const k of ['connections', 'channels', 'queues', 'consumers']) {
      setText('ov-' + k, String(num(get(o, 'object_totals', k))));
    }
    setText('ov-ready', String(num(get(o, 'queue_totals', 'messages_ready'))));
    setText('ov-unacked', String(num(get(o, 'queue_totals', 'messages_unacknowledged'))));
    setText('ov-messages', String(num(get(o, 'queue_totals', 'messages'))));
  }

  let lastQueues = [];
  const armed = new Map(); // "kind vhost name" → timer that disarms it

  function renderQueues(data) {
    lastQueues = list(data);
    fillTable('queues-table', lastQueues.map((q) => {
      const name = str(get(q, 'name'));
      const ready = num(get(q, 'messages_ready'));
      const unacked = num(get(q, 'messages_unacknowledged'));
      const total = typeof get(q, 'messages') === 'number' ? q.messages : ready + unacked;
      const actions = cell('', 'queue-actions', 'actions');
      actions.append(actionButton('purge', q), actionButton('delete', q));
      return row('queue-row', name, [
        cell(str(get(q, 'vhost')), 'queue-vhost'),
        cell(name, 'queue-name'),
        cell(String(ready), 'queue-ready', 'n'),
        cell(String(unacked), 'queue-unacked', 'n'),
        cell(String(total), 'queue-messages', 'n'),
        cell(rate(get(q, 'message_stats', 'publish_details', 'rate')), 'queue-publish-rate', 'n'),
        cell(rate(get(q, 'message_stats', 'deliver_get_details', 'rate')), 'queue-deliver-rate', 'n'),
        cell(String(num(get(q, 'consumers'))), 'queue-consumers', 'n'),
        actions,
      ]);
    }), 'No queues');
  }

  // actionButton makes a Purge or Delete button that needs two clicks: the
  // first arms it ("Really purge?") for ARM_MS, the second acts.
  function actionButton(kind, q) {
    const vhost = str(get(q, 'vhost')) || '/';
    const name = str(get(q, 'name'));
    const key = kind + ' ' + vhost + ' ' + name;
    const isArmed = armed.has(key);
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.testid = kind;
    b.dataset.armed = String(isArmed);
    b.textContent = isArmed ? 'Really ' + kind + '?' : kind === 'purge' ? 'Purge' : 'Delete';
    b.classList.toggle('armed', isArmed);
    b.addEventListener('click', () => onAction(kind, key, vhost, name));
    return b;
  }

  async function onAction(kind, key, vhost, name) {
    if (!armed.has(key)) {
      armed.set(key, setTimeout(() => {
        armed.delete(key);
        renderQueues(lastQueues);
      }, ARM_MS));
      renderQueues(lastQueues);
      return;
    }
    clearTimeout(armed.get(key));
    armed.delete(key);
    renderQueues(lastQueues);
    const path = '/api/queues/' + encodeURIComponent(vhost) + '/' + encodeURIComponent(name) +
      (kind === 'purge' ? '/contents' : '');
    try {
      await api('DELETE', path);
      setText('status', (kind === 'purge' ? 'Purged queue ' : 'Deleted queue ') + name);
    } catch (err) {
      if (err instanceof Unauthorized) fail(err);
      else setText('status', 'Could not ' + kind + ' queue ' + name + ': ' + err.message);
      return;
    }
    refresh();
  }

  function renderExchanges(data) {
    fillTable('exchanges-table', list(data).map((x) => {
      const name = str(get(x, 'name'));
      return row('exchange-row', name, [
        cell(str(get(x, 'vhost')), 'exchange-vhost'),
        cell(name === '' ? '(AMQP default)' : name, 'exchange-name'),
        cell(str(get(x, 'type')), 'exchange-type'),
        cell(bool(get(x, 'durable')), 'exchange-durable'),
        cell(bool(get(x, 'auto_delete')), 'exchange-auto-delete'),
        cell(bool(get(x, 'internal')), 'exchange-internal'),
      ]);
    }), 'No exchanges');
  }

  function renderConnections(data) {
    fillTable('connections-table', list(data).map((c) => {
      const name = str(get(c, 'name'));
      const client = str(get(c, 'client_properties', 'connection_name')) || str(get(c, 'user_provided_name'));
      return row('connection-row', name, [
        cell(name, 'connection-name'),
        cell(str(get(c, 'user')), 'connection-user'),
        cell(String(num(get(c, 'channels'))), 'connection-channels', 'n'),
        cell(client, 'connection-client-name'),
      ]);
    }), 'No connections');
  }

  const RENDER = {
    overview: renderOverview,
    queues: renderQueues,
    exchanges: renderExchanges,
    connections: renderConnections,
  };

  // --- start -------------------------------------------------------------

  window.addEventListener('error', (e) => { $('error').textContent = 'Page error: ' + e.message; });
  window.addEventListener('unhandledrejection', (e) => { $('error').textContent = 'Page error: ' + e.reason; });

  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const user = $('login-user').value;
    const header = basicHeader(user, $('login-password').value);
    sessionStorage.setItem(AUTH_KEY, JSON.stringify({ user, header }));
    $('login-error').textContent = '';
    showApp();
    refresh();
  });

  $('logout').addEventListener('click', () => showLogin(''));

  window.addEventListener('hashchange', () => {
    showView();
    refresh();
  });

  showView();
  if (auth()) {
    showApp();
    refresh();
  } else {
    showLogin('');
  }
  setInterval(refresh, REFRESH_MS);
})();
