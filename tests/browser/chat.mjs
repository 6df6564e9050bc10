// Real-browser test of the chat client that the query service serves at `/`.
//
// Two users in two browser contexts (headless Debian chromium through playwright-core) sign in
// with dev tokens, chat over the WebSocket and read history back after a reload.
//
//   QUERY_URL=http://127.0.0.1:5002 node tests/browser/chat.mjs
//
// Env: QUERY_URL (required; the query service, with PARLEY_DEV_TOKENS=1), COMMAND_URL and
// API_KEY (the command service and a key of the dev tokens' tenant: the moderation step acts
// as the operator; skipped when unset), CHROMIUM (default /usr/bin/chromium), ARTIFACTS_DIR
// (screenshots on failure), CHAT_TIMEOUT_MS (overall, 60000).
// Prints one line per step and a closing "browser: N passed, N failed"; exits 1 on failure.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const QUERY_URL = (process.env.QUERY_URL || '').replace(/\/+$/, '');
const COMMAND_URL = (process.env.COMMAND_URL || '').replace(/\/+$/, '');
const API_KEY = process.env.API_KEY || '';
const OVERALL_MS = Number(process.env.CHAT_TIMEOUT_MS || 60000);
const STEP_MS = 15000;
if (!QUERY_URL) {
  console.error('chat.mjs: set QUERY_URL to the query service, e.g. QUERY_URL=http://127.0.0.1:5002');
  process.exit(2);
}

const rnd = randomBytes(4).toString('hex');
const ALICE = `alice-${rnd}`;
const BOB = `bob-${rnd}`;
const HELLO = `héllo ${BOB} 👋 ${rnd}`;   // non-ASCII: checks the UTF-8 base64 round trip
const REPLY = `reply from ${BOB} ✓ ${rnd}`;

const logs = [];        // browser console, page errors, failed requests, in order
const pageErrors = [];
const pages = {};       // name -> Page
let browser = null;
let passed = 0;
let finished = false;

// ---- helpers ------------------------------------------------------------------------------------
function step(text) {
  passed++;
  console.log(`ok ${passed} - ${text}`);
}

