// Native tests of app.js, run by node itself: `node --test` in this directory (or `npm test`).
// app.js imports nothing from the host, so it loads as a plain ES module; the
// message resource is faked with the same shape the component bindings give
// (headers() -> [{name, value}], readBody(bigint, number) -> Uint8Array).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { lifecycle, messageFilter } from './app.js';

/** A fake `message` resource; counts body reads. */
function message(headers, body = '') {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  return {
    bodyReads: 0,
    headers: () => headers.map(([name, value]) => ({ name, value })),
    readBody(offset, len) {
      assert.equal(typeof offset, 'bigint', 'read-body offset is a u64 (BigInt)');
      this.bodyReads += 1;
      return bytes.subarray(Number(offset), Number(offset) + len);
    },
  };
}

function configure(table) {
  const res = lifecycle.configure(typeof table === 'string' ? table : JSON.stringify(table));
  assert.equal(res.tag, 'ok', `configure failed: ${res.val}`);
}

/** Runs on-data; returns the new Subject, or null when there is no edit. */
function tagged(msg) {
  const out = messageFilter.onData({}, msg);
  assert.deepEqual(out.verdict, { tag: 'continue' });
  if (out.edits.length === 0) return null;
  assert.equal(out.edits.length, 1);
  assert.equal(out.edits[0].tag, 'replace-header');
  assert.equal(out.edits[0].val.name, 'Subject');
  return out.edits[0].val.value;
}

test('default config tags every message, once', () => {
  configure('');
  assert.equal(tagged(message([['Subject', 'Hello']])), '[EXTERNAL] Hello');
  assert.equal(tagged(message([['subject', 'Hello']])), '[EXTERNAL] Hello', 'name is case-insensitive');
  assert.equal(tagged(message([['From', 'a@b']])), '[EXTERNAL]', 'no Subject: just the tag');
  assert.equal(tagged(message([['Subject', '']])), '[EXTERNAL]');
  assert.equal(tagged(message([['Subject', '[EXTERNAL] Hello']])), null, 'never twice');
  configure({});
  assert.equal(tagged(message([['Subject', 'x']])), '[EXTERNAL] x');
});

test('custom tag; first Subject wins', () => {
  configure({ tag: '[ext]' });
  assert.equal(tagged(message([['Subject', 'one'], ['Subject', 'two']])), '[ext] one');
  assert.equal(tagged(message([['Subject', '[ext] one']])), null);
});

test('words: subject or body, case-insensitive; body read only when needed', () => {
  configure({ tag: '[SPAM?]', words: ['Invoice', 'bitcoin'] });

  const bySubject = message([['Subject', 'Your INVOICE']], 'bitcoin');
  assert.equal(tagged(bySubject), '[SPAM?] Your INVOICE');
  assert.equal(bySubject.bodyReads, 0);

  const byBody = message([['Subject', 'hi']], 'send BitCoin now');
  assert.equal(tagged(byBody), '[SPAM?] hi');
  assert.equal(byBody.bodyReads, 1);

  assert.equal(tagged(message([['Subject', 'hi']], 'nothing to see')), null);
  assert.equal(tagged(message([], 'an invoice')), '[SPAM?]');
  // 8-bit (non-UTF-8) bodies still match ASCII words.
  assert.equal(tagged(message([], Uint8Array.from([0xe9, 0x20, ...Buffer.from('invoice')]))), '[SPAM?]');
});

test('only the first 64 KiB of the body are searched', () => {
  configure({ words: ['needle'] });
  const pad = 'x'.repeat(64 * 1024);
  assert.equal(tagged(message([], pad.slice(6) + 'needle')), '[EXTERNAL]');
  assert.equal(tagged(message([], pad + 'needle')), null);
});

test('bad configs are refused with a reason, and keep no half state', () => {
  for (const [table, why] of [
    ['{', /not valid JSON/],
    ['[]', /must be a table/],
    ['"x"', /must be a table/],
    [{ tga: 'x' }, /unknown config key "tga"/],
    [{ tag: '' }, /non-empty string/],
    [{ tag: 3 }, /non-empty string/],
    [{ tag: 'a\r\nBcc: x@y' }, /control characters/],
    [{ words: 'spam' }, /list of non-empty strings/],
    [{ words: ['ok', ''] }, /list of non-empty strings/],
  ]) {
    const res = lifecycle.configure(typeof table === 'string' ? table : JSON.stringify(table));
    assert.equal(res.tag, 'err', JSON.stringify(table));
    assert.equal(typeof res.val, 'string');
    assert.match(res.val, why);
  }
});
