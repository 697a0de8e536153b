import fc from 'fast-check';

/**
 * Building blocks of the HTTP fuzz test (test/e2e/fuzz.e2e.spec.ts): hostile
 * values, requests that are invalid by construction, and the check every
 * answer must pass (API.md, DESIGN.md invariant 7).
 */

/** A request as the fuzzer sends it through fastify's inject (raw bytes, any header). */
export type FuzzRequest = {
  /** Which family made it: printed with a failure. */
  family: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  /** It carried a consistency token or minPosition: a 504 after the bounded wait is legitimate. */
  waits?: boolean;
  /** With everything else valid, a 400 must name this field (an error path equal to it, or under it). */
  field?: string;
  /** …or, for an unknown key, an error at `field` whose message names this key. */
  unknownKey?: string;
  /** Valid by the schema (edge values): may be accepted; only never a 5xx. */
  mayBeAccepted?: boolean;
  /** The statuses the contract gives this request; any other 4xx is a failure. */
  expect?: number[];
};

export type FuzzResponse = { statusCode: number; headers: Record<string, unknown>; body: string };

/** A JSON number literal JSON.stringify cannot write (it parses to ±Infinity). */
export class RawJson {
  constructor(readonly text: string) {}
}

export const toJson = (value: unknown): string => {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
};

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const SLUG = /^[A-Za-z0-9_.-]{1,64}$/;

/** Percent-encodes the UTF-8 bytes of a string (a lone surrogate becomes U+FFFD, as on the wire). */
export const pct = (s: string): string =>
  [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`)).join('');

// ---------------------------------------------------------------- hostile values

/** Strings a client can get wrong: unicode of every plane, lone surrogates, NUL and control characters. */
export const nastyString = (maxLength = 40): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
    fc.constantFrom('', ' ', '\u0000', 'a\u0000b', '\ud800', 'x\udfffy', '\ufeff', '\u202e', '../../etc/passwd', '%00', '${x}', "'; DROP TABLE events; --", '\\', '"', 'null', 'NaN', '💥'),
    fc.tuple(fc.constantFrom('\u0000', '\ud800', '\udc00', '\u0007', '\n'), fc.string({ maxLength: 10 })).map(([c, s]) => `${s}${c}${s}`),
  );

/** Hosts' limits are a few KiB: big enough to cross field maxima (≤ 4,000 characters), small enough to stay under most body limits. */
export const hugeString = fc.integer({ min: 4_001, max: 12_000 }).chain((n) => fc.constantFrom('x', 'é', '💥', '\u0000').map((c) => c.repeat(n)));

/** JSON text nested `depth` levels (as text: a JS value that deep overflows the stack of whoever walks it, fast-check included). */
export const deepJson = (depth: number, asArray: boolean): RawJson =>
  new RawJson(asArray ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"d":'.repeat(depth)}1${'}'.repeat(depth)}`);
/** Nested arrays or objects, shallow to very deep (the text stays small: 2–6 bytes a level). */
export const nested = fc.tuple(fc.oneof(fc.integer({ min: 2, max: 50 }), fc.integer({ min: 500, max: 3_000 })), fc.boolean()).map(([d, a]) => deepJson(d, a));

export const anyJson = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: nested },
  { weight: 1, arbitrary: fc.constantFrom(new RawJson('1e400'), new RawJson('-1e400'), new RawJson('-0'), new RawJson('1E-400')) },
);

/** Any value but a string. */
const notString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }), nested);
/** Any value but a number. */
const notNumber = fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('5', '1e3', 'NaN', 'Infinity', '-0', ''), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.object({ maxDepth: 1 }), nested);
const infinite = fc.constantFrom(new RawJson('1e400'), new RawJson('-1e400'));

export type FieldKind =
  | { kind: 'uuid' }
  | { kind: 'slug' }
  | { kind: 'text'; max: number }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'number' }
  | { kind: 'bool' }
  | { kind: 'object' }
  | { kind: 'strings' }
  | { kind: 'uuids'; max: number }
  | { kind: 'embedding' }
  | { kind: 'iso' }
  | { kind: 'pastIso' }
  | { kind: 'email' }
  | { kind: 'locale' }
  | { kind: 'actorId' }
  | { kind: 'revisionOrName' }
  | { kind: 'weights' }
  | { kind: 'commandType'; known: readonly string[] }
  | { kind: 'json' };

