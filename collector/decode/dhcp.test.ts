/**
 * parseDhcp: golden test against tshark's dhcp fields on every real capture that has DHCP (found with
 * tshark at test time), including the Echo Dot 2's request as amazon-0d0fb5957 / dhcpcd-5.5.6; hand-built
 * messages for the edges (option overload ignored, split options, damage); fast-check fuzzing for
 * "never throws, reads only its range".
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tsharkFields } from '../../test/helpers/decode-test-support.js';
import { readAllRecords } from '../../test/helpers/read-capture-simple.js';
import { describeShared, haveShared, REAL_CAPTURES, realCapture } from '../../test/helpers/shared.js';
import { parseDhcp, type DhcpInfo } from './dhcp.js';
import { buildDecoder, IPPROTO_UDP } from './index.js';

/** One tshark run per real capture, all at once: minutes when the whole suite shares two cores. */
const GOLDEN_TIMEOUT_MS = 300_000;

const DHCP_PORTS = new Set([67, 68]);

/** The UDP payloads on ports 67/68 of a capture, by frame number (copied). */
function dhcpPayloads(path: string): Map<number, Buffer> {
  const decoder = buildDecoder();
  const payloads = new Map<number, Buffer>();
  readAllRecords(path).forEach((record, index) => {
    const pkt = decoder.decode(record.buf, record.offset, record.capLen, record.wireLen, record.timeMs, record.linkType);
    if (pkt === null || pkt.proto !== IPPROTO_UDP || pkt.payloadLength === 0) return;
    if (!DHCP_PORTS.has(pkt.srcPort) || !DHCP_PORTS.has(pkt.dstPort)) return;
    payloads.set(index + 1, Buffer.from(pkt.payloadBuf.subarray(pkt.payloadOffset, pkt.payloadOffset + pkt.payloadLength)));
  });
  return payloads;
}

const FIELDS = ['frame.number', 'dhcp.type', 'dhcp.option.dhcp', 'dhcp.hw.type', 'dhcp.hw.len', 'dhcp.hw.mac_addr',
  'dhcp.option.hostname', 'dhcp.option.vendor_class_id', 'dhcp.option.request_list_item',
  'dhcp.option.requested_ip_address', 'dhcp.ip.client', 'dhcp.ip.your', 'dhcp.option.domain_name'];

/** What tshark says, in DhcpInfo's shape. */
async function tsharkDhcp(path: string): Promise<Map<number, DhcpInfo>> {
  const rows = await filteredFields(path, FIELDS, 'dhcp');
  const out = new Map<number, DhcpInfo>();
  for (const row of rows) {
    const first = (field: string) => row[field][0] ?? null;
    const op = Number(first('dhcp.type'));
    const ethernet = Number(first('dhcp.hw.type')) === 1 && Number(first('dhcp.hw.len')) === 6;
    const your = first('dhcp.ip.your');
    const client = first('dhcp.ip.client');
    const some = (ip: string | null) => (ip && ip !== '0.0.0.0' ? ip : null);
    out.set(Number(first('frame.number')), {
      op,
      messageType: first('dhcp.option.dhcp') === null ? null : Number(first('dhcp.option.dhcp')),
      // the first occurrence is chaddr; a client identifier (option 61) may repeat it
      clientMac: ethernet ? first('dhcp.hw.mac_addr') : null,
      hostName: first('dhcp.option.hostname'),
      vendorClass: first('dhcp.option.vendor_class_id'),
      parameterList: row['dhcp.option.request_list_item'].map(Number),
      requestedIp: first('dhcp.option.requested_ip_address'),
      clientIp: (op === 2 ? some(your) : null) ?? some(client),
      domainName: first('dhcp.option.domain_name'),
    });
  }
  return out;
}

/**
 * tsharkFields with a display filter. The helper keeps the output of a capture cut short only when
 * there is some; a truncated capture where nothing matches the filter has none, and that means no rows.
 */
async function filteredFields(path: string, fields: string[], filter: string) {
  try {
    return await tsharkFields(path, fields, ['-Y', filter]);
  } catch (err) {
    if (/cut short in the middle of a packet/.test(String((err as { stderr?: string }).stderr))) return [];
    throw err;
  }
}

