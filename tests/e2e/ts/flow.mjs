// The official TypeScript SDK (@anthropic-ai/sdk, pinned in package.json) against a running
// uprof server: every endpoint of client.userProfiles (GA) and client.beta.userProfiles under
// each contract version, auto-pagination, errors. Run by tests/e2e/test_sdk_typescript.py:
//
//   UPROF_BASE_URL=http://127.0.0.1:8080 UPROF_API_KEY=sk-... node tests/e2e/ts/flow.mjs
//
// Prints one JSON line on success; on any failure prints the error and exits non-zero.
// The key's organization is shared with other tests, so list checks only look at the profiles
// carrying this run's metadata marker.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Anthropic, { AuthenticationError, BadRequestError, NotFoundError } from '@anthropic-ai/sdk';
import { VERSION } from '@anthropic-ai/sdk/version';

const baseURL = process.env.UPROF_BASE_URL;
const apiKey = process.env.UPROF_API_KEY;
if (!baseURL || !apiKey) {
  console.error('flow.mjs: set UPROF_BASE_URL and UPROF_API_KEY');
  process.exit(2);
}

const V0324 = 'user-profiles-2026-03-24';
const V0818 = 'user-profiles-2026-08-18'; // the SDK's default for client.beta.userProfiles
const V0904 = 'user-profiles-2026-09-04';
const LINK_TTL_S = 900;

// Every key each version serves (decisions P1: always present, null when unset).
const COMMON = ['id', 'type', 'created_at', 'updated_at', 'metadata', 'name'];
const KEYS = {
  ga: [
    ...COMMON,
    'access_type',
    'external_user_details',
    'programs',
    'enforcement_status',
    'enforcement_actions',
  ],
  [V0904]: [...COMMON, 'access_type', 'external_user_details', 'trust_grants'],
  [V0818]: [...COMMON, 'access_type', 'external_id', 'external_user_onboarded_at', 'trust_grants'],
  [V0324]: [...COMMON, 'relationship', 'external_id', 'trust_grants'],
};
// uprof_ + 24 characters of the server's alphabet (digits and letters without I, O, l).
const ID_RE = /^uprof_[0-9A-HJ-NP-Za-km-z]{24}$/;
const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?Z$/;

// Every request the SDK sends, to check the wire (beta header, page count).
const sent = [];
const recordingFetch = (input, init = {}) => {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const headers = new Headers(init.headers);
  sent.push({ method: init.method ?? 'GET', url, beta: headers.get('anthropic-beta') });
  return fetch(input, init);
};
const lastSent = () => sent[sent.length - 1];

// No retries: a 5xx or a dropped connection must fail the flow, not be papered over.
const client = new Anthropic({
  baseURL,
  apiKey,
  maxRetries: 0,
  timeout: 30_000,
  fetch: recordingFetch,
});

const run = randomUUID().slice(0, 8); // metadata marker of this run's profiles
const created = new Set();
const startedAt = Date.now();

function assertShape(profile, version) {
  assert.deepEqual(Object.keys(profile).sort(), [...KEYS[version]].sort(), `keys under ${version}`);
  assert.match(profile.id, ID_RE);
  assert.equal(profile.type, 'user_profile');
  assert.match(profile.created_at, TS_RE);
  assert.match(profile.updated_at, TS_RE);
  assert.ok(Date.parse(profile.updated_at) >= Date.parse(profile.created_at));
  if (version === 'ga') {
    assert.deepEqual(profile.programs, { cyber: null, efs: null });
    assert.equal(profile.enforcement_status, 'unrestricted');
    assert.deepEqual(profile.enforcement_actions, []);
  } else {
    assert.deepEqual(profile.trust_grants, {});
  }
}

