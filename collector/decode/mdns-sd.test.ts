/**
 * parseMdns: golden test against tshark's mDNS dissection (JSON: questions, PTR, SRV, TXT, A, AAAA of
 * every section) on every real capture that has mDNS, and on a capture of speaker announcements written
 * here (Google Cast, HomePod AirPlay, Sonos, Amazon) so those are checked against tshark too; then the
 * edges on hand-built messages, and fast-check fuzzing for "never throws, reads only its range".
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classicPcap } from '../../test/helpers/capture-files.js';
import { ethernetFrame, ipv4Packet, tshark, udpDatagram } from '../../test/helpers/decode-test-support.js';
import { readAllRecords } from '../../test/helpers/read-capture-simple.js';
import { describeShared, haveShared, REAL_CAPTURES, realCapture } from '../../test/helpers/shared.js';
import { buildDecoder, IPPROTO_UDP } from './index.js';
import { parseMdns, serviceTypeOf, type MdnsInfo } from './mdns-sd.js';

/** One tshark run per real capture, all at once: minutes when the whole suite shares two cores. */
const GOLDEN_TIMEOUT_MS = 300_000;

type Facts = Omit<MdnsInfo, 'complete'>;

/** UDP payloads to or from port 5353, by frame number (copied). */
function mdnsPayloads(path: string): Map<number, Buffer> {
  const decoder = buildDecoder();
  const payloads = new Map<number, Buffer>();
  readAllRecords(path).forEach((record, index) => {
    const pkt = decoder.decode(record.buf, record.offset, record.capLen, record.wireLen, record.timeMs, record.linkType);
    if (pkt === null || pkt.proto !== IPPROTO_UDP || pkt.payloadLength === 0) return;
    if (pkt.srcPort !== 5353 && pkt.dstPort !== 5353) return;
    payloads.set(index + 1, Buffer.from(pkt.payloadBuf.subarray(pkt.payloadOffset, pkt.payloadOffset + pkt.payloadLength)));
  });
  return payloads;
}

const list = (value: unknown): unknown[] => (value === undefined || value === null ? [] : Array.isArray(value) ? value : [value]);
const rootless = (name: string) => (name === '<Root>' ? '' : name);

/** TXT strings as DNS-SD entries: lower-case keys, first wins, no '=' means ''. */
function txtEntries(strings: string[]): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const s of strings) {
    const equals = s.indexOf('=');
    const key = (equals < 0 ? s : s.slice(0, equals)).toLowerCase();
    if (key === '' || key in entries) continue;
    entries[key] = equals < 0 ? '' : s.slice(equals + 1);
  }
  return entries;
}

/** The facts of one mDNS layer of tshark's JSON. */
function factsFromTshark(layer: Record<string, unknown>): Facts {
  const flags = layer['dns.flags_tree'] as Record<string, string>;
  const facts: Facts = { isResponse: flags['dns.flags.response'] === '1', questions: [], services: [], instances: [], srv: [], hosts: [], txt: [] };
  for (const query of Object.values((layer.Queries ?? {}) as Record<string, unknown>).flatMap(list) as Array<Record<string, string>>) {
    const name = rootless(query['dns.qry.name']);
    if (!facts.questions.includes(name)) facts.questions.push(name);
  }
  for (const section of ['Answers', 'Authoritative nameservers', 'Additional records']) {
    for (const [key, value] of Object.entries((layer[section] ?? {}) as Record<string, unknown>)) {
      for (const rr of list(value) as Array<Record<string, unknown>>) {
        const type = rr['dns.resp.type'];
        if (typeof type !== 'string') continue; // NSEC: its type bitmap repeats the key
        // SRV records carry no dns.resp.name in tshark's JSON: the owner starts the record's summary
        const owner = rootless(typeof rr['dns.resp.name'] === 'string' ? rr['dns.resp.name'] as string : key.split(': type ')[0]);
        if (type === '12' && typeof rr['dns.ptr.domain_name'] === 'string') {
          const target = rr['dns.ptr.domain_name'] as string;
          const service = /^(?:[^.]+\._sub\.)?(_[^.]+\._(?:tcp|udp)\..+)$/i.exec(owner)?.[1];
          if (/^_services\._dns-sd\._udp\./i.test(owner)) {
            if (!facts.services.includes(target)) facts.services.push(target);
          } else if (service) {
            if (!facts.services.includes(service)) facts.services.push(service);
            if (target.toLowerCase().endsWith(`.${service.toLowerCase()}`)) facts.instances.push({ instance: target, service });
          }
        } else if (type === '33' && typeof rr['dns.srv.target'] === 'string') {
          facts.srv.push({ instance: owner, target: rr['dns.srv.target'] as string, port: Number(rr['dns.srv.port']) });
        } else if (type === '16' && rr['dns.txt'] !== undefined) {
          const entries = txtEntries(list(rr['dns.txt']) as string[]);
          if (Object.keys(entries).length > 0) facts.txt.push({ owner, entries });
        } else if (type === '1' && typeof rr['dns.a'] === 'string') {
          facts.hosts.push({ name: owner, address: rr['dns.a'] as string });
        } else if (type === '28' && typeof rr['dns.aaaa'] === 'string') {
          facts.hosts.push({ name: owner, address: rr['dns.aaaa'] as string });
        }
      }
    }
  }
  return facts;
}