describeShared('parseDhcp against tshark on the real captures', () => {
  it('agrees on every DHCP message of every capture that has one', async () => {
    const files = readdirSync(REAL_CAPTURES).filter((name) => /\.pcap(ng)?$/.test(name));
    const oracle = await Promise.all(files.map((file) => tsharkDhcp(join(REAL_CAPTURES, file))));
    const withDhcp: string[] = [];
    files.forEach((file, i) => {
      if (oracle[i].size === 0) return;
      withDhcp.push(file);
      const ours = new Map<number, DhcpInfo | null>();
      for (const [frame, payload] of dhcpPayloads(join(REAL_CAPTURES, file))) ours.set(frame, parseDhcp(payload, 0, payload.length));
      for (const [frame, expected] of oracle[i]) expect(ours.get(frame), `${file} frame ${frame}`).toEqual(expected);
      for (const [frame, info] of ours) if (info !== null) expect(oracle[i].has(frame), `${file} frame ${frame}: tshark sees no DHCP`).toBe(true);
    });
    expect(withDhcp).toContain('amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap');
    expect(withDhcp.length).toBeGreaterThanOrEqual(5);
  }, GOLDEN_TIMEOUT_MS);

  it('reads the Echo Dot 2\'s request: host name, vendor class, parameters, MAC', () => {
    const payloads = dhcpPayloads(realCapture('amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap'));
    const infos = [...payloads.values()].map((p) => parseDhcp(p, 0, p.length));
    expect(infos[0]).toEqual({
      op: 1, messageType: 3, clientMac: '50:f5:da:23:43:df', hostName: 'amazon-0d0fb5957', vendorClass: 'dhcpcd-5.5.6',
      parameterList: [1, 33, 3, 6, 15, 28, 51, 58, 59], requestedIp: '172.16.42.213', clientIp: null, domainName: null,
    });
    expect(infos.at(-1)).toMatchObject({ op: 2, messageType: 5, clientIp: '172.16.42.213', domainName: 'lan' });
  });
});

/** A BOOTP message with the cookie and the given raw option bytes. */
function message(options: number[], fields: { op?: number; htype?: number; hlen?: number; ciaddr?: number[]; yiaddr?: number[] } = {}): Buffer {
  const fixed = Buffer.alloc(240);
  fixed[0] = fields.op ?? 1;
  fixed[1] = fields.htype ?? 1;
  fixed[2] = fields.hlen ?? 6;
  Buffer.from(fields.ciaddr ?? [0, 0, 0, 0]).copy(fixed, 12);
  Buffer.from(fields.yiaddr ?? [0, 0, 0, 0]).copy(fixed, 16);
  Buffer.from([0xfc, 0x65, 0xde, 0x5f, 0x15, 0x0a]).copy(fixed, 28);
  fixed.writeUInt32BE(0x63825363, 236);
  return Buffer.concat([fixed, Buffer.from(options)]);
}
const text = (code: number, value: string) => [code, value.length, ...Buffer.from(value, 'latin1')];

