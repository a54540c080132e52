// The mcx console: a client of the JSON API (/v1) with the user's own bearer token.
// Pages are built from text nodes only (never HTML strings), so nothing stored on the
// server can become markup. Live updates: the user's event stream (/v1/events) and, for
// group administrators, the flow trace (/v1/trace) tell the open page to refresh its data.
'use strict';

const XCAP_ROOT = document.querySelector('meta[name="mcx-xcap-root"]').content || '/xcap-root';
const SERVICES = ['mcptt', 'mcvideo', 'mcdata'];

const console_ = {
  token: sessionStorage.getItem('mcx-token'),
  session: JSON.parse(sessionStorage.getItem('mcx-session') || 'null'),
  view: null,
  flows: [],
  traceSeq: 0,
  lastEventId: null,
  changes: [],
  asked: [],
  stream: null,
  traceTimer: null,
  pollTimer: null,
  refreshTimer: null,
};

// ---- the API ----------------------------------------------------------------------

class Problem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || '';
  }
}

async function api(method, path, body, extraHeaders) {
  const headers = Object.assign({ Accept: 'application/json' }, extraHeaders || {});
  if (console_.token) headers.Authorization = `Bearer ${console_.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new Problem(0, { detail: `The server could not be reached (${e.message}).` });
  }
  const type = response.headers.get('content-type') || '';
  if (!response.ok) {
    let problem = { detail: `The server answered ${response.status} ${response.statusText}.` };
    if (type.includes('json')) {
      try { problem = await response.json(); } catch (_) { /* keep the status line */ }
    }
    if (response.status === 401 && path !== '/v1/session') {
      endSession('Your session has ended: log on again.');
    }
    throw new Problem(response.status, problem);
  }
  if (response.status === 204) return { body: null, etag: response.headers.get('etag') };
  const text = await response.text();
  const parsed = type.includes('json') && text ? JSON.parse(text) : text;
  return { body: parsed, etag: response.headers.get('etag') };
}

const get = async (path) => (await api('GET', path)).body;
const seg = (id) => encodeURIComponent(id);
const me = () => console_.session && console_.session['mc-service-id'];

// ---- building the page ------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replaces an element's content only when it would look different: a live refresh then
// leaves alone what the user is pointing at, focused on, or reading with a screen reader.
function fill(el, ...children) {
  const next = document.createElement(el.tagName);
  append(next, children);
  if (next.innerHTML === el.innerHTML && el.childNodes.length) return;
  el.replaceChildren(...next.childNodes);
}

function badge(state) {
  return h('span', { class: `state ${state}` }, state);
}

function table(caption, headings, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('div', { class: 'table' },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c)))))));
}

function field(label, input) {
  return h('label', {}, label, input);
}

function serviceSelect(name) {
  return h('select', { name }, SERVICES.map((s) => h('option', { value: s }, s)));
}

function words(text) {
  return text.split(/[\s,]+/).map((w) => w.trim()).filter(Boolean);
}

function when(text) {
  if (!text) return '';
  const at = new Date(text);
  const seconds = Math.round((Date.now() - at.getTime()) / 1000);
  const ago = seconds < 60 ? `${Math.max(seconds, 0)} s ago`
    : seconds < 3600 ? `${Math.round(seconds / 60)} min ago` : `${Math.round(seconds / 3600)} h ago`;
  return h('time', { datetime: text, title: text }, `${text.replace(/\.\d+/, '')} (${ago})`);
}

function age(seconds) {
  if (!seconds) return '—';
  return seconds < 120 ? `${seconds} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`;
}

function link(text, hash) {
  return h('a', { href: hash }, text);
}

function say(text, ok) {
  const box = document.getElementById('message');
  box.className = ok ? 'ok' : '';
  box.textContent = text;
}

// Runs an action from a form or a button: a refusal shows the problem's sentence.
async function act(what, run) {
  say('');
  try {
    await run();
    say(`${what}: done.`, true);
    refreshSoon(0);
  } catch (e) {
    say(e.code ? `${what}: ${e.message} (${e.code})` : `${what}: ${e.message}`);
  }
}

function onSubmit(form, what, run) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    act(what, () => run(new FormData(form)));
  });
  return form;
}

// ---- pages --------------------------------------------------------------------------
// Each page mounts its frame once (headings, forms) and refreshes only its data parts,
// so a live update never wipes what the user is typing.

const pages = {};

pages.logon = {
  title: 'Log on',
  mount(main) {
    const form = h('form', { id: 'logon-form', 'aria-labelledby': 'logon-title' },
      field('MC service ID', h('input', { name: 'user', id: 'logon-user', required: true, autocomplete: 'username', placeholder: 'sip:alice@police.example' })),
      field('Password', h('input', { name: 'password', id: 'logon-password', type: 'password', required: true, autocomplete: 'current-password' })),
      field('Client', h('input', { name: 'client', id: 'logon-client', value: 'console', required: true })),
      h('button', { type: 'submit', id: 'logon-submit' }, 'Log on'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      say('');
      try {
        const answer = (await api('POST', '/v1/session', {
          'mc-service-id': data.get('user'), password: data.get('password'), 'client-id': data.get('client'),
        })).body;
        startSession(answer.token, answer.session);
        location.hash = '#/overview';
      } catch (e) {
        say(`Log on: ${e.message}`);
      }
    });
    fill(main, h('h1', { id: 'logon-title' }, 'Log on'), h('section', {}, form,
      h('p', { class: 'muted' }, 'The console acts with your own session: it can do what the mcx CLI can do as you, nothing more.')));
  },
  async refresh() {},
};

pages.overview = {
  title: 'Overview',
  poll: 2000,
  mount(main) {
    this.system = h('div');
    this.partners = h('div', { id: 'partners' });
    this.counts = h('div');
    fill(main, h('h1', {}, 'Overview'),
      h('section', { 'aria-labelledby': 'sys-h' }, h('h2', { id: 'sys-h' }, 'This system'), this.system),
      h('section', { 'aria-labelledby': 'partners-h' }, h('h2', { id: 'partners-h' }, 'Partner systems'), this.partners),
      h('section', { 'aria-labelledby': 'work-h' }, h('h2', { id: 'work-h' }, 'In progress'), this.counts));
  },
  async refresh() {
    const system = await get('/v1/system');
    document.getElementById('system-name').textContent = system.name === system.domain ? system.name : `${system.name} (${system.domain})`;
    fill(this.system, h('dl', {},
      h('dt', {}, 'Name'), h('dd', {}, system.name),
      h('dt', {}, 'Domain'), h('dd', {}, system.domain),
      h('dt', {}, 'mcx'), h('dd', {}, system.version),
      h('dt', {}, 'You'), h('dd', {}, `${me()} (${console_.session['client-id']})`)));
    try {
      const { partners } = await get('/v1/system/partners');
      fill(this.partners, table('Partner links, outbox backlog and the oldest undelivered flow',
        ['Partner', 'Link', 'Waiting flows', 'Oldest undelivered', 'Last error'],
        partners.map((p) => [
          h('span', { 'data-partner': p.partner }, p.partner),
          h('span', { 'data-link': p.partner }, badge(p.link)),
          h('span', { 'data-depth': p.partner }, String(p['outbox-depth'])),
          age(p['oldest-age-seconds']),
          p['last-error'] || '—',
        ]), 'No partner system is configured.'));
    } catch (e) {
      fill(this.partners, h('p', { class: 'muted' }, e.status === 403
        ? 'Partner links are shown to group administrators.' : e.message));
    }
    const [regroups, inbox] = await Promise.all([
      get('/v1/regroups').catch(() => ({ regroups: [] })),
      get('/v1/acm/requests').catch(() => ({ exchanges: [] })),
    ]);
    const waiting = inbox.exchanges.filter((x) => x.state === 'pending').length;
    fill(this.counts, h('ul', {},
      h('li', {}, link(`${regroups.regroups.length} regroup(s) in effect`, '#/regroups')),
      h('li', {}, link(`${waiting} ACM request(s) wait for your answer`, '#/acm'))));
  },
};

pages.groups = {
  title: 'Groups',
  mount(main) {
    this.list = h('div', { id: 'group-list' });
    fill(main, h('h1', {}, 'Groups'), h('section', {}, this.list));
  },
  async refresh() {
    const { groups } = await get('/v1/groups');
    fill(this.list, table('Groups you may see', ['Group', 'Name', 'Services', 'Version', 'Defined in'],
      groups.map((g) => [
        link(g['mc-service-group-id'], `#/groups/${seg(g['mc-service-group-id'])}`),
        g.configuration['display-name'],
        g.configuration['supported-services'].join(', '),
        String(g.version),
        origin(g),
      ]), 'No group is visible to you.'));
  },
};

