// oes operator console: a page over the admin API (/admin/*), signed in through /auth/login.
// The token lives in this tab's sessionStorage and goes out only as a bearer header, never in
// a URL. Data is written with textContent (never as HTML) and the SVG is built node by node.
'use strict';

const POLL_MS = 2000;
const DLQ_EVERY = 5; // list the dead-letter queue every fifth poll (a listing receives its letters)
// The job counts every fifth poll too: each reads the job index (up to thousands of read units
// with many jobs), so a tab left open must not ask every 2 s.
const COUNTS_EVERY = 5;
const HISTORY = 90; // polls kept for the sparklines: 3 minutes
const LANES = ['priority', 'bulk']; // the order of GET /admin/queues: lanes, then the DLQ
const TOKEN_KEY = 'oes-console-token';
// The device token of each account signed in here (see signIn), by its address.
const DEVICE_KEY = 'oes-console-device:';

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY);
let timer = null;
let polls = 0;
const depth = new Map(); // queue name → recent depths
let openJob = null;
let cursors = [null]; // the cursor of each page seen, the first page's being null
let stopRedrive = false;
// A redrive or purge is walking the dead-letter queue: listing it meanwhile would hide the
// letters the walk has yet to take, and the walk would end early, thinking it had seen them all.
let walking = false;

class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function say(text) {
  $('status').textContent = text;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toISOString().replace('T', ' ').replace('.000Z', 'Z') : '';
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text === undefined || text === null ? '' : String(text);
  row.appendChild(td);
  return td;
}

function button(text, onClick, label) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  if (label) b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

function clear(element) {
  while (element.firstChild) element.removeChild(element.firstChild);
}

// One call of the API. 401/403 end the session: the page falls back to the sign-in form.
async function api(method, path, body) {
  // Signed out meanwhile (a poll or a walk's last listing in flight): nothing to send.
  if (!token) throw new ApiFailure(401, 'Please sign in again.');
  const headers = { authorization: 'Bearer ' + token };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  const message = data && data.error ? data.error.message : 'HTTP ' + response.status;
  if (response.status === 401 || response.status === 403) {
    signOut(response.status === 403 ? 'This account is not an admin.' : 'Please sign in again.');
    throw new ApiFailure(response.status, message);
  }
  if (!response.ok) throw new ApiFailure(response.status, message);
  return { status: response.status, data };
}

// ---- sign-in ---------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  $('sign-in-error').textContent = '';
  const email = $('email').value;
  // The device token an earlier sign-in here was given for this account: with it, this
  // sign-in counts against this device's limit, not the account's, which someone guessing
  // the password from elsewhere can spend (OWASP's device cookie). It signs no one in.
  const deviceKey = DEVICE_KEY + email.trim().toLowerCase();
  const device = localStorage.getItem(deviceKey);
  const response = await fetch('/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(device ? { email, password: $('password').value, device_token: device }
      : { email, password: $('password').value }),
    credentials: 'omit',
    cache: 'no-store',
  }).catch(() => null);
  $('password').value = '';
  const data = response ? await response.json().catch(() => null) : null;
  if (!response || !response.ok || !data || !data.access_token) {
    $('sign-in-error').textContent = data && data.error ? data.error.message : 'Sign-in failed.';
    return;
  }
  token = data.access_token;
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(TOKEN_KEY + '-email', email);
  await start();
  // Kept only for an account the admin API took (a refused one signs out in `start`).
  if (token && data.device_token) localStorage.setItem(deviceKey, data.device_token);
}

function signOut(reason) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_KEY + '-email');
  if (timer) clearInterval(timer);
  timer = null;
  depth.clear();
  openJob = null;
  // Nothing the session read stays in the page (recipients, errors) for whoever comes next.
  for (const id of ['queues', 'jobs', 'job-history', 'dlq']) clear($(id).querySelector('tbody'));
  clear($('job-record'));
  $('job').hidden = true;
  $('console').hidden = true;
  $('who').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = reason || '';
  say('');
  $('email').focus();
}