/** tshark's mDNS facts per frame (a capture cut short with no mDNS at all gives none). */
async function tsharkMdns(path: string): Promise<Map<number, Facts>> {
  let out: string;
  try {
    out = await tshark(['-r', path, '-Y', 'mdns', '-T', 'json', '-J', 'frame mdns', '--no-duplicate-keys']);
  } catch (err) {
    if (/cut short in the middle of a packet/.test(String((err as { stderr?: string }).stderr))) return new Map();
    throw err;
  }
  const packets = JSON.parse(out || '[]') as Array<{ _source: { layers: Record<string, unknown> } }>;
  const facts = new Map<number, Facts>();
  for (const packet of packets) {
    const frame = Number((packet._source.layers.frame as Record<string, string>)['frame.number']);
    const layer = list(packet._source.layers.mdns)[0] as Record<string, unknown> | undefined;
    if (layer) facts.set(frame, factsFromTshark(layer));
  }
  return facts;
}

/** Lists in a canonical order, so record order (which JSON object keys do not keep) does not matter. */
function canonical(facts: Facts | MdnsInfo | null): unknown {
  if (facts === null) return null;
  const sorted = <T>(items: T[]) => items.map((x) => JSON.stringify(x, Object.keys(x as object).sort())).sort();
  const txt = facts.txt.map((t) => ({ owner: t.owner, entries: Object.fromEntries(Object.entries(t.entries).sort()) }));
  return {
    isResponse: facts.isResponse, questions: [...facts.questions].sort(), services: [...facts.services].sort(),
    instances: sorted(facts.instances), srv: sorted(facts.srv), hosts: sorted(facts.hosts), txt: sorted(txt),
  };
}

/** Compares parseMdns with tshark on every mDNS frame of `path`; returns how many frames matched. */
async function compareWithTshark(path: string, label: string): Promise<number> {
  const oracle = await tsharkMdns(path);
  const payloads = mdnsPayloads(path);
  for (const [frame, expected] of oracle) {
    const payload = payloads.get(frame);
    expect(payload, `${label} frame ${frame}: not decoded as UDP 5353`).toBeDefined();
    const info = parseMdns(payload as Buffer, 0, (payload as Buffer).length);
    expect(info?.complete, `${label} frame ${frame}`).toBe(true);
    expect(canonical(info), `${label} frame ${frame}`).toEqual(canonical(expected));
  }
  return oracle.size;
}

// ---- hand-built messages ----