function origin(group) {
  const o = group.origin;
  if (o === 'local' || !o) return 'this system';
  const primary = (o.partner && o.partner['primary-version']) || '?';
  return `partner system (primary at version ${primary})`;
}

pages.group = {
  title: 'Group',
  mount(main, id) {
    this.id = id;
    this.details = h('div', { id: 'group-details' });
    this.copies = h('div', { id: 'group-copies' });
    this.members = h('div', { id: 'group-affiliations' });
    this.xcap = h('pre', { id: 'group-xcap', tabindex: '0', 'aria-label': 'XCAP group document' });
    this.editor = h('div');
    fill(main, h('h1', {}, `Group ${id}`),
      h('section', { 'aria-labelledby': 'cfg-h' }, h('h2', { id: 'cfg-h' }, 'Configuration'), this.details,
        h('p', {},
          h('button', { type: 'button', class: 'quiet', id: 'edit-group', onclick: () => this.edit() }, 'Edit'), ' ',
          h('button', { type: 'button', class: 'quiet', id: 'rekey-group', onclick: () => act('Rekey', () => api('POST', `/v1/groups/${seg(id)}/rekey`)) }, 'Rekey')),
        this.editor),
      h('section', { 'aria-labelledby': 'copies-h' }, h('h2', { id: 'copies-h' }, 'Partner copies'), this.copies),
      h('section', { 'aria-labelledby': 'aff-h' }, h('h2', { id: 'aff-h' }, 'Affiliated members'), this.members),
      h('section', { 'aria-labelledby': 'xcap-h' }, h('h2', { id: 'xcap-h' }, 'XCAP document'), this.xcap));
  },
  async refresh() {
    const id = this.id;
    const answer = await api('GET', `/v1/groups/${seg(id)}`);
    this.record = answer.body;
    this.etag = answer.etag;
    const c = this.record.configuration;
    fill(this.details, h('dl', {},
      h('dt', {}, 'Name'), h('dd', { id: 'group-name' }, c['display-name']),
      h('dt', {}, 'Services'), h('dd', {}, c['supported-services'].join(', ')),
      h('dt', {}, 'Priority'), h('dd', {}, c['on-network-group-priority'] ?? '—'),
      h('dt', {}, 'Members'), h('dd', {}, c.list.map((m) => m.uri).join(', ') || '—'),
      h('dt', {}, 'Version'), h('dd', { id: 'group-version' }, String(this.record.version)),
      h('dt', {}, 'Key material'), h('dd', {}, this.record['key-material'] ? 'present (shown to members only)' : '—'),
      h('dt', {}, 'Defined in'), h('dd', {}, origin(this.record)),
      h('dt', {}, 'Updated'), h('dd', {}, when(this.record['updated-at']))));
    try {
      const status = await get(`/v1/groups/${seg(id)}/interconnection`);
      const rows = status.partners.map((p) => [p.partner, badge(p.state), String(p.version), p.subscribed ? 'yes' : 'no', p.detail || '—', when(p['updated-at'])]);
      const primary = status.primary
        ? h('p', {}, `Copy of a group of ${status['home-system']}: `, badge(status.primary.state), ' ', status.primary.detail || '')
        : null;
      fill(this.copies, primary, table('Which partners hold a copy, and at which version',
        ['Partner', 'Delivery', 'Version', 'Subscribed', 'Detail', 'Updated'], rows,
        status.primary ? '' : 'Not shared with any partner system.'));
    } catch (e) {
      fill(this.copies, h('p', { class: 'muted' }, e.message));
    }
    fill(this.members, await groupMembers(id));
    try {
      fill(this.xcap, (await api('GET', `${XCAP_ROOT}/org.openmobilealliance.groups/global/byGroupID/${seg(id)}`,
        undefined, { Accept: 'application/vnd.oma.poc.groups+xml' })).body);
    } catch (e) {
      fill(this.xcap, e.message);
    }
  },
  edit() {
    const c = this.record.configuration;
    const form = h('form', { id: 'edit-form', 'aria-label': 'Edit the group' },
      field('Name', h('input', { name: 'name', value: c['display-name'], required: true })),
      field('Priority (0–255)', h('input', { name: 'priority', type: 'number', min: 0, max: 255, value: c['on-network-group-priority'] ?? '' })),
      field('Members (one MC service ID per line)', h('textarea', { name: 'members' }, c.list.map((m) => m.uri).join('\n'))),
      h('button', { type: 'submit' }, 'Save'),
      h('button', { type: 'button', class: 'quiet', onclick: () => fill(this.editor) }, 'Cancel'));
    onSubmit(form, 'Save the group', async (data) => {
      const keep = new Map(c.list.map((m) => [m.uri, m]));
      const configuration = Object.assign({}, c, {
        'display-name': data.get('name'),
        list: words(data.get('members')).map((uri) => keep.get(uri) || { uri }),
      });
      const priority = data.get('priority');
      if (priority === '') delete configuration['on-network-group-priority'];
      else configuration['on-network-group-priority'] = Number(priority);
      await api('PUT', `/v1/groups/${seg(this.id)}`, configuration, { 'If-Match': this.etag || '*' });
      fill(this.editor);
    });
    fill(this.editor, form);
    form.querySelector('input').focus();
  },
};

