/**
 * Text from the network made safe to show. Names, models, server names, SNI and DNS names all come from
 * packets that any device on the LAN can forge; shown raw, an ESC sequence in an mDNS name clears the
 * owner's terminal or rewrites earlier lines, a bidi override reverses what a name seems to say, and a
 * line break forges a log line. Every place that shows such text to a person passes it through
 * `printable`; JSON output keeps the text as it was (JSON escapes it, and the data stays faithful).
 */

/**
 * What cannot be shown as itself: C0 controls and DEL, C1 controls (0x9b is an 8-bit CSI to some
 * terminals), the bidi embeddings, overrides and isolates, zero-width characters, the line and
 * paragraph separators, and the byte-order mark.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is this module's job
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

function escapeOne(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * `text` with every control, bidi and zero-width character written as a visible escape (ESC becomes
 * `\x1b`, U+202E `\u202e`): the owner sees that a name holds something odd instead of having it acted on.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escapeOne);
}

/**
 * A name made inert for chat receivers (Slack, Discord) on top of `printable`: "@" becomes the
 * full-width "＠" so "@everyone" or "@here" in a device name can never be a mention, and "://" becomes
 * "[:]//" so a URL in a name is not turned into a link.
 */
export function chatInert(text: string): string {
  return printable(text).replace(/@/g, '\uff20').replace(/:\/\//g, '[:]//');
}

/** Nesting a preview descends before it writes `[...]` or `{...}`. */
const PREVIEW_DEPTH = 8;

/**
 * Any value as short JSON-like text for a message ("time: [[1,2]] is not ..."), at most `max` characters
 * (cut with "..."). It never throws: JSON.stringify recurses, so a record nested 30,000 deep (64 kB from
 * an MQTT payload) overflowed the stack; this stops at a depth and at its length.
 */
export function preview(value: unknown, max = 60): string {
  let out = '';
  const walk = (v: unknown, depth: number): void => {
    if (out.length > max) return;
    if (typeof v === 'string') {
      out += JSON.stringify(v.length > max ? v.slice(0, max) : v);
    } else if (v === null || typeof v !== 'object') {
      out += typeof v === 'bigint' ? `${v}n` : typeof v === 'function' || typeof v === 'symbol' ? typeof v : String(v);
    } else if (depth >= PREVIEW_DEPTH) {
      out += Array.isArray(v) ? '[...]' : '{...}';
    } else if (Array.isArray(v)) {
      out += '[';
      for (let i = 0; i < v.length && out.length <= max; i++) {
        if (i > 0) out += ',';
        walk(v[i], depth + 1);
      }
      out += ']';
    } else {
      out += '{';
      let first = true;
      for (const key in v) {
        if (!Object.prototype.hasOwnProperty.call(v, key)) continue;
        if (out.length > max) break;
        out += `${first ? '' : ','}${JSON.stringify(key.length > max ? key.slice(0, max) : key)}:`;
        first = false;
        walk((v as Record<string, unknown>)[key], depth + 1);
      }
      out += '}';
    }
  };
  walk(value, 0);
  return out.length > max ? `${out.slice(0, max - 3)}...` : out;
}

/**
 * `text` as one shell word for a command earshot prints: single-quoted, or as it is when it holds nothing
 * the shell would take apart and `always` is not asked for.
 */
export function shellWord(text: string, always = false): string {
  return !always && /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