/** A value the field's schema refuses, whatever else the body holds. */
export const invalidFor = (f: FieldKind): fc.Arbitrary<unknown> => {
  switch (f.kind) {
    case 'uuid':
      return fc.oneof(
        notString,
        nastyString().filter((s) => !UUID.test(s)),
        fc.uuid().chain((u) => fc.constantFrom(u.slice(0, -1), `${u}0`, u.replace(/-/g, ''), `{${u}}`, u.replace(/^./, 'g'), ` ${u}`, `${u}\u0000`)),
      );
    case 'slug':
      return fc.oneof(notString, nastyString().filter((s) => !SLUG.test(s)), fc.constantFrom('a'.repeat(65), 'with space', 'a/b', 'ä'));
    case 'text':
      return fc.oneof(notString, fc.constantFrom('', '   ', '\n\t'), fc.constant('y'.repeat(f.max + 1)), hugeString);
    case 'int':
      return fc.oneof(
        notNumber,
        infinite,
        fc.integer({ min: -1_000_000, max: f.min - 1 }),
        ...(f.max < 2 ** 30 ? [fc.integer({ min: f.max + 1, max: f.max + 1_000_000 })] : []),
        fc.constantFrom(f.min - 1, f.max + 1, f.min + 0.5, 2 ** 53, 2 ** 64, -(2 ** 63), 1e300),
        fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
      );
    case 'number':
      return fc.oneof(notNumber, infinite);
    case 'bool':
      return fc.oneof(fc.constantFrom('true', 'false', 1, 0, null, 'yes', []), fc.string({ maxLength: 5 }));
    case 'object':
      return fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.constant({ ['k'.repeat(201)]: 1 }));
    case 'strings':
      return fc.oneof(fc.string({ maxLength: 10 }), fc.constant(null), fc.constant({}), fc.constant(['']), fc.array(notString, { minLength: 1, maxLength: 3 }), fc.constant(Array.from({ length: 201 }, (_, i) => `a${i}`)));
    case 'uuids':
      return fc.oneof(
        notNumber.filter((v) => !Array.isArray(v)),
        fc.array(invalidFor({ kind: 'uuid' }), { minLength: 1, maxLength: 3 }),
        fc.uuid().map((u) => Array.from({ length: f.max + 1 }, () => u)),
      );
    case 'embedding':
      return fc.oneof(
        fc.constantFrom([], [0, 0], [1, 2, 3], [1], 'embedding', null, {}, [[1, 0]], [true, false]),
        fc.tuple(fc.integer({ min: 0, max: 1 }), fc.oneof(notNumber, infinite)).map(([i, bad]) => (i === 0 ? [bad, 1] : [1, bad])),
        fc.array(fc.double({ noNaN: true, noDefaultInfinity: true, min: -10, max: 10 }), { minLength: 3, maxLength: 60 }),
      );
    case 'iso':
      return fc.oneof(notString, fc.constantFrom('yesterday', '2026-01-01', '2026-01-01T00:00:00', '2026-13-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-01-01T25:00:00Z', '0', '', 'T', '2026-01-01T00:00:00+25:00'));
    case 'pastIso':
      return fc.oneof(invalidFor({ kind: 'iso' }), fc.constantFrom('2999-01-01T00:00:00Z', '9999-12-31T23:59:59Z'));
    case 'email':
      return fc.oneof(notString, fc.constantFrom('not-an-email', '@', 'a@', 'a@b', '', `${'a'.repeat(250)}@example.com`, 'a b@example.com', 'a\u0000@example.com'));
    case 'locale':
      return fc.oneof(notString, fc.constantFrom('', 'e', 'english', 'en_GB', 'en-', '12', 'en-GB-toolongsubtag', 'ü'));
    case 'actorId':
      return fc.oneof(notString, fc.constantFrom('', 'a b', 'x'.repeat(129), 'é', 'a/b', 'a\u0000'));
    case 'revisionOrName':
      return fc.oneof(fc.constantFrom(-1, 1.5, 'latest', 'ANY', '0', null, true, 2 ** 53, [], {}), infinite);
    case 'weights':
      return fc.oneof(
        fc.constantFrom('w', 1, null, [], { relevance: -1 }, { recency: 101 }, { importance: '1' }, { other: 1 }, { relevance: null }),
        infinite.map((n) => ({ relevance: n })),
      );
    case 'commandType':
      return fc.oneof(notString, fc.constantFrom('', 'entity.explode', 'ENTITY.SPAWN', 'entity.spawn ', 'x'.repeat(65), '__proto__', 'constructor', 'toString', 'hasOwnProperty'), nastyString().filter((s) => !f.known.includes(s)));
    case 'json':
      // Any JSON is a valid value here: only removal can break it.
      return fc.constant(undefined);
  }
};

