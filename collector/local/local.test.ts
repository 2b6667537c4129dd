import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify } from '../identify/classify.js';
import { Device } from '../identify/device.js';
import { buildCloudSpeechCatalog, loadCloudSpeechCatalog } from './cloud-speech.js';
import { readHermesPublishes } from './hermes.js';
import { WyomingReader, type WyomingEvent } from './wyoming.js';

/** Wyoming events as the protocol writes them (github.com/rhasspy/wyoming README, "Format"). */
function event(type: string, data: object | null, payload = 0, extra: object | null = null): Buffer {
  const section = extra === null ? Buffer.alloc(0) : Buffer.from(JSON.stringify(extra));
  const header = { type, ...(data ? { data } : {}), ...(section.length ? { data_length: section.length } : {}), ...(payload ? { payload_length: payload } : {}) };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), section, Buffer.alloc(payload, 7)]);
}

const stream = Buffer.concat([
  event('describe', null),
  event('info', null, 0, { satellite: { name: 'kitchen' }, asr: [] }),
  event('detection', null, 0, { name: 'ok_nabu' }),
  event('audio-chunk', { rate: 16000, width: 2, channels: 1 }, 1024),
  event('audio-chunk', { rate: 16000, width: 2, channels: 1 }, 1024),
  event('audio-stop', { timestamp: 64 }),
]);

function readAll(segments: Array<[number, Buffer]>): { events: WyomingEvent[]; reader: WyomingReader } {
  const reader = new WyomingReader();
  const events: WyomingEvent[] = [];
  for (const [seq, buf] of segments) reader.push(seq, buf, 0, buf.length, (e) => events.push(e));
  return { events, reader };
}

function cut(buf: Buffer, points: number[]): Array<[number, Buffer]> {
  const sorted = [...new Set(points.filter((p) => p > 0 && p < buf.length))].sort((a, b) => a - b);
  const out: Array<[number, Buffer]> = [];
  let at = 0;
  for (const p of [...sorted, buf.length]) {
    out.push([1000 + at, buf.subarray(at, p)]);
    at = p;
  }
  return out;
}

describe('Wyoming reader', () => {
  it('reads the events, their data sections and payload lengths however the stream is cut into segments', () => {
    const whole = readAll([[1000, stream]]).events;
    expect(whole.map((e) => e.type)).toEqual(['describe', 'info', 'detection', 'audio-chunk', 'audio-chunk', 'audio-stop']);
    expect(whole[1].data).toMatchObject({ satellite: { name: 'kitchen' } });
    expect(whole[2].data).toEqual({ name: 'ok_nabu' });
    expect(whole[3].payloadLength).toBe(1024);
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 40 }), (points) => {
      expect(readAll(cut(stream, points)).events).toEqual(whole);
    }));
  });

  it('ignores retransmitted bytes, and after a lost segment resynchronises on the next event', () => {
    const segments = cut(stream, [30, 200, 900, 1500, 2300]);
    const again = [segments[0], segments[1], segments[1], segments[2], segments[3], segments[4], segments[5]];
    expect(readAll(again).events).toEqual(readAll(segments).events);
    // lose the segment holding the first chunk's header: its events are gone, the stop is still read
    const stop = stream.lastIndexOf(Buffer.from('{"type":"audio-stop"'));
    const lossy = cut(stream, [stop - 1500, stop]).filter((_, i) => i !== 1);
    const { events, reader } = readAll(lossy);
    expect(events.at(-1)?.type).toBe('audio-stop');
    expect(reader.desyncs).toBeGreaterThan(0);
  });

  it('is not fooled by other protocols and never throws on arbitrary bytes', () => {
    const { events, reader } = readAll([[1, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], [27, Buffer.from('{"no": "type"}\n')]]);
    expect(events).toEqual([]);
    expect(reader.badHeaders).toBeGreaterThan(0);
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), fc.integer(), (chunks, seq) => {
      const reader = new WyomingReader();
      let s = seq >>> 0;
      for (const c of chunks) {
        reader.push(s, Buffer.from(c), 0, c.length, () => {});
        s = (s + c.length) >>> 0;
      }
    }));
  });
});

