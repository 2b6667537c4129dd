/**
 * The catalogue of cloud speech services (data/cloud-speech.json): the names a local voice server (Home
 * Assistant, Rhasspy, OpenVoiceOS) contacts when it sends a satellite's audio on to the cloud. Compiled
 * once at setup; looked up per named flow (a DNS answer or an SNI), never per packet.
 */
import { readFileSync } from 'node:fs';
import { earshotError } from '../errors.js';
import { packagePath } from '../paths.js';

/** One cloud speech service. */
export interface CloudSpeechEntry {
  pattern: string;
  /** What it is, in words ("Google Cloud Speech-to-Text"). */
  service: string;
  organisation: string;
  /** stt: speech-to-text; assistant: a cloud conversation/voice API; relay: a tunnel the voice may pass through. */
  kind: 'stt' | 'assistant' | 'relay';
  /** Where the name comes from (a URL and what it says). */
  source: string;
}

export interface CloudSpeechCatalog {
  readonly entries: readonly CloudSpeechEntry[];
  /** The entry a server name matches (case-insensitive, a trailing dot ignored), or null. */
  lookup(name: string): CloudSpeechEntry | null;
}

const KINDS = new Set(['stt', 'assistant', 'relay']);
/** A host name pattern: labels of letters, digits and '-', with '*' standing for one or more labels. */
const PATTERN = /^(\*|[a-z0-9-]+)(\.(\*|[a-z0-9-]+))+$/i;

/** Compiles entries into one lookup; throws a coded error naming the entry when one is malformed. */
export function buildCloudSpeechCatalog(entries: readonly CloudSpeechEntry[], where = 'collector/local/data/cloud-speech.json'): CloudSpeechCatalog {
  const compiled = entries.map((e, i) => {
    if (typeof e?.pattern !== 'string' || !PATTERN.test(e.pattern)) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', `${where}: entries[${i}]`, `pattern must be a host name with * wildcards, got ${JSON.stringify(e?.pattern)}`);
    if (!KINDS.has(e.kind) || typeof e.service !== 'string' || typeof e.organisation !== 'string' || typeof e.source !== 'string') {
      throw earshotError('EARSHOT_ERR_CONFIG_INVALID', `${where}: entries[${i}]`, 'needs service, organisation, source and kind (stt, assistant or relay)');
    }
    const body = e.pattern.toLowerCase().split('.').map((label) => (label === '*' ? '(?:[a-z0-9-]+\\.)*[a-z0-9-]+' : label)).join('\\.');
    return { entry: e, test: new RegExp(`^${body}$`) };
  });
  // the patterns by their last two labels: most names miss here with one map lookup, and a name of a
  // busy suffix (amazonaws.com) is tried against that suffix's patterns only, in the catalogue's order
  const bySuffix = new Map<string, typeof compiled>();
  for (const c of compiled) {
    const suffix = c.entry.pattern.toLowerCase().split('.').slice(-2).join('.');
    const list = bySuffix.get(suffix);
    if (list === undefined) bySuffix.set(suffix, [c]);
    else list.push(c);
  }
  return {
    entries,
    lookup(name: string): CloudSpeechEntry | null {
      const n = name.toLowerCase().replace(/\.$/, '');
      const dot = n.lastIndexOf('.', n.lastIndexOf('.') - 1);
      const candidates = bySuffix.get(dot === -1 ? n : n.slice(dot + 1));
      if (candidates === undefined) return null;
      for (const c of candidates) if (c.test.test(n)) return c.entry;
      return null;
    },
  };
}

/** Reads the shipped catalogue (sync, at setup). */
export function loadCloudSpeechCatalog(): CloudSpeechCatalog {
  const data = JSON.parse(readFileSync(packagePath('collector', 'local', 'data', 'cloud-speech.json'), 'utf8')) as { entries: CloudSpeechEntry[] };
  return buildCloudSpeechCatalog(data.entries);
}