// ---------------------------------------------------------------- bodies invalid by construction

/** A valid body of a route, with what each field must be and which fields it cannot do without. */
export type Template = {
  name: string;
  body: Record<string, unknown>;
  fields: Record<string, FieldKind>;
  required: string[];
  /** Where the fields live in the error paths ('' for the body itself, 'payload' for a command's payload). */
  at: string;
};

export type Mutated = { body: unknown; field?: string; unknownKey?: string };

const joinPath = (...parts: string[]) => parts.filter(Boolean).join('.');

/**
 * One mutation that makes the body invalid: a required field removed, a field
 * given a value its schema refuses, or an unknown key (every schema is strict).
 * `wrap` puts a mutated payload back into its command envelope.
 */
export const mutate = (t: Template, wrap: (inner: Record<string, unknown>) => Record<string, unknown> = (b) => b): fc.Arbitrary<Mutated> => {
  const known = new Set(Object.keys(t.fields));
  const mutable = Object.entries(t.fields).filter(([, k]) => k.kind !== 'json');
  const variants: fc.Arbitrary<Mutated>[] = [
    fc
      .tuple(fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('extra', 'Payload', 'commandID', 'id', '$where')), anyJson)
      .filter(([k]) => !known.has(k) && k !== '__proto__')
      .map(([k, v]) => ({ body: wrap({ ...t.body, [k]: v }), field: t.at, unknownKey: k })),
  ];
  if (t.required.length > 0) {
    variants.push(
      fc.constantFrom(...t.required).map((k) => {
        const { [k]: _gone, ...rest } = t.body;
        return { body: wrap(rest), field: joinPath(t.at, k) };
      }),
    );
  }
  if (mutable.length > 0) {
    variants.push(
      fc
        .constantFrom(...mutable)
        .chain(([k, kind]) => invalidFor(kind).map((v) => ({ body: wrap({ ...t.body, [k]: v }), field: joinPath(t.at, k) }))),
    );
  }
  // fast-check likes `__proto__` as a key; the JSON parser refuses it (400, as it should) before the field is looked at.
  return fc.oneof(...variants).filter((m) => !POISON.test(toJson(m.body)));
};

const POISON = /"(__proto__|constructor)":/;

/** Bytes that are not JSON, sent as application/json. */
export const notJson = (validText: string): fc.Arbitrary<string | Buffer> =>
  fc.oneof(
    fc.constantFrom('', ' ', '{', '}', '[', 'nul', 'NaN', '{"a":NaN}', "{'a':1}", '{"a":1,}', '{"a" 1}', '{}{}', '\u0000', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', 'undefined'),
    fc.integer({ min: 1, max: Math.max(1, validText.length - 1) }).map((n) => validText.slice(0, n)),
    fc.constantFrom('x', ',', ']', '}}', ' //', '\u0000').map((tail) => validText + tail),
    fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => Buffer.from(a)).filter((b) => !parses(b.toString('utf8'))),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 100 }).filter((s) => !parses(s)),
  );