describe('Hermes over MQTT', () => {
  const publish = (topic: string, payload: number) => {
    const t = Buffer.from(topic);
    const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 255]), t, Buffer.alloc(payload)]);
    const len: number[] = [];
    for (let n = body.length; ; ) { let b = n % 128; n = Math.floor(n / 128); if (n > 0) b |= 0x80; len.push(b); if (n === 0) break; }
    return Buffer.concat([Buffer.from([0x30, ...len]), body]);
  };

  it('reads the topics and payload lengths of the PUBLISH packets a segment starts with', () => {
    const seen: Array<[string, number]> = [];
    const seg = Buffer.concat([publish('hermes/hotword/porcupine/detected', 40), publish('hermes/audioServer/bedroom/audioFrame', 1068)]);
    readHermesPublishes(seg, 0, seg.length, (t, n) => seen.push([t, n]));
    expect(seen).toEqual([['hermes/hotword/porcupine/detected', 40], ['hermes/audioServer/bedroom/audioFrame', 1068]]);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      readHermesPublishes(Buffer.from(bytes), 0, bytes.length, () => {});
    }));
  });
});

describe('the cloud speech catalogue', () => {
  it('ships entries that each cite a source, and matches names by pattern', () => {
    const catalog = loadCloudSpeechCatalog();
    expect(catalog.entries.length).toBeGreaterThan(10);
    for (const e of catalog.entries) expect(e.source, e.pattern).toMatch(/^https:\/\//);
    expect(catalog.lookup('speech.googleapis.com')?.organisation).toBe('Google');
    expect(catalog.lookup('westeurope.stt.speech.microsoft.com.')?.organisation).toBe('Microsoft');
    expect(catalog.lookup('transcribestreaming.eu-west-1.amazonaws.com')?.service).toBe('Amazon Transcribe streaming');
    expect(catalog.lookup('abcdef.ui.nabu.casa')?.kind).toBe('relay');
    expect(catalog.lookup('www.googleapis.com')).toBeNull();
    expect(catalog.lookup('notspeech.googleapis.com.evil.example')).toBeNull();
  });

  it('rejects a malformed entry with one line naming it', () => {
    expect(() => buildCloudSpeechCatalog([{ pattern: 'bad pattern', service: 's', organisation: 'o', kind: 'stt', source: 'x' }], 'test.json'))
      .toThrow(/test\.json: entries\[0\]: pattern must be a host name/);
  });
});

describe('local assistants in the inventory', () => {
  const device = (setup: (d: Device) => void) => {
    const d = new Device(0xdca632300030, 'dc:a6:32:30:00:30');
    setup(d);
    return d;
  };

  it('an mDNS announcement alone makes no assistant and names no local kind (anyone can send one)', () => {
    const v = classify(device((d) => { d.mdnsServices.add('_wyoming._tcp.local'); d.mdnsServices.add('_home-assistant._tcp.local'); }));
    expect(v.assistant).toBe(false);
    expect(v.vendor).toBeNull();
    expect(v.evidence).toContain('announces _wyoming._tcp.local (a Wyoming service; not counted: no local assistant traffic seen)');
  });

  it('what a device did on the LAN says what it is: a satellite is an assistant, a server is not', () => {
    expect(classify(device((d) => d.localRoles.add('wyoming-satellite')))).toMatchObject({ vendor: 'home-assistant', model: 'voice satellite (Wyoming)', assistant: true });
    expect(classify(device((d) => { d.localRoles.add('wyoming-stt'); d.localRoles.add('wyoming-server'); }))).toMatchObject({ vendor: 'home-assistant', model: 'Home Assistant (Assist server)', assistant: false });
    expect(classify(device((d) => d.localRoles.add('esphome-device')))).toMatchObject({ vendor: 'esphome', assistant: false });
    // the owner's word still wins
    expect(classify(device((d) => { d.localRoles.add('wyoming-satellite'); d.configAssistant = false; })).assistant).toBe(false);
  });
});