// Polls `probe` until it returns a truthy value (`{ok: false, seen}` reports what it saw);
// throws `what` with the last observation. A probe's error marked `fatal` ends the wait at once.
async function until(what, probe, ms = STEP_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await probe();
      if (v && v.ok !== false) return v;
      last = v && v.seen !== undefined ? v.seen : v;
    } catch (e) {
      if (e.fatal) throw e;
      last = `error: ${firstLine(e)}`;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} (waited ${ms} ms; last seen: ${JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// An error's first line, without terminal colours.
function firstLine(e) {
  return String(e && e.message || e).replace(/\x1b\[[0-9;]*m/g, '').split('\n')[0];
}

function fatal(message) {
  const e = new Error(message);
  e.fatal = true;
  return e;
}

const tid = (id) => `[data-testid="${id}"]`;

async function text(page, testid) {
  return (await page.locator(tid(testid)).first().textContent()) ?? '';
}

// The messages shown in the open conversation, in DOM order.
function shown(page) {
  return page.$$eval(tid('message-list') + ' ' + tid('message'), (els) =>
    els.map((e) => ({ seq: Number(e.dataset.seq), from: e.dataset.from, text: e.textContent })));
}

async function conversationItem(page, channelId) {
  return page.$$eval(tid('conversation-item'), (els, id) => {
    const li = els.find((e) => e.dataset.channelId === id);
    if (!li) return null;
    const badge = li.querySelector('[data-testid="unread-badge"]');
    return { type: li.dataset.channelType, unread: badge ? badge.textContent.trim() : null };
  }, channelId);
}

async function login(page, name, uid) {
  await page.fill(tid('uid-input'), uid);
  await page.click(tid('login-button'));
  await until(`${name}: connection-status should become "online" after signing in as ${uid}`, async () => {
    const status = (await text(page, 'connection-status')).trim();
    const login = (await text(page, 'login-status')).trim();
    if (/disabled/i.test(login)) {
      throw fatal(`${name}: sign-in failed: "${login}" (start query-svc with PARLEY_DEV_TOKENS=1)`);
    }
    return status === 'online' ? true : { ok: false, seen: { status, login } };
  });
}

async function openConversation(page, name, peer) {
  await until(`${name}: the open conversation should be ${peer} with its history loaded`, async () => {
    const st = await page.$eval(tid('message-list'), (e) => e.dataset.state);
    const title = await page.$eval(tid('conversation-title'), (e) => e.dataset.channelId || null);
    if (st === 'error') throw fatal(`${name}: history failed to load: ${await page.textContent('#chat-note')}`);
    return title === peer && st === 'ready' ? true : { ok: false, seen: { title, state: st } };
  });
}

// A command as the internal system sends it (API key), which must succeed.
async function command(method, path, body) {
  const res = await fetch(COMMAND_URL + path, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await res.text();
  if (res.status !== 200) throw new Error(`${method} ${path} answered ${res.status}: ${answer}`);
  return JSON.parse(answer);
}

function sameMessages(got, want) {
  return got.length === want.length && got.every((m, i) =>
    m.seq === want[i].seq && m.from === want[i].from && m.text === want[i].text);
}

// ---- the scenario ---------------------------------------------------------------------------------
async function run() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  step(`chromium launched (${executablePath}, version ${browser.version()})`);

  for (const [name, uid] of [['alice', ALICE], ['bob', BOB]]) {
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    const page = await ctx.newPage();
    page.on('console', (m) => logs.push(`[${name}] console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => { pageErrors.push(`[${name}] ${e.message}`); logs.push(`[${name}] pageerror: ${e.stack || e.message}`); });
    page.on('requestfailed', (r) => logs.push(`[${name}] request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
    page.on('response', (r) => { if (r.status() >= 400) logs.push(`[${name}] HTTP ${r.status()} ${r.request().method()} ${r.url()}`); });
    page.on('websocket', (ws) => {
      logs.push(`[${name}] websocket open ${ws.url().replace(/token=[^&]+/, 'token=…')}`);
      ws.on('framesent', (f) => logs.push(`[${name}] ws → ${String(f.payload).slice(0, 300)}`));
      ws.on('framereceived', (f) => logs.push(`[${name}] ws ← ${String(f.payload).slice(0, 300)}`));
      ws.on('close', () => logs.push(`[${name}] websocket closed`));
    });
    pages[name] = page;
    const res = await page.goto(QUERY_URL + '/', { waitUntil: 'domcontentloaded' }).catch((e) => {
      throw new Error(`${name}: could not load ${QUERY_URL}/ (is query-svc running there?): ${firstLine(e)}`);
    });
    if (!res || res.status() !== 200) throw new Error(`${name}: GET ${QUERY_URL}/ answered ${res ? res.status() : 'nothing'}`);
    await page.waitForSelector(tid('login-button'), { timeout: STEP_MS });
  }
  const { alice, bob } = pages;
  step(`both pages loaded the client from ${QUERY_URL}/`);

  await Promise.all([login(alice, 'alice', ALICE), login(bob, 'bob', BOB)]);
  step(`alice (${ALICE}) and bob (${BOB}) signed in; both connections online`);

  await alice.fill(tid('peer-input'), BOB);
  await alice.click(tid('open-peer-button'));
  await openConversation(alice, 'alice', BOB);
  await alice.fill(tid('composer-input'), HELLO);
  await alice.click(tid('send-button'));
  await until('alice: her message should show with message_seq 1', async () => {
    const got = await shown(alice);
    return sameMessages(got, [{ seq: 1, from: ALICE, text: HELLO }]) ? true : { ok: false, seen: got };
  });
  step('alice opened a chat with bob and sent a message (shown as seq 1)');

  await until(`bob: a conversation with ${ALICE} should appear with unread badge 1`, async () => {
    const c = await conversationItem(bob, ALICE);
    return c && c.type === '1' && c.unread === '1' ? true : { ok: false, seen: c };
  });
  step('bob sees the conversation with alice appear, unread badge 1');

  await bob.click(`${tid('conversation-item')}[data-channel-id="${ALICE}"]`);
  await openConversation(bob, 'bob', ALICE);
  await until("bob: alice's message should be shown as seq 1", async () => {
    const got = await shown(bob);
    return sameMessages(got, [{ seq: 1, from: ALICE, text: HELLO }]) ? true : { ok: false, seen: got };
  });
  await until('bob: the unread badge should drop to 0 after reading (read frame → conversation list)', async () => {
    const c = await conversationItem(bob, ALICE);
    return c && c.unread === '0' ? true : { ok: false, seen: c };
  });
  step("bob opened it, sees alice's message, and the unread badge cleared");

  await bob.click(tid('composer-input'));
  await bob.locator(tid('composer-input')).pressSequentially('typing…', { delay: 30 });
  await until(`alice: the typing indicator should name ${BOB}`, async () => {
    const t = (await text(alice, 'typing-indicator')).trim();
    return t.includes(BOB) ? true : { ok: false, seen: t };
  });
  step('bob types; alice sees "bob is typing…"');

  await bob.fill(tid('composer-input'), REPLY);
  await bob.press(tid('composer-input'), 'Enter');
  const both = [{ seq: 1, from: ALICE, text: HELLO }, { seq: 2, from: BOB, text: REPLY }];
  await until("alice: bob's reply should arrive live as seq 2", async () => {
    const got = await shown(alice);
    return got.some((m) => m.seq === 2 && m.from === BOB && m.text === REPLY) ? true : { ok: false, seen: got };
  });
  step("bob replied with Enter; alice sees the reply live");

  for (const [name, page] of [['alice', alice], ['bob', bob]]) {
    await until(`${name}: the conversation should show exactly seqs 1, 2 in order`, async () => {
      const got = await shown(page);
      return sameMessages(got, both) ? true : { ok: false, seen: got };
    });
  }
  step('both show the conversation in order: seqs 1, 2');

  if (COMMAND_URL && API_KEY) {
    // Moderation: alice owns a group with bob and mutes him; bob's client says why he
    // cannot send, and his message is refused (docs/moderation.md).
    const group = `mod-${rnd}`;
    await command('POST', '/v1/channels', { channel_id: group, members: [ALICE, BOB], actor_uid: ALICE });
    await bob.fill(tid('group-input'), group);
    await bob.click(tid('open-group-button'));
    await openConversation(bob, 'bob', group);
    await command('PATCH', `/v1/channels/${group}/members/${BOB}`, { muted_until: Date.now() + 600000, actor_uid: ALICE });
    await until('bob: the send-restriction notice should say he is muted', async () => {
      const shownNotice = await bob.$eval(tid('send-restriction'), (e) => !e.hidden);
      const t = await text(bob, 'send-restriction');
      return shownNotice && /muted in this group until/.test(t) ? true : { ok: false, seen: { shownNotice, t } };
    });
    await bob.fill(tid('composer-input'), 'can anyone hear me?');
    await bob.click(tid('send-button'));
    await until('bob: his message should be marked not sent with MEMBER_MUTED', async () => {
      const err = await bob.$$eval(tid('pending-message'), (els) => els.map((e) => e.dataset.error || ''));
      return err.some((e) => e.startsWith('MEMBER_MUTED')) ? true : { ok: false, seen: err };
    });
    step('bob, muted in a group, sees why he cannot send: the notice, and his message refused with MEMBER_MUTED');
  }

  await alice.reload({ waitUntil: 'domcontentloaded' });
  await alice.waitForSelector(tid('login-button'), { timeout: STEP_MS });
  await login(alice, 'alice', ALICE);
  await until(`alice (reloaded): the conversation with ${BOB} should be listed`, async () => {
    const c = await conversationItem(alice, BOB);
    return c ? true : { ok: false, seen: c };
  });
  await alice.click(`${tid('conversation-item')}[data-channel-id="${BOB}"]`);
  await openConversation(alice, 'alice (reloaded)', BOB);
  await until('alice (reloaded): history should show both messages, seqs 1, 2, no duplicates', async () => {
    const got = await shown(alice);
    return sameMessages(got, both) ? true : { ok: false, seen: got };
  });
  step('alice reloaded, signed in again, and history shows both messages once each');

  if (pageErrors.length) throw new Error(`uncaught errors in the pages:\n  ${pageErrors.join('\n  ')}`);
  step('no uncaught JavaScript errors in either page');
}

// ---- failure reporting --------------------------------------------------------------------------
async function fail(err) {
  if (finished) return;
  finished = true;
  // Playwright's own errors append a multi-line call log: keep what comes before it.
  const message = String(err && err.message || err).replace(/\x1b\[[0-9;]*m/g, '').split('\nCall log:')[0].trimEnd();
  console.log(`not ok ${passed + 1} - ${message}`);
  const dir = process.env.ARTIFACTS_DIR;
  if (dir) {
    try {
      mkdirSync(dir, { recursive: true });
      for (const [name, page] of Object.entries(pages)) {
        const file = join(dir, `chat-${name}.png`);
        await page.screenshot({ path: file, fullPage: true, timeout: 5000 }).then(
          () => console.log(`screenshot: ${file}`),
          (e) => console.log(`screenshot of ${name} failed: ${firstLine(e)}`));
      }
    } catch (e) {
      console.log(`could not save screenshots in ${dir}: ${e.message}`);
    }
  }
  console.log(`--- browser logs (${logs.length} lines) ---`);
  for (const l of logs) console.log(l);
  console.log('--- end of browser logs ---');
  console.log(`browser: ${passed} passed, 1 failed`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

const overall = setTimeout(() => {
  fail(new Error(`overall timeout: the test did not finish within ${OVERALL_MS} ms`));
}, OVERALL_MS);

try {
  await run();
  finished = true;
  clearTimeout(overall);
  console.log(`browser: ${passed} passed, 0 failed`);
  await browser.close();
  process.exit(0);
} catch (e) {
  clearTimeout(overall);
  await fail(e);
}