// A group's affiliated members; for members served here, their clients and state.
async function groupMembers(id) {
  const { members } = await get(`/v1/groups/${seg(id)}/affiliations`);
  const here = console_.session.system;
  const rows = await Promise.all(members.slice(0, 100).map(async (m) => {
    const serving = m['mc-service-id'].split('@')[1] || '';
    let clients = `served by ${serving}`;
    let state = badge('affiliated');
    if (serving === here) {
      try {
        const theirs = await get(`/v1/users/${seg(m['mc-service-id'])}/affiliations`);
        const one = theirs.affiliations.find((a) => a['mc-service-group-id'] === id && a['mc-service'] === m['mc-service']);
        if (one) { clients = one.clients.join(', '); state = badge(one.status); }
      } catch (_) { clients = '(not visible to you)'; }
    }
    return [h('span', { 'data-member': m['mc-service-id'] }, link(m['mc-service-id'], `#/affiliations/user/${seg(m['mc-service-id'])}`)),
      m['mc-service'], clients, state, when(m['updated-at']), serving];
  }));
  const more = members.length > 100 ? h('p', { class: 'muted' }, `and ${members.length - 100} more`) : null;
  return [table(`${members.length} affiliated member(s)`, ['Member', 'Service', 'Clients', 'State', 'Since', 'Serving system'], rows,
    'No member is affiliated.'), more];
}