const parses = (s: string): boolean => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

/** Content types the API does not take (with a body that would otherwise be valid). */
export const wrongContentType = fc.constantFrom(
  'text/plain',
  'text/html; charset=utf-8',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----fuzz',
  'application/octet-stream',
  'image/png',
  'application/jsonx',
  'application/json-seq',
  'json',
  '*/*',
  '',
);

// ---------------------------------------------------------------- ids, query strings, headers

/** A path segment no route takes as an id: unicode, very long, traversal, bad escapes, almost-UUIDs. */
export const hostileSegment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('..', '.', '%2e%2e', '..%2F..%2Fetc%2Fpasswd', '%00', 'a%00b', '%', '%zz', '%E0%A4', '%ED%A0%80', '%C0%AF', '%FF', '%20', '%2F', ';', 'null', 'undefined', '-1', 'NaN', '__proto__', 'constructor', '%7B%7D'),
  fc.uuid().chain((u) => fc.constantFrom(u.slice(0, -1), `${u}0`, u.replace(/-/g, ''), u.replace(/^./, 'g'), `${u}%00`, `${u}..`, pct(`{${u}}`))),
  nastyString().map(pct).filter((s) => s.length > 0),
  fc.integer({ min: 65, max: 2_000 }).map((n) => 'a'.repeat(n)),
);

/** Characters PostgreSQL cannot store in text or jsonb (NUL; a lone surrogate, escaped in JSON). */
export const storeBreaking: fc.Arbitrary<string> = fc
  .tuple(fc.string({ maxLength: 6 }), fc.constantFrom('\u0000', '\ud800', '\udfff', '\udc00\ud800'), fc.string({ maxLength: 6 }))
  .map(([a, c, b]) => `${a}${c}${b}`);

/** Date-times the schema takes (ISO-8601 with a zone) at the edges of what a database can hold, and some it should not take. */
export const edgeTime: fc.Arbitrary<string> = fc.constantFrom(
  '0000-01-01T00:00:00Z',
  '0000-12-31T23:59:59.999Z',
  '0001-01-01T00:00:00Z',
  '0001-01-01T00:00:00+14:00',
  '1969-12-31T23:59:59.999Z',
  '9999-12-31T23:59:59Z',
  '9999-12-31T23:59:59-23:59',
  '2026-01-01T00:00:00+23:59',
  '2026-12-31T23:59:60Z',
  '+275760-09-13T00:00:00Z',
  '2026-01-01T00:00:00.123456789Z',
);

const UUID_LIKE = fc.uuid().chain((u) => fc.constantFrom(u, u.toUpperCase(), u.slice(0, -1), `${u}\u0000`));

/** A pagination cursor: base64url of ids, stream names, `time_uuid` pairs (well-formed or not), NUL and garbage. */
export const cursorValue: fc.Arbitrary<string> = fc
  .oneof(
    UUID_LIKE,
    storeBreaking,
    fc.tuple(fc.constantFrom('entity-', 'player-', 'world-', 'narrative-', 'zzz-', ''), storeBreaking).map(([a, b]) => a + b),
    fc.tuple(fc.constantFrom('2026-01-01T00:00:00.000Z', '9999-99-99T99:99:99.999Z', '2026-02-30T00:00:00.000Z', '0000-00-00T00:00:00.000Z', '2026-01-01T24:00:00.000Z'), fc.uuid()).map(([t, u]) => `${t}_${u}`),
    fc.string({ unit: 'binary', maxLength: 40 }),
  )
  .map((c) => Buffer.from(c, 'utf8').toString('base64url'));

/** Values of any query parameter, good and bad: numbers of every size, dates, UUIDs, garbage. */
export const queryValue: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: -5, max: 50 }).map(String),
  fc.constantFrom('', '0', '-1', '1.5', '1e400', 'NaN', 'Infinity', '-0', '0x10', '9007199254740991', '9007199254740993', '99999999999999999999', ' 1', 'true', '[]', '{}'),
  edgeTime,
  fc.constantFrom('2026-01-01T00:00:00Z', '2999-01-01T00:00:00Z', '2026-02-30T00:00:00Z', 'yesterday'),
  fc.uuid(),
  nastyString(),
  storeBreaking,
  cursorValue,
  fc.integer({ min: 201, max: 5_000 }).map((n) => 'c'.repeat(n)),
  fc.constantFrom('%', '%zz', '%00', 'a%00b', '%E0%A4', '%ED%A0%80', '%FF', '%C0%AF'),
);