// Shows the console only once the admin API has answered: a non-admin sees the form alone.
async function start() {
  if (!token) return;
  try {
    await refresh(true);
  } catch (_) {
    return;
  }
  $('sign-in').hidden = true;
  $('console').hidden = false;
  $('who').hidden = false;
  $('who-email').textContent = sessionStorage.getItem(TOKEN_KEY + '-email') || '';
  await listJobs(true).catch(report);
  await listDeadLetters().catch(report);
  if (!timer) timer = setInterval(() => poll().catch(report), POLL_MS);
}

function report(error) {
  if (error instanceof ApiFailure && (error.status === 401 || error.status === 403)) return;
  say('Error: ' + error.message);
}

async function poll() {
  if (document.hidden) return; // nobody is looking: nothing read
  polls += 1;
  await refresh(polls % COUNTS_EVERY === 1);
  if (openJob) await showJob(openJob, false);
  if (cursors.length === 1) await listJobs(false); // the first page follows the jobs; others stay put
  if (polls % DLQ_EVERY === 0 && !walking) await listDeadLetters();
}

async function refresh(withCounts) {
  const [queues, counts] = await Promise.all([
    api('GET', '/admin/queues'),
    withCounts ? api('GET', '/admin/email-jobs/counts') : null,
  ]);
  drawQueues(queues.data.queues);
  if (counts) drawCounts(counts.data.counts);
  $('refreshed').textContent = 'Updated ' + new Date().toLocaleTimeString();
}

// ---- queues ----------------------------------------------------------------------------

function drawQueues(queues) {
  const body = $('queues').querySelector('tbody');
  clear(body);
  queues.forEach((queue, i) => {
    const lane = queue.lane || LANES[i];
    const name = lane || 'dead-letter';
    const series = depth.get(name) || [];
    series.push(queue.visible + queue.in_flight + queue.delayed);
    if (series.length > HISTORY) series.shift();
    depth.set(name, series);

    const row = document.createElement('tr');
    row.dataset.queue = name;
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = name;
    th.title = queue.queue;
    row.appendChild(th);
    cell(row, queue.visible).className = 'waiting';
    cell(row, queue.in_flight).className = 'in-flight';
    cell(row, queue.delayed).className = 'delayed';
    const paused = queue.paused === true;
    const state = cell(row, lane ? (paused ? 'paused' : 'running') : '');
    state.className = 'state' + (paused ? ' paused' : '');
    cell(row, '').appendChild(sparkline(series, name));
    const action = cell(row, '');
    if (lane && queue.paused !== undefined) {
      const verb = paused ? 'resume' : 'pause';
      const b = button(paused ? 'Resume' : 'Pause', () => setLane(lane, verb), verb + ' the ' + lane + ' lane');
      b.className = 'lane-' + verb;
      action.appendChild(b);
    }
    body.appendChild(row);
  });
}

// The depth of a queue over the last polls, as an SVG polyline scaled to its own maximum.
function sparkline(series, name) {
  const NS = 'http://www.w3.org/2000/svg';
  const width = 180;
  const height = 28;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  const max = Math.max(1, ...series);
  const title = document.createElementNS(NS, 'title');
  title.textContent = name + ': depth over the last ' + series.length + ' polls, now ' +
    series[series.length - 1] + ', highest ' + Math.max(...series);
  svg.appendChild(title);
  const step = width / (HISTORY - 1);
  const offset = width - step * (series.length - 1);
  const points = series.map((value, i) =>
    (offset + i * step).toFixed(1) + ',' + (height - 2 - (value / max) * (height - 4)).toFixed(1));
  const line = document.createElementNS(NS, 'polyline');
  line.setAttribute('points', points.join(' '));
  svg.appendChild(line);
  return svg;
}

async function setLane(lane, verb) {
  // A pause stops the lane's emails for everyone until someone resumes it: asked first.
  if (verb === 'pause' && !(await confirmed('Pause the ' + lane +
    ' lane? Its emails wait on it, unsent, until it is resumed.'))) return;
  await api('POST', '/admin/lanes/' + encodeURIComponent(lane) + '/' + verb, {});
  say('The ' + lane + ' lane is ' + (verb === 'pause' ? 'paused.' : 'running again.'));
  await refresh(false);
}

// ---- jobs --------------------------------------------------------------------------------