pages.affiliations = {
  title: 'Affiliations',
  mount(main, kind, id) {
    this.kind = kind;
    this.id = id;
    this.result = h('div', { id: 'affiliation-result' });
    this.changesBox = h('div', { id: 'changes' });
    const look = h('form', { id: 'lookup-form', 'aria-label': 'Look up affiliations' },
      field('Group or user', h('input', { name: 'id', id: 'lookup-id', value: id || '', required: true, placeholder: 'sip:ops@police.example' })),
      field('Of', h('select', { name: 'kind', id: 'lookup-kind' },
        h('option', { value: 'group', selected: kind !== 'user' }, 'a group'),
        h('option', { value: 'user', selected: kind === 'user' }, 'a user'))),
      h('button', { type: 'submit' }, 'Show'));
    look.addEventListener('submit', (event) => {
      event.preventDefault();
      const data = new FormData(look);
      location.hash = `#/affiliations/${data.get('kind')}/${seg(data.get('id').trim())}`;
    });
    const change = h('form', { id: 'change-form', 'aria-label': 'Remote change of affiliation' },
      field('Target users', h('input', { name: 'targets', id: 'change-targets', required: true, placeholder: 'sip:bob@police.example' })),
      field('Group', h('input', { name: 'group', id: 'change-group', required: true, value: kind === 'group' ? id : '' })),
      field('Action', h('select', { name: 'action', id: 'change-action' }, h('option', { value: 'affiliate' }, 'affiliate'), h('option', { value: 'deaffiliate' }, 'de-affiliate'))),
      field('Mode', h('select', { name: 'mode', id: 'change-mode' }, h('option', { value: 'mandatory' }, 'mandatory'), h('option', { value: 'negotiated' }, 'negotiated'))),
      field('Service', serviceSelect('service')),
      h('button', { type: 'submit', id: 'change-submit' }, 'Change'));
    onSubmit(change, 'Remote change', async (data) => {
      const record = (await api('POST', '/v1/affiliation-changes', {
        'mc-service-id': me(),
        'mc-service-id-list': words(data.get('targets')),
        'mc-service-group-id-list': [{ 'mc-service-group-id': data.get('group').trim(), action: data.get('action') }],
        'change-request-type': data.get('mode'),
        'mc-service': data.get('service'),
      })).body;
      console_.changes.unshift(record['change-id']);
    });
    this.askedBox = h('div', { id: 'asked' });
    fill(main, h('h1', {}, 'Affiliations'),
      h('section', { 'aria-labelledby': 'look-h' }, h('h2', { id: 'look-h' }, 'Who is affiliated'), look, this.result),
      h('section', { 'aria-labelledby': 'change-h' }, h('h2', { id: 'change-h' }, 'Change other users\' affiliations'), change, this.changesBox),
      h('section', { 'aria-labelledby': 'asked-h' }, h('h2', { id: 'asked-h' }, 'Changes asked of you'), this.askedBox));
  },
  async refresh() {
    if (this.kind === 'group' && this.id) {
      fill(this.result, h('h3', {}, link(this.id, `#/groups/${seg(this.id)}`)), await groupMembers(this.id));
    } else if (this.kind === 'user' && this.id) {
      const theirs = await get(`/v1/users/${seg(this.id)}/affiliations`);
      fill(this.result, h('h3', {}, this.id), table(`Groups ${this.id} is affiliated to`, ['Group', 'Service', 'Clients', 'State'],
        theirs.affiliations.map((a) => [link(a['mc-service-group-id'], `#/affiliations/group/${seg(a['mc-service-group-id'])}`), a['mc-service'], a.clients.join(', '), badge(a.status)]),
        'Not affiliated to any group.'));
    } else {
      fill(this.result, h('p', { class: 'muted' }, 'Name a group or a user.'));
    }
    fill(this.askedBox, table('Other users changing your affiliations', ['From', 'Mode', 'Change', 'Answer'],
      console_.asked.map((a) => {
        const r = a.request;
        const answer = (decision) => act(`Answer ${decision}`, async () => {
          await api('POST', `/v1/affiliation-changes/${seg(a['change-id'])}/response`, { decision });
          console_.asked = console_.asked.filter((x) => x !== a);
        });
        const buttons = r['change-request-type'] === 'negotiated'
          ? [h('button', { type: 'button', 'data-accept-change': a['change-id'], onclick: () => answer('accept') }, 'Accept'), ' ',
            h('button', { type: 'button', class: 'danger', onclick: () => answer('reject') }, 'Reject')]
          : [h('button', { type: 'button', 'data-acknowledge-change': a['change-id'], onclick: () => answer('acknowledge') }, 'Acknowledge')];
        return [r['mc-service-id'], r['change-request-type'],
          r['mc-service-group-id-list'].map((g) => `${g.action} ${g['mc-service-group-id']}`).join(', '), buttons];
      }), 'Nobody asked to change your affiliations.'));
    const records = await Promise.all(console_.changes.slice(0, 20).map((c) => get(`/v1/affiliation-changes/${seg(c)}`).catch(() => null)));
    fill(this.changesBox, table('Changes made from this console', ['Change', 'Mode', 'Group', 'State', 'Targets'],
      records.filter(Boolean).map((r) => [
        r['change-id'], r.request['change-request-type'],
        r.request['mc-service-group-id-list'].map((g) => `${g.action} ${g['mc-service-group-id']}`).join(', '),
        h('span', { 'data-change': r['change-id'] }, badge(r.state)),
        h('ul', {}, r.targets.map((t) => h('li', {}, `${t['mc-service-id']}: `, badge(t.state), t.reason ? ` (${t.reason})` : ''))),
      ]), 'No change made from this console yet.'));
  },
};

