// Crash consistency: bursts of concurrent creates and renewals against airlockd (dev mode),
// `kill -9` mid-burst, restart on the same data dir, and check that every request that was
// answered 2xx is there exactly once, that nothing was applied twice, and that nothing else
// appeared beyond the requests still in flight at the kill. Prints "N passed, N failed".
import { execFileSync } from 'node:child_process';
import path from 'node:path';

import {
  agentOnline, client, rawRequest, sleep, sshKey, startAirlock, tmpl,
} from '../api/lib.mjs';

const ROUNDS = Number(process.env.CRASH_ROUNDS || 3);
const WORKERS = Number(process.env.CRASH_WORKERS || 8);
const BASE_SESSIONS = 12;
const DEFAULT_S = 3600;
const RENEW_S = 60;

let passed = 0;
let failed = 0;
function check(ok, what, detail = '') {
  if (ok) { passed++; console.log(`ok - ${what}`); } else { failed++; console.log(`not ok - ${what}${detail ? `\n  # ${detail}` : ''}`); }
}

const templates = [tmpl('burst', {
  allowed: { groups: ['developers'], users: [], agents: ['crash/*'] },
  constraints: { maxDuration: '365d', defaultDuration: '1h', allowRenewal: true, maxRenewals: 1000 },
})];

async function devToken(srv, user, groups) {
  const r = await rawRequest(srv.base, 'POST', '/api/v1/dev/token', {
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user, groups }),
  });
  if (r.status !== 200) throw new Error(`dev token: ${r.status} ${r.text}`);
  return r.json.token;
}