interface Rr { owner: string; type: number; data: Buffer; section?: 'an' | 'ns' | 'ar' }
const name = (text: string) => Buffer.concat([...text.split('.').filter(Boolean).map((label) => {
  const bytes = Buffer.from(label, 'utf8');
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}), Buffer.from([0])]);
const ptr = (owner: string, target: string): Rr => ({ owner, type: 12, data: name(target) });
const srv = (owner: string, target: string, port: number): Rr => ({ owner, type: 33, data: Buffer.concat([Buffer.from([0, 0, 0, 0, port >> 8, port & 255]), name(target)]) });
const txt = (owner: string, strings: string[]): Rr => ({ owner, type: 16, data: Buffer.concat(strings.map((s) => { const b = Buffer.from(s, 'utf8'); return Buffer.concat([Buffer.from([b.length]), b]); })) });
const a = (owner: string, address: string): Rr => ({ owner, type: 1, data: Buffer.from(address.split('.').map(Number)), section: 'ar' });

function mdnsMessage(response: boolean, questions: string[], records: Rr[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(response ? 0x8400 : 0, 2);
  header.writeUInt16BE(questions.length, 4);
  const bySection = (s: string) => records.filter((r) => (r.section ?? 'an') === s);
  header.writeUInt16BE(bySection('an').length, 6);
  header.writeUInt16BE(bySection('ns').length, 8);
  header.writeUInt16BE(bySection('ar').length, 10);
  const body: Buffer[] = questions.map((q) => Buffer.concat([name(q), Buffer.from([0, 12, 0, 1])]));
  for (const section of ['an', 'ns', 'ar']) {
    for (const r of bySection(section)) {
      const fixed = Buffer.alloc(10);
      fixed.writeUInt16BE(r.type, 0);
      fixed.writeUInt16BE(0x8001, 2); // class IN with the cache-flush bit
      fixed.writeUInt32BE(120, 4);
      fixed.writeUInt16BE(r.data.length, 8);
      body.push(name(r.owner), fixed, r.data);
    }
  }
  return Buffer.concat([header, ...body]);
}

/** Announcements like the speakers make (written for these tests from the formats, not captured). */
const SPEAKERS: Record<string, Buffer> = {
  googleCast: mdnsMessage(true, [], [
    ptr('_services._dns-sd._udp.local', '_googlecast._tcp.local'),
    ptr('_googlecast._tcp.local', 'Google-Home-Mini-3f1c._googlecast._tcp.local'),
    ptr('_CC1AD845._sub._googlecast._tcp.local', 'Google-Home-Mini-3f1c._googlecast._tcp.local'),
    srv('Google-Home-Mini-3f1c._googlecast._tcp.local', '3f1c2a9b-1234.local', 8009),
    txt('Google-Home-Mini-3f1c._googlecast._tcp.local', ['id=3f1c2a9b', 'md=Google Home Mini', 'fn=Kitchen speaker', 'ca=199172', 'st=0', 'rs=']),
    a('3f1c2a9b-1234.local', '192.168.1.40'),
  ]),
  homePod: mdnsMessage(true, [], [
    ptr('_airplay._tcp.local', 'Living Room._airplay._tcp.local'),
    srv('Living Room._airplay._tcp.local', 'Living-Room.local', 7000),
    txt('Living Room._airplay._tcp.local', ['model=AudioAccessory1,1', 'features=0x4A7FFFF7,0xE', 'srcvers=366.0', 'Model=ignored']),
    { owner: 'Living-Room.local', type: 28, data: Buffer.from('fe800000000000000c2a3bfffe4d5e6f', 'hex'), section: 'ar' },
  ]),
  sonos: mdnsMessage(true, [], [
    ptr('_sonos._tcp.local', 'RINCON_347E5CFFA26E01400._sonos._tcp.local'),
    srv('RINCON_347E5CFFA26E01400._sonos._tcp.local', 'Sonos-347E5CFFA26E.local', 1443),
    txt('RINCON_347E5CFFA26E01400._sonos._tcp.local', ['info=/api/v1/players/RINCON_347E5CFFA26E01400/info', 'vers=3', 'protovers=1.24.1']),
    a('Sonos-347E5CFFA26E.local', '192.168.1.70'),
  ]),
  amazon: mdnsMessage(true, [], [
    ptr('_amzn-wplay._tcp.local', 'amzn.dmgr:1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E._amzn-wplay._tcp.local'),
    txt('amzn.dmgr:1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E._amzn-wplay._tcp.local', ['s=0', 'at=Echo Dot', 'n=Echo Dot', 'tr=tcp', 'sp=4201', 'pk=a1b2c3', 'v=1']),
  ]),
  castQuery: mdnsMessage(false, ['_googlecast._tcp.local', '_amzn-wplay._tcp.local'], []),
};

describeShared('parseMdns against tshark', () => {
  it('agrees on PTR, SRV, TXT, A, AAAA and questions of every mDNS message in the real captures', async () => {
    const files = readdirSync(REAL_CAPTURES).filter((file) => /\.pcap(ng)?$/.test(file));
    const counts = await Promise.all(files.map((file) => compareWithTshark(join(REAL_CAPTURES, file), file)));
    const withMdns = files.filter((_, i) => counts[i] > 0);
    expect(withMdns).toContain('amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap');
    expect(withMdns.length).toBeGreaterThanOrEqual(7);
  }, GOLDEN_TIMEOUT_MS);

  it('agrees on the speaker announcements written here', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'earshot-mdns-'));
    try {
      const path = join(dir, 'speakers.pcap');
      const frames = Object.values(SPEAKERS).map((payload, i) => ({
        seconds: 1_700_000_000 + i, fraction: 0,
        data: ethernetFrame(0x0800, ipv4Packet('192.168.1.40', '224.0.0.251', 17, udpDatagram(5353, 5353, payload))),
      }));
      writeFileSync(path, classicPcap(frames));
      expect(await compareWithTshark(path, 'speakers.pcap')).toBe(frames.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseMdns on speaker announcements', () => {
  const parse = (payload: Buffer) => parseMdns(payload, 0, payload.length);

  it('Google Cast: service type, instance (also through a subtype), SRV, model and friendly name', () => {
    const info = parse(SPEAKERS.googleCast);
    expect(info).toMatchObject({
      isResponse: true, complete: true, questions: [],
      services: ['_googlecast._tcp.local'],
      instances: [
        { instance: 'Google-Home-Mini-3f1c._googlecast._tcp.local', service: '_googlecast._tcp.local' },
        { instance: 'Google-Home-Mini-3f1c._googlecast._tcp.local', service: '_googlecast._tcp.local' },
      ],
      srv: [{ instance: 'Google-Home-Mini-3f1c._googlecast._tcp.local', target: '3f1c2a9b-1234.local', port: 8009 }],
      hosts: [{ name: '3f1c2a9b-1234.local', address: '192.168.1.40' }],
    });
    expect({ ...info?.txt[0].entries }).toEqual({ id: '3f1c2a9b', md: 'Google Home Mini', fn: 'Kitchen speaker', ca: '199172', st: '0', rs: '' });
  });

  it('HomePod: AirPlay model (first of a repeated key, keys case-insensitive) and an AAAA host', () => {
    const info = parse(SPEAKERS.homePod);
    expect(info?.txt[0].entries.model).toBe('AudioAccessory1,1');
    expect(info?.hosts).toEqual([{ name: 'Living-Room.local', address: 'fe80::c2a:3bff:fe4d:5e6f' }]);
  });

  it('Sonos and Amazon services', () => {
    expect(parse(SPEAKERS.sonos)?.instances[0]).toEqual({ instance: 'RINCON_347E5CFFA26E01400._sonos._tcp.local', service: '_sonos._tcp.local' });
    expect(parse(SPEAKERS.amazon)).toMatchObject({ services: ['_amzn-wplay._tcp.local'] });
    expect(parse(SPEAKERS.amazon)?.txt[0].entries.n).toBe('Echo Dot');
  });

  it('queries: the service types asked for', () => {
    expect(parse(SPEAKERS.castQuery)).toMatchObject({ isResponse: false, questions: ['_googlecast._tcp.local', '_amzn-wplay._tcp.local'], services: [] });
  });

  it('follows compression pointers in owners and targets', () => {
    // question "_googlecast._tcp.local" at 12; the answer's owner points to it; the target reuses its tail
    const question = Buffer.concat([name('_googlecast._tcp.local'), Buffer.from([0, 12, 0, 1])]);
    const target = Buffer.concat([Buffer.from([4]), Buffer.from('Mini'), Buffer.from([0xc0, 12])]);
    const rr = Buffer.concat([Buffer.from([0xc0, 12, 0, 12, 0, 1, 0, 0, 0, 120, 0, target.length]), target]);
    const header = Buffer.from([0, 0, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0]);
    expect(parse(Buffer.concat([header, question, rr]))?.instances).toEqual([{ instance: 'Mini._googlecast._tcp.local', service: '_googlecast._tcp.local' }]);
  });

  it('ignores reverse-lookup PTRs, TXT strings without a key, and keeps "__proto__" a plain key', () => {
    const info = parse(mdnsMessage(true, [], [ptr('1.1.168.192.in-addr.arpa', 'host.local'), txt('x._http._tcp.local', ['=v', '__proto__=p', ''])]));
    expect(info?.services).toEqual([]);
    expect(Object.keys(info?.txt[0].entries ?? {})).toEqual(['__proto__']);
  });

  it('serviceTypeOf names service types and subtypes only', () => {
    expect(serviceTypeOf('_airplay._tcp.local')).toBe('_airplay._tcp.local');
    expect(serviceTypeOf('_x._sub._airplay._tcp.local')).toBe('_airplay._tcp.local');
    expect(serviceTypeOf('Name._airplay._tcp.local')).toBeNull();
    expect(serviceTypeOf('_tcp.local')).toBeNull();
    expect(serviceTypeOf('_airplay._tcp')).toBeNull();
  });

  it('reports what came before damage, and null for non-messages', () => {
    const good = SPEAKERS.googleCast;
    const cut = parse(good.subarray(0, good.length - 3));
    expect(cut).toMatchObject({ complete: false, services: ['_googlecast._tcp.local'] });
    expect(parse(Buffer.alloc(11))).toBeNull();
    const update = Buffer.from(good);
    update[2] = 0x28; // opcode 5 (UPDATE)
    expect(parse(update)).toBeNull();
    expect(parseMdns(good, 4, good.length)).toBeNull(); // range past the buffer
  });
});

describe('parseMdns fuzz', () => {
  const real: Buffer[] = [...Object.values(SPEAKERS)];
  if (haveShared()) {
    for (const file of ['iphone_dns-cname-tls13-ipv6_ndpi.pcap', 'tls-cert-too-long_tls13-dns-cname_ndpi.pcap', 'wikipedia_dns-cname-ipv6_zeek.pcap']) {
      real.push(...mdnsPayloads(realCapture(file)).values());
    }
  }

  it('never throws and reads only its range (random bytes and mutated messages)', () => {
    const mutated = fc.tuple(fc.integer({ min: 0, max: real.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat())
      .map(([index, edits, cut]) => {
        const bytes = Buffer.from(real[index]);
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        return bytes.subarray(0, bytes.length - (cut % 3 === 0 ? cut % (bytes.length + 1) : 0));
      });
    const random = fc.uint8Array({ maxLength: 600 }).map((x) => Buffer.from(x));
    fc.assert(fc.property(fc.oneof(mutated, random), (bytes) => {
      const results = [0x00, 0xc0].map((fill) => {
        const buffer = Buffer.alloc(bytes.length + 80, fill);
        bytes.copy(buffer, 40);
        const info = parseMdns(buffer, 40, bytes.length);
        if (info) for (const items of [info.questions, info.services, info.instances, info.srv, info.hosts, info.txt]) expect(items.length).toBeLessThanOrEqual(256);
        return JSON.stringify(info);
      });
      expect(results[0]).toBe(results[1]);
    }), { numRuns: 2000 });
  });
});