pages.regroups = {
  title: 'Regroups',
  mount(main) {
    this.list = h('div', { id: 'regroup-list' });
    const form = h('form', { id: 'regroup-form', 'aria-label': 'Create a regroup' },
      field('Preconfigured group', h('input', { name: 'preconfigured', id: 'regroup-preconfigured', required: true })),
      field('Groups to regroup', h('input', { name: 'groups', id: 'regroup-groups', required: true })),
      field('Regroup group ID (optional)', h('input', { name: 'regroup', id: 'regroup-id' })),
      field('Service', serviceSelect('service')),
      h('button', { type: 'submit', id: 'regroup-submit' }, 'Regroup'));
    onSubmit(form, 'Regroup', async (data) => {
      const request = {
        'mc-service-id': me(),
        'preconfigured-group-id': data.get('preconfigured').trim(),
        'mc-service-group-id-list': words(data.get('groups')),
        'mc-service': data.get('service'),
      };
      if (data.get('regroup').trim()) request['regroup-group-id'] = data.get('regroup').trim();
      await api('POST', '/v1/regroups', request);
    });
    fill(main, h('h1', {}, 'Regroups'),
      h('section', { 'aria-labelledby': 'rg-h' }, h('h2', { id: 'rg-h' }, 'In effect'), this.list),
      h('section', { 'aria-labelledby': 'new-rg-h' }, h('h2', { id: 'new-rg-h' }, 'Regroup groups'), form));
  },
  async refresh() {
    const { regroups } = await get('/v1/regroups');
    fill(this.list, table('Regroups this system takes part in', ['Regroup group', 'From', 'Groups', 'Service', 'State', 'Initiator', 'Members told', ''],
      regroups.map((r) => [
        h('span', { 'data-regroup': r['regroup-group-id'] }, r['regroup-group-id']),
        r['preconfigured-group-id'], r['mc-service-group-id-list'].join(', '), r['mc-service'], badge(r.state), r.initiator,
        r.members.length ? h('ul', {}, r.members.map((m) => h('li', {}, `${m['mc-service-id']} (${m['client-id']})${m.acknowledged ? ', acknowledged' : ''}`))) : 'none here',
        h('button', { type: 'button', class: 'danger', 'data-cancel': r['regroup-group-id'], onclick: () => act('Cancel the regroup', () => api('DELETE', `/v1/regroups/${seg(r['regroup-group-id'])}`)) }, 'Cancel'),
      ]), 'No regroup is in effect.'));
  },
};

