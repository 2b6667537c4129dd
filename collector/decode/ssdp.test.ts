/**
 * parseSsdp: golden test against tshark (its SSDP dissection: method or status, header lines, SERVER,
 * USER-AGENT) on every real capture with SSDP and on a capture written here of Sonos and Amazon-style
 * announcements and answers (examples made for these tests from the UPnP formats, not captured); the
 * edges on hand-built messages; fast-check fuzzing for "never throws, reads only its range, bounded".
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classicPcap } from '../../test/helpers/capture-files.js';
import { ethernetFrame, ipv4Packet, tshark, udpDatagram } from '../../test/helpers/decode-test-support.js';
import { readAllRecords } from '../../test/helpers/read-capture-simple.js';
import { describeShared, REAL_CAPTURES } from '../../test/helpers/shared.js';
import { buildDecoder, IPPROTO_UDP } from './index.js';
import { MAX_SSDP_VALUE, parseSsdp, type SsdpInfo } from './ssdp.js';

/** One tshark run per real capture, all at once: minutes when the whole suite shares two cores. */
const GOLDEN_TIMEOUT_MS = 300_000;

/** UDP payloads to or from port 1900, by frame number (copied). */
function ssdpPayloads(path: string): Map<number, Buffer> {
  const decoder = buildDecoder();
  const payloads = new Map<number, Buffer>();
  readAllRecords(path).forEach((record, index) => {
    const pkt = decoder.decode(record.buf, record.offset, record.capLen, record.wireLen, record.timeMs, record.linkType);
    if (pkt === null || pkt.proto !== IPPROTO_UDP || pkt.payloadLength === 0) return;
    if (pkt.srcPort !== 1900 && pkt.dstPort !== 1900) return;
    payloads.set(index + 1, Buffer.from(pkt.payloadBuf.subarray(pkt.payloadOffset, pkt.payloadOffset + pkt.payloadLength)));
  });
  return payloads;
}