function drawCounts(counts) {
  const box = $('counts');
  clear(box);
  for (const count of counts) {
    const text = count.status + ' ' + (count.exact ? '' : '≥') + count.count;
    const b = button(text, () => {
      $('filter-status').value = count.status;
      listJobs(true).catch(report);
    }, 'list ' + count.status + ' jobs: ' + (count.exact ? '' : 'at least ') + count.count);
    b.className = 'count state-' + count.status;
    b.dataset.status = count.status;
    b.dataset.count = String(count.count);
    box.appendChild(b);
  }
}

async function listJobs(first) {
  if (first) cursors = [null];
  const params = new URLSearchParams({ status: $('filter-status').value, limit: '20' });
  const kind = $('filter-kind').value;
  if (kind) params.set('kind', kind);
  const cursor = cursors[cursors.length - 1];
  if (cursor) params.set('cursor', cursor);
  const { data } = await api('GET', '/admin/email-jobs?' + params.toString());
  const body = $('jobs').querySelector('tbody');
  clear(body);
  for (const job of data.jobs) {
    const row = document.createElement('tr');
    const first = cell(row, '');
    first.appendChild(button(job.job_id.slice(0, 8) + '…', () => showJob(job.job_id, true).catch(report),
      'open job ' + job.job_id));
    cell(row, job.kind);
    cell(row, job.recipient);
    cell(row, job.stalled ? 'stalled' : job.status);
    cell(row, job.attempts + '/' + job.max_attempts);
    cell(row, job.last_error);
    cell(row, when(job.updated_at));
    body.appendChild(row);
  }
  if (data.jobs.length === 0) {
    const row = document.createElement('tr');
    cell(row, 'No ' + $('filter-status').value + ' jobs.').colSpan = 7;
    body.appendChild(row);
  }
  $('jobs').dataset.next = data.next_cursor || '';
  $('jobs-next').disabled = !data.next_cursor;
  $('jobs-previous').disabled = cursors.length < 2;
}

function nextPage() {
  const next = $('jobs').dataset.next;
  if (!next) return;
  cursors.push(next);
  listJobs(false).catch(report);
}

function previousPage() {
  if (cursors.length < 2) return;
  cursors.pop();
  listJobs(false).catch(report);
}

const RECORD_FIELDS = [
  ['status', 'State'], ['kind', 'Kind'], ['subject', 'Subject'], ['recipient', 'Recipient'],
  ['attempts', 'Attempts'], ['max_attempts', 'Attempts allowed'], ['last_error', 'Last error'],
  ['ses_message_id', 'SES message id'], ['lease_until', 'Lease until'], ['created_at', 'Created'],
  ['updated_at', 'Changed'],
];

async function showJob(jobId, focus) {
  const { data: job } = await api('GET', '/admin/email-jobs/' + encodeURIComponent(jobId));
  openJob = jobId;
  $('job').hidden = false;
  $('job-id').textContent = job.job_id;
  const record = $('job-record');
  clear(record);
  for (const [field, label] of RECORD_FIELDS) {
    let value = job[field];
    if (value === undefined || value === null) continue;
    if (field.endsWith('_at') || field === 'lease_until') value = when(value);
    if (field === 'status' && job.stalled) value += ' (stalled: its lease ran out)';
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.textContent = String(value);
    dd.dataset.field = field;
    record.append(dt, dd);
  }
  const history = $('job-history').querySelector('tbody');
  clear(history);
  for (const event of job.history || []) {
    const row = document.createElement('tr');
    cell(row, when(event.at));
    cell(row, event.event);
    cell(row, event.error);
    cell(row, event.ses_message_id);
    history.appendChild(row);
  }
  $('job-retry').hidden = !(job.status === 'failed' || job.status === 'dead');
  if (focus) {
    $('job').scrollIntoView();
    $('job-close').focus();
  }
}

// The steps (4 s each) a retry looks for its job's letter before it gives up: a queue too long
// for one step to see whole may never be seen whole, and a letter that is not there (a purged
// job, one past the queue's retention) would be looked for forever.
const RETRY_STEPS = 30;