/** A value shaped for the parameter (a date for a date, a cursor for a cursor…), at the edges, or anything. */
export const queryValueFor = (name: string): fc.Arbitrary<string> => {
  if (['asOf', 'updatedSince', 'from', 'to', 'since'].includes(name)) return fc.oneof(edgeTime, queryValue);
  if (name === 'cursor') return fc.oneof(cursorValue, queryValue);
  if (['kind', 'locationId', 'commandId'].includes(name)) return fc.oneof(storeBreaking, UUID_LIKE, queryValue);
  return queryValue;
};

const encodeParam = ([k, v, raw]: [string, string, boolean]) =>
  // Raw: printable ASCII as typed (malformed %-escapes included); else every byte percent-encoded.
  `${raw ? k.replace(/[^\x21-\x7e]|[&#=]/g, '') : pct(k)}=${raw ? v.replace(/[^\x21-\x7e]|[&#]/g, '') : pct(v)}`;

/**
 * A query string: one of the route's own parameters with a value shaped for
 * it, plus up to three others (the route's, the point-in-time ones, strangers,
 * repeated keys), raw or encoded.
 */
export const queryString = (names: string[]): fc.Arbitrary<{ qs: string; waits: boolean }> => {
  const name = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...names, 'minPosition', 'atRevision', 'atPosition', 'asOf') },
    { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'hasOwnProperty', 'x', '', '[]', 'limit[]') },
    { weight: 1, arbitrary: nastyString(8) },
  );
  const param = name.chain((k) => fc.tuple(fc.constant(k), queryValueFor(k), fc.boolean()));
  const own = names.length > 0 ? fc.constantFrom(...names).chain((k) => fc.tuple(fc.constant(k), queryValueFor(k), fc.constant(false))) : param;
  return fc.tuple(fc.option(own, { freq: 3, nil: undefined }), fc.array(param, { maxLength: 3 })).map(([first, rest]) => {
    const params = [...(first ? [first] : []), ...rest];
    return { qs: params.length === 0 ? '' : `?${params.map(encodeParam).join('&')}`, waits: params.some(([k]) => k === 'minPosition') };
  });
};

const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));

/** An Authorization header that authenticates nobody. */
export const badAuthorization = (keys: string[]): fc.Arbitrary<string | undefined> =>
  fc
    .oneof(
      fc.constant(undefined),
      fc.constantFrom('', 'Bearer', 'Bearer ', 'Basic YWRtaW46YWRtaW4=', 'Token x', 'bearer', 'Bearer null', 'Bearer undefined', `Bearer ${keys[0]}x`, `Bearer ${keys[0]} ${keys[0]}`, `Basic ${keys[0]}`, `${keys[0]}`),
      fc.string({ unit: printable, maxLength: 60 }).map((s) => `Bearer ${s}`),
      fc.integer({ min: 1_000, max: 30_000 }).map((n) => `Bearer ${'k'.repeat(n)}`),
    )
    .filter((h) => {
      const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
      return !m || !keys.includes(m[1]!);
    });

/** Header values a client can send (visible ASCII and obs-text), sometimes very long. */
export const headerValue: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
  fc.constantFrom('', '-1', '1e400', 'NaN', '9007199254740993', '0x10', ' 5 ', '1.5', 'abc'),
  fc.integer({ min: 5_000, max: 60_000 }).map((n) => 'h'.repeat(n)),
);

/** A consistency token: garbage, or a position far beyond the log's head. */
export const consistencyToken: fc.Arbitrary<string> = fc.oneof(headerValue, fc.integer({ min: 1_000_000, max: 2 ** 31 }).map(String));

