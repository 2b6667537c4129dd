/**
 * Hosts without an address yet: DHCP goes from 0.0.0.0:68 to 255.255.255.255:67 for every one of them, so
 * the 5-tuple alone made two speakers booting within a minute one flow, the first one's, and the second
 * one's DHCP traffic counted as the first's. The real DHCP Discover and Request of the Echo Dot 2's boot
 * capture, sent once more by a second host (its Ethernet source and the DHCP client hardware address
 * rewritten); tshark's frame bytes per Ethernet source are the expected values.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readAllRecords, writePcapSimple } from './helpers/read-capture-simple.js';
import { replayReport } from './helpers/replay.js';
import { describeShared, realCapture } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';

const SECOND = 'f0:18:98:12:34:56';

describeShared('DHCP from hosts without an address', () => {
  it('each host\'s DHCP from 0.0.0.0 is its own flow, with its own bytes (tshark per Ethernet source)', async () => {
    const records = readAllRecords(realCapture('amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap'));
    const frames = records.map((r) => ({ timeMs: r.timeMs, bytes: Buffer.from(r.buf.subarray(r.offset, r.offset + r.capLen)) }));
    // the Discover and Request from 0.0.0.0 (frames 9 and 10, tshark -Y "ip.src==0.0.0.0")
    const dhcp = frames.filter((f) => f.bytes.readUInt16BE(12) === 0x0800 && f.bytes.readUInt32BE(26) === 0 && f.bytes[23] === 17);
    expect(dhcp).toHaveLength(2);
    const mac = Buffer.from(SECOND.replaceAll(':', ''), 'hex');
    const copies = dhcp.map((f) => {
      const bytes = Buffer.from(f.bytes);
      mac.copy(bytes, 6);
      // BOOTP chaddr: after the IP header, the UDP header and 28 bytes of BOOTP
      mac.copy(bytes, 14 + (bytes[14] & 0x0f) * 4 + 8 + 28);
      return { timeMs: f.timeMs + 150, bytes };
    });
    const all = [...frames, ...copies].sort((a, b) => a.timeMs - b.timeMs);
    const file = join(tempDir('earshot-dhcp-'), 'two-hosts.pcap');
    writeFileSync(file, writePcapSimple(1, all));

    const want = new Map<string, number>();
    const lines = execFileSync('tshark', ['-r', file, '-Y', 'ip.src == 0.0.0.0 && udp.srcport == 68', '-T', 'fields', '-e', 'eth.src', '-e', 'frame.len'], { encoding: 'utf8' });
    for (const line of lines.trim().split('\n')) {
      const [src, len] = line.split('\t');
      want.set(src, (want.get(src) ?? 0) + Number(len));
    }
    expect(want.size).toBe(2);
    expect(want.has(SECOND)).toBe(true);

    const report = await replayReport(file);
    const unaddressed = report.flows.filter((f) => f.client === '0.0.0.0');
    const got = new Map<string, number>();
    for (const f of unaddressed) got.set(String(f.device), (got.get(String(f.device)) ?? 0) + f.bytesUp);
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
    expect(unaddressed).toHaveLength(2);
  });
});