async function retryJob() {
  if (!openJob) return;
  const job = openJob;
  if (!(await confirmed('Send job ' + job + ' again? Its recipient gets the email.'))) return;
  const found = { moved: 0, already_sent: 0, not_queued: 0, failed: 0 };
  let steps = 0;
  let seenAll = false;
  await walk('/admin/dlq/redrive', { job_id: job }, (data, done, step) => {
    found.moved += data.moved;
    found.already_sent += data.already_sent;
    found.not_queued += data.not_queued;
    found.failed += data.failed || 0;
    steps = step;
    seenAll = done;
    if (!done) say('Looking for job ' + job + ' on the dead-letter queue: step ' + step + '…');
    // Bounded by its own steps: a step that has not met the letter yet is still looking.
  }, () => steps >= RETRY_STEPS, () => true);
  say(found.moved ? 'The job is back on its lane.' :
    found.already_sent ? 'That job was sent already: its letter was dropped.' :
    found.not_queued ? 'That job could not be queued and its caller was told so: its letter was dropped, nothing sent.' :
    found.failed ? 'Its letter is on the dead-letter queue, but its record could not be written (the store is failing): try again shortly.' :
    !seenAll ? 'Its letter was not met in ' + steps + ' steps over a long dead-letter queue; it may be there: try again.' :
      'The job was not on the dead-letter queue just now (a worker may hold it); try again in a moment.');
  await showJob(job, false);
}

// A walk stops by itself after this many steps in a row that changed nothing (a failing store
// leaves every letter unrecorded, and each step runs out of its time): walking on would only spin.
const STALLED_STEPS = 3;

// Why a walk stopped by itself, from its last step's report: letters whose records could not be
// written (the store failing), and letters left as they are (a worker holds their job, or, for
// a redrive, they cannot be decoded).
function stalledWhy(data) {
  return STALLED_STEPS + ' steps in a row made no progress: ' + data.failed +
    ' letters could not be recorded (is the store failing?) and ' + data.skipped +
    ' were left as they are. Try again in a while.';
}

// A redrive or purge walks the dead-letter queue in bounded steps, one request each: POSTs
// `body` to `path` again while the answer is 202 (more to do), until 200, `stop()` between
// steps, or STALLED_STEPS steps in a row that `progressed(data)` says changed nothing.
// `onStep(data, done, steps, stalled)` after each. The queue is not listed meanwhile, and is
// listed again at the end, however the walk ended.
async function walk(path, body, onStep, stop, progressed) {
  walking = true;
  let steps = 0;
  let still = 0;
  try {
    for (;;) {
      const { status, data } = await api('POST', path, body);
      steps += 1;
      const done = status === 200 || data.done;
      still = progressed(data) ? 0 : still + 1;
      const stalled = !done && still >= STALLED_STEPS;
      onStep(data, done, steps, stalled);
      if (done || stalled || stop()) return;
    }
  } finally {
    walking = false;
    await listDeadLetters().catch(report);
  }
}

// ---- the dead-letter queue --------------------------------------------------------------

async function listDeadLetters() {
  const { data } = await api('GET', '/admin/dlq?max=50');
  const body = $('dlq').querySelector('tbody');
  clear(body);
  for (const letter of data.messages) {
    const row = document.createElement('tr');
    const first = cell(row, letter.job_id ? '' : '(undecodable) ' + letter.message_id);
    if (letter.job_id) {
      first.appendChild(button(letter.job_id.slice(0, 8) + '…', () => showJob(letter.job_id, true).catch(report),
        'open job ' + letter.job_id));
    }
    cell(row, letter.kind);
    cell(row, (letter.reason || 'moved by the redrive policy (received too often)') +
      (letter.ses_message_id ? ' — a receipt: SES accepted it as ' + letter.ses_message_id +
        '; a redrive records it and sends nothing' : ''));
    cell(row, letter.source_queue);
    body.appendChild(row);
  }
  if (data.messages.length === 0) {
    const row = document.createElement('tr');
    cell(row, 'The dead-letter queue is empty.').colSpan = 4;
    body.appendChild(row);
  }
}

