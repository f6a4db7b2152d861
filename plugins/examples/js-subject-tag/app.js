// postern example plugin: subject tagging, in JavaScript.
//
// At the end of DATA, prefixes the Subject of a message with a tag such as
// "[EXTERNAL]". With a word list configured, only messages whose Subject or
// body start mentions one of the words (case-insensitively) are tagged.
//
// In:  configure(JSON) with the plugin's table from postern.toml:
//        tag    string, default "[EXTERNAL]"; one line, printable
//        words  list of strings, default []; empty = tag every message
//      on-data(context, message); the context (arguments, client, envelope)
//      is not read, so none of it crosses into the plugin
// Out: always `continue`; when tagging, one `replace-header` edit that sets
//      Subject to "TAG original" (or "TAG" when there is no Subject).
//
// Security notes: the tag ends up in a header, so configure refuses control
// characters (no header injection through the config). At most BODY_SCAN_BYTES
// of the body cross into the plugin, whatever the message size. A subject that
// already starts with the tag is left alone, so a message that passes twice (a
// relay loop, a second postern) is not tagged twice.
//
// Limits: the body is matched as raw bytes decoded as UTF-8, before any MIME
// decoding (a base64 or quoted-printable part is not searched), and RFC 2047
// encoded words in the Subject are matched as they stand.
//
// Imports no capability: the world (wit/world.wit) exports lifecycle and
// message-filter only; `context`, `message` and `types` come from the postern
// interface.

/** How much of the body (after the header section) is searched for words. */
const BODY_SCAN_BYTES = 64 * 1024;

const DEFAULT_TAG = '[EXTERNAL]';
const CONFIG_KEYS = new Set(['tag', 'words']);
const UTF8 = new TextDecoder(); // replaces invalid bytes with U+FFFD

/** The active configuration; configure replaces it at the start of every instance. */
let config = { tag: DEFAULT_TAG, words: [] };

/**
 * Parses and checks the plugin's JSON table. Returns the configuration, or
 * throws a string that tells the operator what is wrong.
 */
function parseConfig(text) {
  // The host may hand over an empty table as "" or "null".
  if (text.trim() === '' || text.trim() === 'null') {
    return { tag: DEFAULT_TAG, words: [] };
  }
  let table;
  try {
    table = JSON.parse(text);
  } catch (e) {
    throw `config is not valid JSON: ${e.message}`;
  }
  if (table === null || typeof table !== 'object' || Array.isArray(table)) {
    throw 'config must be a table (a JSON object)';
  }
  for (const key of Object.keys(table)) {
    // Refuse typos ("word", "Tag") instead of silently running with defaults.
    if (!CONFIG_KEYS.has(key)) throw `unknown config key "${key}" (known: tag, words)`;
  }

  const tag = table.tag ?? DEFAULT_TAG;
  if (typeof tag !== 'string' || tag.trim() === '') throw '"tag" must be a non-empty string';
  // The tag is written into a header: CR/LF would inject header lines.
  if (/[\u0000-\u001f\u007f]/.test(tag)) throw '"tag" must not contain control characters';

  const words = table.words ?? [];
  if (!Array.isArray(words) || !words.every((w) => typeof w === 'string' && w !== '')) {
    throw '"words" must be a list of non-empty strings';
  }
  // Matching is case-insensitive: lower-case the words once, here.
  return { tag: tag.trim(), words: words.map((w) => w.toLowerCase()) };
}

/** The value of the first header named `name` (case-insensitive), or null. */
function headerValue(headers, name) {
  const wanted = name.toLowerCase();
  const found = headers.find((h) => h.name.toLowerCase() === wanted);
  return found ? found.value : null;
}

/** Whether `text` contains one of the (lower-case) words, case-insensitively. */
function mentionsAny(text, words) {
  const haystack = text.toLowerCase();
  return words.some((w) => haystack.includes(w));
}

/**
 * Whether the message is to be tagged under the word list: its Subject or the
 * first BODY_SCAN_BYTES of its body contains a word. The body is read only if
 * the Subject does not already decide.
 */
function matchesWords(message, subject, words) {
  if (words.length === 0) return true;
  if (subject !== null && mentionsAny(subject, words)) return true;
  // read-body takes a u64 offset (a BigInt here) and a u32 length.
  const body = message.readBody(0n, BODY_SCAN_BYTES);
  // Non-UTF-8 bytes become U+FFFD, so ASCII words still match 8-bit bodies.
  return mentionsAny(UTF8.decode(body), words);
}

const CONTINUE = Object.freeze({ tag: 'continue' });

export const lifecycle = {
  configure(text) {
    try {
      config = parseConfig(text);
    } catch (reason) {
      // The bindings turn a returned `err` into result::err; a thrown Error
      // would trap instead of reaching the operator.
      return { tag: 'err', val: String(reason) };
    }
    return { tag: 'ok', val: undefined };
  },
};

export const messageFilter = {
  onData(_context, message) {
    const { tag, words } = config;
    const subject = headerValue(message.headers(), 'Subject');

    // Never tag twice; checked first, so a tagged message costs no body read.
    if (subject !== null && subject.startsWith(tag)) return { verdict: CONTINUE, edits: [] };
    if (!matchesWords(message, subject, words)) return { verdict: CONTINUE, edits: [] };

    const value = subject === null || subject.trim() === '' ? tag : `${tag} ${subject}`;
    return {
      verdict: CONTINUE,
      edits: [{ tag: 'replace-header', val: { name: 'Subject', value } }],
    };
  },
};