/** Every session an admin can see, through the paged list. */
async function allSessions(admin) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < 1000; i++) {
    const r = await admin.get(`/api/v1/debug-sessions?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (r.status !== 200) throw new Error(`list: ${r.status} ${r.text}`);
    out.push(...r.json.sessions);
    cursor = r.json.nextCursor;
    if (!cursor) return { sessions: out, total: r.json.total };
  }
  throw new Error('list never ends');
}

function sqlite(db, sql) {
  return execFileSync('sqlite3', ['-readonly', db, sql], { encoding: 'utf8' }).trim();
}

async function main() {
  // dev mode, no external issuer: tokens come from /api/v1/dev/token
  // a config with no external issuer: dev mode supplies the issuer
  const srv = await startAirlock({ dev: true, templates });
  let ops = client(srv, await devToken(srv, 'opsy', ['ops']));
  const reg = await ops.post('/api/v1/agents', { name: 'crash/host', hostKeys: [sshKey('crash').pub] });
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${reg.text}`);
  const credential = reg.json.credential;
  let ctl = await agentOnline(srv, 'crash/host', credential);
  let dev = client(srv, await devToken(srv, 'burster', ['developers']));
  let admin = client(srv, await devToken(srv, 'root', ['airlock-admins']));

  // base sessions to renew
  const base = [];
  for (let i = 0; i < BASE_SESSIONS; i++) {
    const r = await dev.post('/api/v1/debug-sessions', { template: 'burst', agent: 'crash/host' });
    if (r.status !== 201) throw new Error(`base create: ${r.status} ${r.text}`);
    base.push(r.json.name);
  }
  for (let i = 0; i < 50; i++) {
    const l = await allSessions(admin);
    if (l.sessions.filter((s) => s.status.state === 'Active').length === BASE_SESSIONS) break;
    await sleep(100); // the poll interval of this wait for the state
  }
  const acked = new Set(base);           // sessions whose create got a 2xx
  const unknownCreates = { n: 0 };        // creates in flight when the server died
  const renewAcked = Object.fromEntries(base.map((n) => [n, 0]));
  const renewUnknown = Object.fromEntries(base.map((n) => [n, 0]));
  const refusedStatuses = {};

  for (let round = 1; round <= ROUNDS; round++) {
    let stop = false;
    let ops2xx = 0;
    const worker = async (w) => {
      let i = 0;
      while (!stop) {
        i++;
        const create = (w + i) % 2 === 0;
        const target = base[(w * 7 + i) % base.length];
        const p = create ? '/api/v1/debug-sessions' : `/api/v1/debug-sessions/${target}/renew`;
        const body = JSON.stringify(create ? { template: 'burst', agent: 'crash/host' } : { extendBy: `${RENEW_S / 60}m` });
        try {
          const r = await rawRequest(srv.base, 'POST', p, {
            headers: { Authorization: `Bearer ${dev.token}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
            body,
          });
          if (r.status >= 200 && r.status < 300) {
            ops2xx++;
            if (create) acked.add(r.json.name); else renewAcked[target]++;
          } else {
            refusedStatuses[r.status] = (refusedStatuses[r.status] || 0) + 1;
          }
        } catch {
          // no answer: the server died with this request in flight
          if (create) unknownCreates.n++; else renewUnknown[target]++;
          return;
        }
      }
    };
    const running = Array.from({ length: WORKERS }, (_, w) => worker(w));
    await sleep(700 + Math.floor(Math.random() * 800)); // a timer is right: the kill lands at a random moment of the burst
    await srv.kill9();
    stop = true;
    await Promise.all(running);
    await ctl.close().catch(() => {});
    check(ops2xx > 0, `round ${round}: the burst got answers before the kill (${ops2xx} 2xx)`);

    // restart on the same data dir
    await srv.start();
    dev = client(srv, await devToken(srv, 'burster', ['developers']));
    admin = client(srv, await devToken(srv, 'root', ['airlock-admins']));
    ctl = await agentOnline(srv, 'crash/host', credential).catch((e) => { check(false, `round ${round}: agent credential survives the restart`, String(e)); return null; });
    if (ctl) check(true, `round ${round}: agent credential survives the restart`);

    const { sessions, total } = await allSessions(admin);
    const names = sessions.map((s) => s.name);
    const byName = Object.fromEntries(sessions.map((s) => [s.name, s]));
    check(total === sessions.length, `round ${round}: total (${total}) equals the listed sessions (${sessions.length})`);
    check(new Set(names).size === names.length, `round ${round}: no session listed twice`);
    const missing = [...acked].filter((n) => !byName[n]);
    check(missing.length === 0, `round ${round}: every acknowledged create (${acked.size}) survived the kill`, `missing: ${missing.join(', ')}`);
    const extra = names.filter((n) => !acked.has(n));
    check(extra.length <= unknownCreates.n, `round ${round}: sessions nobody was told about (${extra.length}) are at most the creates in flight (${unknownCreates.n})`, `extra: ${extra.join(', ')}`);
    // extras are adopted as if acknowledged from now on (they exist), so later rounds stay exact
    for (const n of extra) acked.add(n);
    unknownCreates.n = 0;

    const bad = [];
    for (const n of base) {
      const s = byName[n];
      if (!s) { bad.push(`${n}: gone`); continue; }
      const rc = s.status.renewalCount;
      if (rc < renewAcked[n] || rc > renewAcked[n] + renewUnknown[n]) {
        bad.push(`${n}: renewalCount ${rc}, acknowledged ${renewAcked[n]}, in flight ${renewUnknown[n]}`);
      }
      const span = (Date.parse(s.status.expiresAt) - Date.parse(s.status.startsAt)) / 1000;
      if (span !== DEFAULT_S + rc * RENEW_S) bad.push(`${n}: expiresAt - startsAt = ${span}s, expected ${DEFAULT_S + rc * RENEW_S}s for ${rc} renewals`);
      // adopt in-flight renewals that did land
      renewAcked[n] = rc;
      renewUnknown[n] = 0;
    }
    check(bad.length === 0, `round ${round}: every acknowledged renewal applied exactly once, none applied twice`, bad.join('; '));

    // the audit trail agrees: one created event per session, one renewed event per renewal
    const evBad = [];
    for (const n of base.concat(extra.slice(0, 5))) {
      const r = await admin.get(`/api/v1/debug-sessions/${n}/events`);
      if (r.status !== 200) { evBad.push(`${n}: events ${r.status}`); continue; }
      const created = r.json.events.filter((e) => e.type === 'created').length;
      const renewed = r.json.events.filter((e) => e.type === 'renewed').length;
      if (created !== 1) evBad.push(`${n}: ${created} created events`);
      if (byName[n] && renewed !== byName[n].status.renewalCount) evBad.push(`${n}: ${renewed} renewed events, renewalCount ${byName[n].status.renewalCount}`);
    }
    check(evBad.length === 0, `round ${round}: events match state (created once, renewed per renewal)`, evBad.join('; '));
    const states = new Set(sessions.map((s) => s.status.state));
    check([...states].every((x) => ['Active', 'Pending'].includes(x)), `round ${round}: sessions are Active or Pending after the restart`, [...states].join(','));
  }
  if (Object.keys(refusedStatuses).length) console.log(`# non-2xx answers during the bursts: ${JSON.stringify(refusedStatuses)}`);
  check(!refusedStatuses[500], 'no 500 during the bursts', JSON.stringify(refusedStatuses));

  // the database itself, after a clean stop
  const db = path.join(srv.dir, 'airlock.db');
  const { sessions } = await allSessions(admin);
  await ctl?.close();
  srv.expectedExit = true;
  await srv.stop({ keep: true });
  try {
    check(sqlite(db, 'PRAGMA integrity_check;') === 'ok', 'sqlite integrity_check is ok');
    const n = Number(sqlite(db, 'SELECT count(*) FROM sessions;'));
    check(n === sessions.length, `sessions table rows (${n}) = sessions the API lists (${sessions.length})`);
    const dup = sqlite(db, "SELECT session, count(*) FROM events WHERE type = 'created' GROUP BY session HAVING count(*) <> 1;");
    check(dup === '', 'exactly one created event per session in the events table', dup);
    const orphan = sqlite(db, 'SELECT count(*) FROM events WHERE session NOT IN (SELECT name FROM sessions);');
    check(orphan === '0', 'no events of sessions that do not exist', orphan);
    const ren = sqlite(db, 'SELECT s.name FROM sessions s WHERE s.renewal_count <> (SELECT count(*) FROM renewals r WHERE r.session = s.name);');
    check(ren === '', 'renewals table rows = renewal_count for every session', ren);
  } catch (e) {
    check(false, 'sqlite3 checks ran', String(e.message || e));
  }
  const fs = await import('node:fs');
  if (!process.env.KEEP_TMP) fs.rmSync(srv.dir, { recursive: true, force: true });
}

main().catch((e) => {
  check(false, 'crash test ran to the end', e?.stack || String(e));
}).finally(() => {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
});