pages.acm = {
  title: 'ACM',
  mount(main) {
    this.inbox = h('div', { id: 'acm-inbox' });
    this.outbox = h('div', { id: 'acm-outbox' });
    const form = h('form', { id: 'acm-form', 'aria-label': 'Provide interconnection group IDs' },
      field('Partner user', h('input', { name: 'target', id: 'acm-target', required: true })),
      field('Interconnection group IDs', h('input', { name: 'groups', id: 'acm-groups', required: true })),
      h('button', { type: 'submit' }, 'Provide'));
    onSubmit(form, 'Provide group IDs', (data) => api('POST', '/v1/acm/provisions', {
      'target-mc-service-id': data.get('target').trim(),
      'interconnection-group-id-list': words(data.get('groups')),
    }));
    fill(main, h('h1', {}, 'ACM: interconnection group IDs'),
      h('section', { 'aria-labelledby': 'in-h' }, h('h2', { id: 'in-h' }, 'Inbox: provided to you'), this.inbox),
      h('section', { 'aria-labelledby': 'out-h' }, h('h2', { id: 'out-h' }, 'Outbox: provided by you'), this.outbox, form));
  },
  async refresh() {
    const [inbox, outbox] = await Promise.all([get('/v1/acm/requests'), get('/v1/acm/provisions')]);
    fill(this.inbox, table('Requests addressed to you', ['From', 'Groups', 'State', 'Updated', 'Answer'],
      inbox.exchanges.map((x) => {
        const id = x.request['request-id'];
        const path = `/v1/acm/requests/${seg(id)}`;
        let answer = x.response ? badge(x.response.decision.decision) : '';
        if (x.state === 'pending') {
          answer = h('span', {},
            h('button', { type: 'button', 'data-accept': id, onclick: () => act('Accept', () => api('POST', `${path}/response`, { decision: 'accepted' })) }, 'Accept'), ' ',
            h('button', { type: 'button', class: 'danger', 'data-reject': id, onclick: () => act('Reject', () => api('POST', `${path}/response`, { decision: 'rejected' })) }, 'Reject'));
        } else if (x.response && x.response.decision.decision === 'accepted') {
          const apply = h('form', { 'aria-label': 'Apply to local users', 'data-apply': id },
            field('Local users', h('input', { name: 'users', required: true })), field('Service', serviceSelect('service')),
            h('button', { type: 'submit' }, 'Apply'));
          onSubmit(apply, 'Apply', (data) => api('POST', `${path}/apply`, { users: words(data.get('users')), 'mc-service': data.get('service') }));
          answer = [badge('accepted'), x['applied-to'] && x['applied-to'].length ? ` applied to ${x['applied-to'].join(', ')}` : '', apply];
        }
        return [x.request['mc-service-id'], x.request['interconnection-group-id-list'].join(', '),
          h('span', { 'data-acm-state': id }, badge(x.state)), when(x['updated-at']), answer];
      }), 'Nothing was provided to you.'));
    fill(this.outbox, table('Requests you sent', ['To', 'Groups', 'State', 'Detail', 'Updated'],
      outbox.exchanges.map((x) => [x.request['target-mc-service-id'], x.request['interconnection-group-id-list'].join(', '),
        badge(x.response ? x.response.decision.decision : x.state), x.detail || '—', when(x['updated-at'])]),
      'You have not provided group IDs to anyone.'));
  },
};