describe('parseDhcp on hand-built messages', () => {
  it('reads the fields of a DISCOVER, skipping pads and unknown options', () => {
    const info = parseDhcp(message([0, 0, 53, 1, 1, 99, 2, 7, 7, ...text(12, 'amazon-1234\0'), ...text(60, 'MSFT 5.0'), 55, 3, 1, 3, 6, 50, 4, 192, 168, 1, 9, 255, 0, 0]), 0, 264 + 20);
    expect(info).toEqual({
      op: 1, messageType: 1, clientMac: 'fc:65:de:5f:15:0a', hostName: 'amazon-1234', vendorClass: 'MSFT 5.0',
      parameterList: [1, 3, 6], requestedIp: '192.168.1.9', clientIp: null, domainName: null,
    });
  });

  it('concatenates split options (RFC 3396) and bounds strings', () => {
    const long = 'x'.repeat(200);
    const info = parseDhcp(message([...text(12, long), ...text(12, long), 55, 2, 1, 3, 55, 1, 6, 255]), 0, 240 + 4 + 400 + 7 + 1);
    expect(info?.hostName?.length).toBe(255);
    expect(info?.parameterList).toEqual([1, 3, 6]);
  });

  it('a name in UTF-8 reads as UTF-8, also split inside a character (RFC 3396); other bytes as latin1', () => {
    const name = Buffer.from('Jürgen’s iPhone', 'utf8');
    // the split falls inside the three bytes of ’ (U+2019)
    const split = name.indexOf(0xe2) + 1;
    const parts = [[12, split, ...name.subarray(0, split)], [12, name.length - split, ...name.subarray(split)]].flat();
    expect(parseDhcp(message([...parts, 255]), 0, 240 + parts.length + 1)?.hostName).toBe('Jürgen’s iPhone');
    const latin1 = [12, 4, 0x4a, 0xfc, 0x72, 0x67];
    expect(parseDhcp(message([...latin1, 255]), 0, 240 + latin1.length + 1)?.hostName).toBe('Jürg');
  });

  it('takes yiaddr in a reply and ciaddr in a request; no MAC for other hardware', () => {
    expect(parseDhcp(message([255], { op: 2, yiaddr: [10, 0, 0, 5], ciaddr: [10, 0, 0, 4] }), 0, 241)?.clientIp).toBe('10.0.0.5');
    expect(parseDhcp(message([255], { op: 1, yiaddr: [10, 0, 0, 5], ciaddr: [10, 0, 0, 4] }), 0, 241)?.clientIp).toBe('10.0.0.4');
    expect(parseDhcp(message([255], { htype: 6 }), 0, 241)?.clientMac).toBeNull();
    expect(parseDhcp(message([255], { hlen: 16 }), 0, 241)?.clientMac).toBeNull();
  });

  it('ignores option overload (52) and reads a message without an end option', () => {
    expect(parseDhcp(message([52, 1, 3, 53, 1, 3]), 0, 246)).toMatchObject({ messageType: 3 });
  });

  it('returns null for non-DHCP and damaged messages', () => {
    const ok = message([53, 1, 1, 255]);
    expect(parseDhcp(ok, 0, ok.length)).not.toBeNull();
    expect(parseDhcp(ok, 0, 239)).toBeNull(); // shorter than the cookie
    const noCookie = Buffer.from(ok);
    noCookie.writeUInt32BE(0, 236);
    expect(parseDhcp(noCookie, 0, noCookie.length)).toBeNull();
    expect(parseDhcp(message([255], { op: 3 }), 0, 241)).toBeNull();
    expect(parseDhcp(message([12, 10, 65, 65]), 0, 244)).toBeNull(); // option runs past the end
    expect(parseDhcp(message([12]), 0, 241)).toBeNull(); // length byte missing
    expect(parseDhcp(ok, 5, ok.length)).toBeNull(); // range outside the buffer
    expect(parseDhcp(ok, -1, 10)).toBeNull();
  });
});

describe('parseDhcp fuzz', () => {
  const real: Buffer[] = [];
  if (haveShared()) {
    for (const file of ['amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap', 'teams_dns-cname-sni_ndpi.pcap', 'iphone_dns-cname-tls13-ipv6_ndpi.pcap']) {
      real.push(...dhcpPayloads(realCapture(file)).values());
    }
  }
  real.push(message([53, 1, 1, ...text(12, 'host'), 55, 2, 1, 3, 255]));

  it('never throws and reads only its range (random bytes and mutated real messages)', () => {
    const mutated = fc.tuple(fc.integer({ min: 0, max: real.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat())
      .map(([index, edits, cut]) => {
        const bytes = Buffer.from(real[index]);
        for (const [at, value] of edits) bytes[240 + (at % Math.max(1, bytes.length - 240))] = value;
        return bytes.subarray(0, bytes.length - (cut % 3 === 0 ? cut % (bytes.length + 1) : 0));
      });
    const random = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a));
    fc.assert(fc.property(fc.oneof(mutated, random), (bytes) => {
      const results = [0x00, 0xff].map((fill) => {
        const buffer = Buffer.alloc(bytes.length + 80, fill);
        bytes.copy(buffer, 40);
        const info = parseDhcp(buffer, 40, bytes.length);
        if (info) for (const value of [info.hostName, info.vendorClass, info.domainName]) expect((value ?? '').length).toBeLessThanOrEqual(255);
        return JSON.stringify(info);
      });
      expect(results[0]).toBe(results[1]);
    }), { numRuns: 2000 });
  });
});