// Awaits a call that must fail; checks the SDK's error class and what it read from the response.
async function expectError(promise, ErrorClass, status, type) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${ErrorClass.name}, but the call succeeded`);
  assert.ok(
    err instanceof ErrorClass,
    `expected ${ErrorClass.name}, got ${err?.name}: ${err?.message}`,
  );
  assert.equal(err.status, status);
  assert.equal(err.type, type);
  assert.equal(err.error?.type, 'error');
  assert.equal(err.error?.error?.type, type);
  assert.equal(typeof err.apiMessage, 'string');
  assert.match(err.requestID ?? '', /^req_\w+$/, 'the error carries a request id');
  assert.equal(
    err.error?.request_id,
    err.requestID,
    'body request_id equals the request-id header',
  );
  assert.equal(err.headers.get('x-should-retry'), 'false');
  return err;
}

function assertLink(link, type, kind) {
  assert.deepEqual(Object.keys(link).sort(), ['expires_at', 'type', 'url']);
  assert.equal(link.type, type);
  assert.ok(
    link.url.startsWith(`${baseURL}/user-profiles/${kind}/`),
    `${link.url} is under ${baseURL}/user-profiles/${kind}/`,
  );
  assert.match(link.expires_at, TS_RE);
  const ttl = (Date.parse(link.expires_at) - Date.now()) / 1000;
  assert.ok(
    ttl > LINK_TTL_S - 120 && ttl <= LINK_TTL_S + 5,
    `link lifetime ${ttl}s is about ${LINK_TTL_S}s`,
  );
}

async function assertPage(url, status, profileId) {
  const r = await fetch(url);
  assert.equal(r.status, status, `GET ${url}`);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const html = await r.text();
  if (profileId) assert.ok(html.includes(profileId), 'the page names the profile');
}

// Auto-pagination with for await; keeps the items `keep` accepts, stops early once `enough`.
async function collect(iterable, keep, enough = () => false) {
  const items = [];
  for await (const item of iterable) {
    if (keep(item)) items.push(item);
    if (enough(items)) break;
  }
  return items;
}

const mine =
  (extra = {}) =>
  (p) =>
    p.metadata.e2e_run === run && Object.entries(extra).every(([k, v]) => p.metadata[k] === v);

// ---------------------------------------------------------------------------------------------
// GA: client.userProfiles
// ---------------------------------------------------------------------------------------------
async function gaFlow() {
  const ga = client.userProfiles;

  const profile = await ga.create({
    name: 'Ada TS',
    access_type: 'passthrough',
    external_user_details: {
      reference_id: 'ts_user_1',
      country: 'US',
      entity_type: 'business',
      account_status: 'active',
      onboarded_at: '2024-05-06T07:08:09+02:00',
    },
    metadata: { plan: 'pro', team: 'core', e2e_run: run },
  });
  created.add(profile.id);
  assert.equal(lastSent().beta, null, 'GA calls send no anthropic-beta');
  assert.equal(lastSent().url.pathname, '/v1/user_profiles');
  assertShape(profile, 'ga');
  assert.equal(profile.name, 'Ada TS');
  assert.equal(profile.access_type, 'passthrough');
  assert.deepEqual(profile.external_user_details, {
    account_status: 'active',
    country: 'US',
    email_hash: null,
    entity_type: 'business',
    name_hash: null,
    onboarded_at: '2024-05-06T05:08:09Z', // normalized to UTC
    reference_id: 'ts_user_1',
  });
  assert.deepEqual(profile.metadata, { plan: 'pro', team: 'core', e2e_run: run });
  assert.equal(profile.created_at, profile.updated_at);

  // Retrieve: the same object.
  const got = await ga.retrieve(profile.id);
  assert.deepEqual(got, profile);

  // A defaults-only profile: every field present, null when unset.
  const bare = await ga.create({ metadata: { e2e_run: run } });
  created.add(bare.id);
  assertShape(bare, 'ga');
  assert.equal(bare.name, null);
  assert.equal(bare.access_type, 'application');
  assert.ok(Object.values(bare.external_user_details).every((v) => v === null));

  // Update: metadata merges, "" deletes a key, other fields are left alone.
  const updated = await ga.update(profile.id, {
    name: 'Ada Lovelace',
    metadata: { plan: '', tier: 'gold' },
    external_user_details: { email_hash: 'h_1' },
  });
  assertShape(updated, 'ga');
  assert.deepEqual(updated.metadata, { team: 'core', e2e_run: run, tier: 'gold' });
  assert.equal(updated.name, 'Ada Lovelace');
  assert.equal(updated.external_user_details.email_hash, 'h_1');
  assert.equal(updated.external_user_details.reference_id, 'ts_user_1');
  assert.equal(updated.access_type, 'passthrough');
  assert.equal(updated.created_at, profile.created_at);
  assert.ok(Date.parse(updated.updated_at) >= Date.parse(profile.updated_at));
  assert.deepEqual(await ga.retrieve(profile.id), updated);

  // A no-op update leaves updated_at alone (decisions P6).
  const noop = await ga.update(profile.id, { metadata: { tier: 'gold', missing: '' } });
  assert.deepEqual(noop, updated);

  // One stored profile, one view per version: the legacy betas see the same data.
  const as0818 = await client.beta.userProfiles.retrieve(profile.id);
  assert.equal(lastSent().beta, V0818, "the beta namespace's default header");
  assertShape(as0818, V0818);
  assert.equal(as0818.external_id, 'ts_user_1');
  assert.equal(as0818.external_user_onboarded_at, '2024-05-06T05:08:09Z');
  assert.equal(as0818.access_type, 'passthrough');
  const as0324 = await client.beta.userProfiles.retrieve(profile.id, { betas: [V0324] });
  assert.equal(lastSent().beta, `${V0324},${V0818}`, 'the caller first, then the default');
  assertShape(as0324, V0324);
  assert.equal(as0324.relationship, 'resold');
  assert.equal(as0324.external_id, 'ts_user_1');

  // Auto-pagination: 7 profiles walked 3 at a time.
  const batch = [];
  for (let i = 0; i < 7; i++) {
    const p = await ga.create({ name: `ts-page-${i}`, metadata: { e2e_run: run, set: 'pages' } });
    created.add(p.id);
    batch.push(p);
  }
  const pagesBefore = sent.length;
  const walked = await collect(ga.list({ limit: 3 }), () => true);
  const listCalls = sent.slice(pagesBefore);
  assert.ok(
    listCalls.length >= 3,
    `7 profiles at limit 3 take at least 3 pages (${listCalls.length})`,
  );
  for (const [i, call] of listCalls.entries()) {
    assert.equal(call.url.searchParams.get('limit'), '3');
    assert.equal(call.url.searchParams.has('page'), i > 0, 'only follow-up pages carry a cursor');
  }
  const ids = walked.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'no profile appears twice');
  for (const p of walked) assertShape(p, 'ga');
  for (let i = 1; i < walked.length; i++) {
    // Date.parse, not string order: whole seconds carry no fraction (decisions P10).
    assert.ok(
      Date.parse(walked[i - 1].created_at) >= Date.parse(walked[i].created_at),
      'newest first',
    );
  }
  const walkedMine = walked.filter(mine({ set: 'pages' }));
  assert.deepEqual(new Set(walkedMine.map((p) => p.id)), new Set(batch.map((p) => p.id)));

  // Page objects: data, hasNextPage, getNextPage.
  const first = await ga.list({ limit: 2 });
  assert.equal(first.data.length, 2);
  assert.ok(first.hasNextPage());
  assert.equal(typeof first.next_page, 'string');
  const second = await first.getNextPage();
  assert.ok(second.data.every((p) => !first.data.some((q) => q.id === p.id)));

  // order_by=name, ascending.
  const byName = await collect(
    ga.list({ order_by: 'name', order: 'asc', limit: 2 }),
    mine({ set: 'pages' }),
  );
  assert.deepEqual(
    byName.map((p) => p.name),
    batch.map((p) => p.name),
  );

  // The GA-only enforcement filter (sent as enforcement_status[]=…).
  const unrestricted = await collect(
    ga.list({ enforcement_status: ['unrestricted'], limit: 100 }),
    mine(),
  );
  assert.equal(
    sent[sent.length - 1].url.searchParams.getAll('enforcement_status[]').join(),
    'unrestricted',
  );
  assert.ok(unrestricted.length >= batch.length + 2);
  const banned = await collect(ga.list({ enforcement_status: ['banned', 'restricted'] }), mine());
  assert.deepEqual(banned, []);
  await expectError(
    client.beta.userProfiles.list({ enforcement_status: ['banned'], betas: [V0904] }),
    BadRequestError,
    400,
    'invalid_request_error',
  );

  // Action URL, and the hosted page behind it.
  const link = await ga.actionURLs.create(profile.id, { action: { type: 'enroll_end_user' } });
  assert.equal(lastSent().url.pathname, `/v1/user_profiles/${profile.id}/action_urls`);
  assertLink(link, 'user_profile_action_url', 'actions');
  await assertPage(link.url, 200, profile.id);

  // Invalid requests: 17 metadata keys; a field GA does not accept.
  const tooMany = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
  const err = await expectError(
    ga.create({ metadata: tooMany }),
    BadRequestError,
    400,
    'invalid_request_error',
  );
  assert.equal(err.errorCode, 'invalid_metadata');
  await expectError(
    ga.create({ external_id: 'legacy-only' }),
    BadRequestError,
    400,
    'invalid_request_error',
  );
  await expectError(
    ga.update(profile.id, { external_user_details: { country: 'usa' } }),
    BadRequestError,
    400,
    'invalid_request_error',
  );

  // Delete; afterwards every call on it is 404 and its link is dead.
  const deleted = await ga.delete(profile.id);
  assert.deepEqual(deleted, { id: profile.id, type: 'user_profile_deleted' });
  created.delete(profile.id);
  const notFound = await expectError(
    ga.retrieve(profile.id),
    NotFoundError,
    404,
    'not_found_error',
  );
  assert.equal(notFound.status, 404);
  assert.ok(notFound.requestID);
  await expectError(ga.update(profile.id, { name: 'x' }), NotFoundError, 404, 'not_found_error');
  await expectError(ga.delete(profile.id), NotFoundError, 404, 'not_found_error');
  await expectError(
    ga.actionURLs.create(profile.id, { action: { type: 'enroll_end_user' } }),
    NotFoundError,
    404,
    'not_found_error',
  );
  await assertPage(link.url, 404);
  const after = await collect(ga.list({ limit: 100 }), (p) => p.id === profile.id);
  assert.deepEqual(after, []);

  return { listPages: listCalls.length };
}

// ---------------------------------------------------------------------------------------------
// Beta: client.beta.userProfiles under each contract version
// ---------------------------------------------------------------------------------------------
const BETA_CASES = [
  {
    version: V0324,
    create: { name: 'Legacy 0324', external_id: 'ext_0324' },
    check(p) {
      assert.equal(p.external_id, 'ext_0324');
      assert.equal(p.relationship, 'external');
      assert.equal('access_type' in p, false);
    },
    invalid: { access_type: 'passthrough' }, // 03-24 speaks relationship, not access_type
  },
  {
    version: V0818,
    create: {
      name: 'Beta 0818',
      external_id: 'ext_0818',
      access_type: 'passthrough',
      external_user_onboarded_at: '2025-05-14T09:30:00+02:00',
    },
    check(p) {
      assert.equal(p.access_type, 'passthrough');
      assert.equal(p.external_id, 'ext_0818');
      assert.equal(p.external_user_onboarded_at, '2025-05-14T07:30:00Z');
      assert.equal('external_user_details' in p, false);
    },
    invalid: { external_user_details: { country: 'US' } },
  },
  {
    version: V0904,
    create: {
      name: 'Beta 0904',
      access_type: 'application',
      external_user_details: { reference_id: 'ext_0904', country: 'DE', entity_type: 'individual' },
    },
    check(p) {
      assert.equal(p.access_type, 'application');
      assert.deepEqual(p.external_user_details, {
        account_status: null,
        country: 'DE',
        email_hash: null,
        entity_type: 'individual',
        name_hash: null,
        onboarded_at: null,
        reference_id: 'ext_0904',
      });
      assert.equal('external_id' in p, false);
    },
    invalid: { external_id: 'x' },
  },
];

async function betaFlow({ version, create, check, invalid }) {
  const beta = client.beta.userProfiles;
  const betas = [version];
  const wire = version === V0818 ? `${V0818},${V0818}` : `${version},${V0818}`;

  const profile = await beta.create({
    ...create,
    metadata: { e2e_run: run, v: version, a: '1' },
    betas,
  });
  created.add(profile.id);
  assert.equal(lastSent().beta, wire);
  assertShape(profile, version);
  assert.equal(profile.name, create.name);
  check(profile);

  assert.deepEqual(await beta.retrieve(profile.id, { betas }), profile);

  const updated = await beta.update(profile.id, {
    metadata: { a: '', b: '2' },
    name: `${create.name}!`,
    betas,
  });
  assertShape(updated, version);
  check(updated);
  assert.deepEqual(updated.metadata, { e2e_run: run, v: version, b: '2' });
  assert.equal(updated.name, `${create.name}!`);

  const second = await beta.create({ metadata: { e2e_run: run, v: version }, betas });
  created.add(second.id);
  // Newest first, one per page: the two profiles come back over (at least) two pages.
  const pagesBefore = sent.length;
  const listed = await collect(
    beta.list({ limit: 1, betas }),
    mine({ v: version }),
    (l) => l.length === 2,
  );
  assert.ok(sent.length - pagesBefore >= 2);
  assert.ok(sent.slice(pagesBefore).every((r) => r.beta === wire));
  listed.reverse();
  assert.deepEqual(
    listed.map((p) => p.id),
    [profile.id, second.id],
  );
  for (const p of listed) assertShape(p, version);
  assert.deepEqual(listed[0], updated);

  const enrollment = await beta.createEnrollmentURL(profile.id, { betas });
  assert.equal(lastSent().url.pathname, `/v1/user_profiles/${profile.id}/enrollment_url`);
  assertLink(enrollment, 'enrollment_url', 'enrollment');
  await assertPage(enrollment.url, 200, profile.id);
  const action = await beta.actionURLs.create(profile.id, {
    action: { type: 'enroll_end_user' },
    betas,
  });
  assertLink(action, 'user_profile_action_url', 'actions');
  await assertPage(action.url, 200, profile.id);

  await expectError(
    beta.create({ ...invalid, betas }),
    BadRequestError,
    400,
    'invalid_request_error',
  );
  await expectError(
    beta.update(profile.id, { ...invalid, betas }),
    BadRequestError,
    400,
    'invalid_request_error',
  );

  for (const id of [profile.id, second.id]) {
    assert.deepEqual(await beta.delete(id, { betas }), { id, type: 'user_profile_deleted' });
    created.delete(id);
    await expectError(beta.retrieve(id, { betas }), NotFoundError, 404, 'not_found_error');
  }
  await expectError(
    beta.createEnrollmentURL(profile.id, { betas }),
    NotFoundError,
    404,
    'not_found_error',
  );
  await assertPage(enrollment.url, 404);
}

async function authFlow() {
  const wrong = new Anthropic({ baseURL, apiKey: 'sk-ant-uprof-not-a-key', maxRetries: 0 });
  await expectError(wrong.userProfiles.list(), AuthenticationError, 401, 'authentication_error');
}

let failed = false;
try {
  const { listPages } = await gaFlow();
  for (const c of BETA_CASES) await betaFlow(c);
  await authFlow();
  console.log(
    JSON.stringify({
      ok: true,
      sdk: `@anthropic-ai/sdk@${VERSION}`,
      requests: sent.length,
      list_pages: listPages,
      versions: ['ga', ...BETA_CASES.map((c) => c.version)],
      elapsed_ms: Date.now() - startedAt,
    }),
  );
} catch (err) {
  failed = true;
  console.error(`flow.mjs failed after ${sent.length} requests`);
  const last = lastSent();
  if (last)
    console.error(`last request: ${last.method} ${last.url} (anthropic-beta: ${last.beta})`);
  console.error(err);
} finally {
  // Leave the shared organization as it was (best effort after a failure).
  for (const id of created) {
    try {
      await client.userProfiles.delete(id);
    } catch (err) {
      if (!failed) throw err;
    }
  }
}
process.exit(failed ? 1 : 0);