pages.flows = {
  title: 'Flows',
  mount(main) {
    this.chart = h('div', { class: 'chart', id: 'flow-chart' });
    this.list = h('div');
    fill(main, h('h1', {}, 'Recent flows'),
      h('section', { 'aria-labelledby': 'chart-h' }, h('h2', { id: 'chart-h' }, 'Sequence chart'), this.chart),
      h('section', { 'aria-labelledby': 'list-h' }, h('h2', { id: 'list-h' }, 'As a list'), this.list));
  },
  async refresh() {
    const arrows = console_.flows.slice(-40);
    if (!arrows.length) {
      fill(this.chart, h('p', { class: 'muted' }, 'No flow recorded yet (the trace is shown to group administrators).'));
      fill(this.list);
      return;
    }
    fill(this.chart, chart(arrows));
    fill(this.list, h('ol', {}, arrows.map((a) => h('li', {}, `${a.at.replace(/\.\d+/, '')}: ${a.from} → ${a.to}: ${a.flow} (${a.correlation})`))));
  },
};

// The sequence chart: lifelines in order of appearance, one arrow per flow.
function chart(arrows) {
  const NS = 'http://www.w3.org/2000/svg';
  const lanes = [];
  for (const a of arrows) for (const who of [a.from, a.to]) if (!lanes.includes(who)) lanes.push(who);
  const laneWidth = 190; const top = 40; const step = 26;
  const width = lanes.length * laneWidth + 60; const height = top + arrows.length * step + 20;
  const svg = document.createElementNS(NS, 'svg');
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    svg.append(e);
    return e;
  };
  svg.setAttribute('width', width); svg.setAttribute('height', height);
  svg.setAttribute('role', 'img'); svg.setAttribute('aria-label', `Sequence chart of the last ${arrows.length} flows`);
  const defs = document.createElementNS(NS, 'defs');
  defs.innerHTML = '<marker id="head" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#0b5cad"/></marker>';
  svg.append(defs);
  const x = (who) => lanes.indexOf(who) * laneWidth + laneWidth / 2;
  lanes.forEach((who) => {
    el('text', { x: x(who), y: 16, 'text-anchor': 'middle', 'font-weight': 'bold' }, who);
    el('line', { x1: x(who), y1: 24, x2: x(who), y2: height - 8, stroke: '#d0d7de', 'stroke-dasharray': '4 3' });
  });
  arrows.forEach((a, i) => {
    const y = top + i * step;
    const [x1, x2] = [x(a.from), x(a.to)];
    el('line', { x1, y1: y, x2: x1 === x2 ? x1 + 30 : x2, y2: y, stroke: '#0b5cad', 'marker-end': 'url(#head)' });
    el('text', { x: (x1 + x2) / 2, y: y - 4, 'text-anchor': 'middle' }, a.flow);
  });
  return svg;
}

// Mirrors the demo's lifelines: "<system> <entity>" for servers, "<user> <client>" for clients.
function arrowOf(entry) {
  const short = (domain) => domain.split('.')[0];
  const own = `${short(entry.system)} ${entry.entity}`;
  let other = entry.peer;
  if (other.startsWith('sip:')) {
    other = other.slice(4).replace(/@([^ .]+)[^ ]*/, '@$1');
  } else if (other.includes(' ') && other.split(' ')[0].includes('.')) {
    const [domain, ...entity] = other.split(' ');
    other = `${short(domain)} ${entity.join(' ')}`;
  } else {
    other = `${short(entry.system)} ${other}`;
  }
  const client = entry.peer.startsWith('sip:') || entry.peer === 'MC service client';
  if (entry.direction === 'received' && !client) return null;
  const [from, to] = entry.direction === 'sent' ? [own, other] : [other, own];
  return { at: entry.at, from, to, flow: entry.flow, correlation: entry.correlation };
}

// ---- sessions, routing and live updates ----------------------------------------------

function startSession(token, session) {
  console_.token = token;
  console_.session = session;
  sessionStorage.setItem('mcx-token', token);
  sessionStorage.setItem('mcx-session', JSON.stringify(session));
  startLive();
}