/** Extra headers a request may carry: a correlation id, a stranger, duplicates of known ones. */
export const extraHeaders: fc.Arbitrary<Record<string, string>> = fc.record(
  { 'x-correlation-id': headerValue, 'x-fuzz': headerValue, accept: fc.constantFrom('text/html', '*/*', 'application/xml', 'garbage'), 'x-forwarded-for': headerValue },
  { requiredKeys: [] },
);

// ---------------------------------------------------------------- the check

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Everything wrong with one answer (API.md errors, DESIGN.md invariant 7); empty when it is right. */
export const violations = (req: FuzzRequest, res: FuzzResponse): string[] => {
  const out: string[] = [];
  const status = res.statusCode;
  if (status >= 500 && !(status === 504 && req.waits)) out.push(`a ${status} for a client's mistake`);
  if (MUTATING.has(req.method) && status < 300 && !req.mayBeAccepted) out.push(`a ${req.method} the fuzzer made invalid was accepted (${status})`);
  if (status >= 300 && status < 400) out.push(`a redirect (${status})`);
  if (req.expect && status < 500 && !req.expect.includes(status)) out.push(`status ${status}, expected one of ${req.expect.join(', ')}`);
  if (status < 400 || req.method === 'HEAD') return out;
  if (!/^application\/problem\+json/.test(String(res.headers['content-type'] ?? ''))) out.push(`content-type ${String(res.headers['content-type'])}, not application/problem+json`);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(res.body);
  } catch {
    return [...out, 'the body is not JSON'];
  }
  if (body === null || typeof body !== 'object') return [...out, 'the body is not a JSON object'];
  if (typeof body.type !== 'string' || body.type === '') out.push('no type');
  if (typeof body.title !== 'string' || body.title === '') out.push('no title');
  if (typeof body.detail !== 'string') out.push('no detail');
  if (body.status !== status) out.push(`body.status ${String(body.status)} ≠ ${status}`);
  if (status === 400) {
    const errors = body.errors as { path?: unknown; message?: unknown }[] | undefined;
    if (!Array.isArray(errors) || errors.length === 0) return [...out, 'a 400 without errors[]'];
    if (errors.some((e) => typeof e?.path !== 'string' || typeof e?.message !== 'string')) out.push('an error without path and message');
    if (req.field !== undefined) {
      const named = errors.some((e) =>
        req.unknownKey !== undefined
          ? (e.path === req.field && String(e.message).includes(req.unknownKey)) ||
            // or an error inside the unknown key's value (too deep, a NUL), which names it in the path
            `${String(e.path)}.`.startsWith(`${[req.field, req.unknownKey].filter(Boolean).join('.')}.`)
          : e.path === req.field || String(e.path).startsWith(`${req.field}.`) || (req.field !== '' && String(e.message).includes(req.field!.split('.').at(-1)!)),
      );
      if (!named) out.push(`errors[] do not name ${req.unknownKey !== undefined ? `the unknown key ${JSON.stringify(req.unknownKey)} at ` : ''}"${req.field}"`);
    }
  }
  return out;
};

const clip = (s: string, n = 600) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

/** The request alone, clipped (fast-check's counterexample). */
export const summary = (req: FuzzRequest): string => describeExchange(req, null, []).split('\n').slice(0, 3).join(' | ');

/** One line per part, clipped: what a failure prints. */
export const describeExchange = (req: FuzzRequest, res: FuzzResponse | null, problems: string[]): string =>
  [
    `[${req.family}] ${req.method} ${clip(req.url, 300)}`,
    `headers: ${clip(JSON.stringify(req.headers), 300)}`,
    req.payload === undefined ? 'no body' : `body: ${clip(Buffer.isBuffer(req.payload) ? `<bytes ${req.payload.toString('hex')}>` : JSON.stringify(req.payload))}`,
    res ? `→ ${res.statusCode} ${String(res.headers['content-type'] ?? '')} ${clip(res.body)}` : '→ no answer',
    ...problems.map((p) => `  ✗ ${p}`),
  ].join('\n');