const list = (value: unknown): unknown[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
const HEADER_KEYS: Record<string, keyof SsdpInfo> = { server: 'server', nt: 'nt', nts: 'nts', st: 'st', usn: 'usn', location: 'location', 'user-agent': 'userAgent' };

/** SsdpInfo from one ssdp layer of tshark's JSON. */
function infoFromTshark(layer: Record<string, unknown>): SsdpInfo {
  let kind: SsdpInfo['kind'] | null = null;
  for (const value of Object.values(layer)) {
    if (typeof value !== 'object' || value === null) continue;
    const fields = value as Record<string, string>;
    if (fields['http.request.method'] === 'NOTIFY') kind = 'notify';
    else if (fields['http.request.method'] === 'M-SEARCH') kind = 'search';
    else if (fields['http.response.code'] !== undefined) kind = 'response';
  }
  const info: SsdpInfo = { kind: kind as SsdpInfo['kind'], server: null, nt: null, nts: null, st: null, usn: null, location: null, userAgent: null };
  // headers tshark knows have their own fields (in a NOTIFY, only there); the rest are header lines,
  // or "unknown headers" whose line end tshark writes escaped (\\r\\n)
  const known: Record<string, keyof SsdpInfo> = { 'http.server': 'server', 'http.location': 'location', 'http.user_agent': 'userAgent' };
  for (const [field, key] of Object.entries(known)) {
    const value = list(layer[field])[0];
    if (typeof value === 'string') (info as unknown as Record<string, string | null>)[key] = value.trim() || null;
  }
  const lines = [...list(layer['http.request.line']), ...list(layer['http.response.line']), ...list(layer['http.unknown_header'])] as string[];
  for (const raw of lines) {
    const line = raw.replace(/(\r\n|\\r\\n)$/, '');
    const colon = line.indexOf(':');
    const key = HEADER_KEYS[line.slice(0, colon).trim().toLowerCase()];
    if (colon <= 0 || key === undefined || info[key] !== null) continue;
    (info as unknown as Record<string, string | null>)[key] = line.slice(colon + 1).trim() || null;
  }
  return info;
}

/** Compares parseSsdp with tshark on every SSDP frame of `path`; returns how many frames there were. */
async function compareWithTshark(path: string, label: string): Promise<number> {
  let out: string;
  try {
    out = await tshark(['-r', path, '-Y', 'ssdp', '-T', 'json', '--no-duplicate-keys']);
  } catch (err) {
    if (/cut short in the middle of a packet/.test(String((err as { stderr?: string }).stderr))) return 0;
    throw err;
  }
  const packets = JSON.parse(out || '[]') as Array<{ _source: { layers: Record<string, unknown> } }>;
  const payloads = ssdpPayloads(path);
  for (const packet of packets) {
    const frame = Number((packet._source.layers.frame as Record<string, string>)['frame.number']);
    const payload = payloads.get(frame) as Buffer;
    expect(payload, `${label} frame ${frame}`).toBeDefined();
    expect(parseSsdp(payload, 0, payload.length), `${label} frame ${frame}`).toEqual(infoFromTshark(packet._source.layers.ssdp as Record<string, unknown>));
  }
  return packets.length;
}

const crlf = (...lines: string[]) => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');

/** Sonos and Amazon-style messages (made for these tests following UPnP/DIAL; not captured). */
const EXAMPLES: Record<string, Buffer> = {
  sonosNotify: crlf('NOTIFY * HTTP/1.1', 'HOST: 239.255.255.250:1900', 'CACHE-CONTROL: max-age = 1800',
    'LOCATION: http://192.168.1.70:1400/xml/device_description.xml', 'NT: urn:schemas-upnp-org:device:ZonePlayer:1',
    'NTS: ssdp:alive', 'SERVER: Linux UPnP/1.0 Sonos/70.3-35220 (ZPS9)',
    'USN: uuid:RINCON_347E5CFFA26E01400::urn:schemas-upnp-org:device:ZonePlayer:1', 'X-RINCON-HOUSEHOLD: Sonos_abc123'),
  sonosResponse: crlf('HTTP/1.1 200 OK', 'CACHE-CONTROL: max-age = 1800', 'EXT:',
    'LOCATION: http://192.168.1.70:1400/xml/device_description.xml', 'SERVER: Linux UPnP/1.0 Sonos/70.3-35220 (ZPS9)',
    'ST: urn:schemas-upnp-org:device:ZonePlayer:1', 'USN: uuid:RINCON_347E5CFFA26E01400::urn:schemas-upnp-org:device:ZonePlayer:1'),
  amazonResponse: crlf('HTTP/1.1 200 OK', 'Cache-Control: max-age=1800', 'Location: http://192.168.1.50:60000/upnp/dev/3f2b/desc',
    'Server: Linux/4.9.77 UPnP/1.0 Amazon-Device/1.0', 'ST: urn:dial-multiscreen-org:service:dial:1',
    'USN: uuid:3f2b6c1e-0000-1000-8000-fc65de5f150a::urn:dial-multiscreen-org:service:dial:1'),
  search: crlf('M-SEARCH * HTTP/1.1', 'HOST: 239.255.255.250:1900', 'MAN: "ssdp:discover"', 'MX: 1',
    'ST: urn:schemas-upnp-org:device:ZonePlayer:1', 'USER-AGENT: Linux UPnP/1.0 Sonos/70.3 (ACR_2b1c)'),
  byebye: crlf('NOTIFY * HTTP/1.1', 'host: 239.255.255.250:1900', 'nt: upnp:rootdevice', 'nts: ssdp:byebye', 'usn: uuid:abc::upnp:rootdevice'),
};

describeShared('parseSsdp against tshark', () => {
  it('agrees on every SSDP message of the real captures', async () => {
    const files = readdirSync(REAL_CAPTURES).filter((file) => /\.pcap(ng)?$/.test(file));
    const counts = await Promise.all(files.map((file) => compareWithTshark(join(REAL_CAPTURES, file), file)));
    expect(files.filter((_, i) => counts[i] > 0)).toContain('netflix_dns-cname-sni_ndpi.pcap');
  }, GOLDEN_TIMEOUT_MS);

  it('agrees on the Sonos and Amazon examples', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'earshot-ssdp-'));
    try {
      const path = join(dir, 'ssdp.pcap');
      const frames = Object.values(EXAMPLES).map((payload, i) => ({
        seconds: 1_700_000_000 + i, fraction: 0,
        data: ethernetFrame(0x0800, ipv4Packet('192.168.1.70', '239.255.255.250', 17, udpDatagram(i % 2 ? 1900 : 49152, 1900, payload))),
      }));
      writeFileSync(path, classicPcap(frames));
      expect(await compareWithTshark(path, 'ssdp.pcap')).toBe(frames.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseSsdp on hand-built messages', () => {
  const parse = (payload: Buffer) => parseSsdp(payload, 0, payload.length);

  it('reads a Sonos announcement and answer', () => {
    expect(parse(EXAMPLES.sonosNotify)).toEqual({
      kind: 'notify', server: 'Linux UPnP/1.0 Sonos/70.3-35220 (ZPS9)', nt: 'urn:schemas-upnp-org:device:ZonePlayer:1',
      nts: 'ssdp:alive', st: null, usn: 'uuid:RINCON_347E5CFFA26E01400::urn:schemas-upnp-org:device:ZonePlayer:1',
      location: 'http://192.168.1.70:1400/xml/device_description.xml', userAgent: null,
    });
    expect(parse(EXAMPLES.sonosResponse)).toMatchObject({ kind: 'response', st: 'urn:schemas-upnp-org:device:ZonePlayer:1' });
  });

  it('reads an Amazon DIAL answer and a search with headers in any case', () => {
    expect(parse(EXAMPLES.amazonResponse)).toMatchObject({ kind: 'response', server: 'Linux/4.9.77 UPnP/1.0 Amazon-Device/1.0', st: 'urn:dial-multiscreen-org:service:dial:1' });
    expect(parse(EXAMPLES.search)).toMatchObject({ kind: 'search', userAgent: 'Linux UPnP/1.0 Sonos/70.3 (ACR_2b1c)', server: null });
    expect(parse(EXAMPLES.byebye)).toMatchObject({ kind: 'notify', nt: 'upnp:rootdevice', nts: 'ssdp:byebye' });
  });

  it('accepts bare LF line ends, keeps the first of repeated headers, stops at the blank line', () => {
    const info = parse(Buffer.from('HTTP/1.0 200 OK\nSERVER: first\nserver: second\nST: a\n\nST: body\n'));
    expect(info).toMatchObject({ kind: 'response', server: 'first', st: 'a' });
  });

  it('drops control characters, keeps latin1, bounds values', () => {
    const info = parse(Buffer.concat([Buffer.from('NOTIFY * HTTP/1.1\r\nSERVER: a\x01b\x7f\xe9\r\nUSN: ', 'latin1'), Buffer.alloc(1000, 0x41), Buffer.from('\r\n\r\n')]));
    expect(info?.server).toBe('ab\u00e9');
    expect(info?.usn?.length).toBe(MAX_SSDP_VALUE);
  });

  it('returns null for other messages and bad ranges', () => {
    expect(parse(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBeNull();
    expect(parse(Buffer.from('HTTP/1.1 OK\r\n\r\n'))).toBeNull();
    expect(parse(Buffer.alloc(0))).toBeNull();
    expect(parseSsdp(EXAMPLES.search, 10, EXAMPLES.search.length)).toBeNull();
  });
});

describe('parseSsdp fuzz', () => {
  const samples = Object.values(EXAMPLES);
  it('never throws, reads only its range and bounds every value', () => {
    const mutated = fc.tuple(fc.integer({ min: 0, max: samples.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat())
      .map(([index, edits, cut]) => {
        const bytes = Buffer.from(samples[index]);
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        return bytes.subarray(0, bytes.length - (cut % bytes.length));
      });
    const random = fc.uint8Array({ maxLength: 5000 }).map((x) => Buffer.from(x));
    fc.assert(fc.property(fc.oneof(mutated, random), (bytes) => {
      const results = [0x00, 0x0a].map((fill) => {
        const buffer = Buffer.alloc(bytes.length + 80, fill);
        bytes.copy(buffer, 40);
        const info = parseSsdp(buffer, 40, bytes.length);
        if (info) for (const value of Object.values(info)) expect(String(value ?? '').length).toBeLessThanOrEqual(MAX_SSDP_VALUE);
        return JSON.stringify(info);
      });
      expect(results[0]).toBe(results[1]);
    }), { numRuns: 1000 });
  });
});