function endSession(why) {
  console_.token = null;
  console_.session = null;
  sessionStorage.removeItem('mcx-token');
  sessionStorage.removeItem('mcx-session');
  stopLive();
  if (why) say(why);
  location.hash = '#/logon';
  route();
}

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  let name = parts[0] || 'overview';
  if (!console_.token) name = 'logon';
  else if (name === 'logon') name = 'overview';
  const args = parts.slice(1);
  if (name === 'groups' && args[0]) name = 'group';
  const page = pages[name] || pages.overview;
  document.getElementById('nav').hidden = !console_.token;
  document.getElementById('who').hidden = !console_.token;
  if (console_.session) document.getElementById('who-name').textContent = `${me()} (${console_.session['client-id']})`;
  const current = name === 'group' ? 'groups' : name;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.title = `${page.title} · mcx console`;
  const main = document.getElementById('main');
  console_.view = page;
  page.mount(main, ...args);
  clearInterval(console_.pollTimer);
  if (page.poll) console_.pollTimer = setInterval(() => refreshSoon(0), page.poll);
  refreshSoon(0);
}

async function refresh() {
  const page = console_.view;
  if (!page) return;
  try {
    await page.refresh();
    document.body.dataset.refreshed = String(Date.now());
  } catch (e) {
    if (e.status !== 401) say(e.message);
  }
}

function refreshSoon(delay) {
  clearTimeout(console_.refreshTimer);
  console_.refreshTimer = setTimeout(refresh, delay ?? 150);
}

function live(text) {
  document.getElementById('live').textContent = text;
}

function startLive() {
  stopLive();
  readEvents();
  followTrace();
}

function stopLive() {
  if (console_.stream) console_.stream.abort();
  console_.stream = null;
  clearTimeout(console_.traceTimer);
  clearInterval(console_.pollTimer);
}

// The event stream through fetch (EventSource cannot send a bearer token); resumes with
// Last-Event-ID after a drop, as any client of the API does.
async function readEvents() {
  const control = new AbortController();
  console_.stream = control;
  const headers = { Authorization: `Bearer ${console_.token}`, Accept: 'text/event-stream' };
  if (console_.lastEventId) headers['Last-Event-ID'] = console_.lastEventId;
  try {
    const response = await fetch('/v1/events', { headers, signal: control.signal });
    if (response.status === 401) { endSession('Your session has ended: log on again.'); return; }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    live('Live: connected to your event stream.');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('id:')) console_.lastEventId = line.slice(3).trim();
          else if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data += line.slice(5).trim();
        }
        if (data) {
          took(data);
          live(`Live: ${name} at ${new Date().toLocaleTimeString()}.`);
          refreshSoon();
        }
      }
    }
  } catch (e) {
    if (control.signal.aborted) return;
  }
  if (console_.stream !== control || !console_.token) return;
  live('Live: reconnecting to your event stream…');
  setTimeout(() => { if (console_.stream === control && console_.token) readEvents(); }, 2000);
}

// What an event asks of this user is kept until answered; every other event only
// refreshes the page, which reads the new state from the API.
function took(data) {
  let event;
  try { event = JSON.parse(data); } catch (_) { return; }
  if (event.event === 'affiliation-change-requested' && !console_.asked.some((a) => a['change-id'] === event['change-id'])) {
    console_.asked.unshift(event);
  }
}

// The flow trace is kept by the server for group administrators; others get 403 once
// and the console stops asking.
async function followTrace() {
  if (!console_.token) return;
  try {
    const { entries } = await get(`/v1/trace?after=${console_.traceSeq}&limit=500`);
    if (entries.length) {
      console_.traceSeq = entries[entries.length - 1].seq;
      for (const entry of entries) {
        const arrow = arrowOf(entry);
        if (arrow && !arrow.flow.startsWith('Log')) console_.flows.push(arrow);
      }
      console_.flows = console_.flows.slice(-200);
      if (console_.primed) refreshSoon();
    }
    console_.primed = true;
  } catch (e) {
    if (e.status === 403) return;
  }
  console_.traceTimer = setTimeout(followTrace, 1000);
}

window.addEventListener('hashchange', () => { say(''); route(); });
window.addEventListener('DOMContentLoaded', () => {
  document.getElementById('log-off').addEventListener('click', async () => {
    try { await api('DELETE', '/v1/session'); } catch (_) { /* ended anyway */ }
    endSession('You are logged off.');
  });
  if (console_.token) startLive();
  route();
});