// Retry all: the redrive runs in bounded steps (202 while letters remain); each step is one
// request, so it can be stopped between steps and resumed later from where it stopped.
async function redriveAll() {
  if (!(await confirmed('Send every job on the dead-letter queue again?'))) return;
  stopRedrive = false;
  $('redrive-all').disabled = true;
  $('redrive-stop').hidden = false;
  const total = { moved: 0, already_sent: 0, not_queued: 0, skipped: 0 };
  try {
    await walk('/admin/dlq/redrive', { all: true }, (data, done, steps, stalled) => {
      total.moved += data.moved;
      total.already_sent += data.already_sent;
      total.not_queued += data.not_queued;
      total.skipped = data.skipped + data.failed;
      const stopped = stalled || stopRedrive;
      $('redrive-progress').textContent = (done ? 'Done' : stopped ? 'Stopped' : 'Working') + ': step ' + steps +
        ', ' + total.moved + ' moved back, ' + total.already_sent + ' already sent (dropped), ' +
        total.not_queued + ' never queued (dropped), ' +
        total.skipped + ' left on the queue' + (done || !stopped ? '' : ' (Retry all resumes)') + '.' +
        (stalled ? ' ' + stalledWhy(data) : '');
    }, () => stopRedrive, (data) => data.moved + data.already_sent + data.not_queued > 0);
  } finally {
    $('redrive-all').disabled = false;
    $('redrive-stop').hidden = true;
  }
}

// Purge: like a redrive, in bounded steps (202 while letters remain); the letters' jobs are
// recorded dead (purged).
async function purge() {
  if (!(await confirmed('Delete every letter on the dead-letter queue? Their emails are not sent.'))) return;
  stopRedrive = false;
  $('dlq-purge').disabled = true;
  $('redrive-stop').hidden = false;
  let purged = 0;
  try {
    await walk('/admin/dlq/purge', {}, (data, done, steps, stalled) => {
      purged += data.purged;
      const stopped = stalled || stopRedrive;
      $('redrive-progress').textContent = (done ? 'Purged' : stopped ? 'Stopped' : 'Purging') + ': step ' + steps +
        ', ' + purged + ' letters deleted, ' + (data.skipped + data.failed) + ' left on the queue.' +
        (stalled ? ' ' + stalledWhy(data) : '');
    }, () => stopRedrive, (data) => data.purged > 0);
  } finally {
    $('dlq-purge').disabled = false;
    $('redrive-stop').hidden = true;
  }
}

async function clearCache() {
  if (!(await confirmed('Clear the cache? Reads go to the table until it fills again.'))) return;
  await api('POST', '/admin/cache/clear', {});
  say('The cache was cleared.');
}

// ---- confirmation ------------------------------------------------------------------------

function confirmed(text) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    const done = (answer) => () => {
      $('confirm-ok').removeEventListener('click', ok);
      $('confirm-cancel').removeEventListener('click', cancel);
      dialog.removeEventListener('cancel', cancel);
      dialog.close();
      resolve(answer);
    };
    const ok = done(true);
    const cancel = done(false);
    $('confirm-ok').addEventListener('click', ok);
    $('confirm-cancel').addEventListener('click', cancel);
    dialog.addEventListener('cancel', cancel);
    dialog.showModal();
    $('confirm-cancel').focus();
  });
}

function guarded(action) {
  return () => action().catch(report);
}

document.addEventListener('DOMContentLoaded', () => {
  $('sign-in-form').addEventListener('submit', (event) => signIn(event).catch(report));
  $('sign-out').addEventListener('click', () => signOut(''));
  $('job-filter').addEventListener('submit', (event) => {
    event.preventDefault();
    listJobs(true).catch(report);
  });
  $('jobs-next').addEventListener('click', nextPage);
  $('jobs-previous').addEventListener('click', previousPage);
  $('job-retry').addEventListener('click', guarded(retryJob));
  $('job-close').addEventListener('click', () => {
    openJob = null;
    $('job').hidden = true;
  });
  $('dlq-refresh').addEventListener('click', guarded(listDeadLetters));
  $('redrive-all').addEventListener('click', guarded(redriveAll));
  $('redrive-stop').addEventListener('click', () => { stopRedrive = true; });
  $('dlq-purge').addEventListener('click', guarded(purge));
  $('clear-cache').addEventListener('click', guarded(clearCache));
  if (token) start(); else $('email').focus();
});
