/**
 * `device` points for a device whose traffic stays on one connection it opened before (found by an audit):
 * the inventory notes a device at a flow's start, a name or an announcement, not at each packet, so a
 * speaker that only kept its long-lived connection got one `device` point and then none, and the
 * dashboards' panels that read `device` (Overview's assistants, the Fleet's) missed it. Real influxd; the
 * capture is made here: one TCP connection, a packet each way every 10 s for five minutes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { TCP_ACK, TCP_PSH, TCP_SYN } from '../collector/decode/packet.js';
import { classicPcap, type SyntheticPacket } from './helpers/capture-files.js';
import { runCli } from './helpers/cli.js';
import { ipv4Packet, tcpSegment, udpDatagram } from './helpers/decode-test-support.js';
import { macBytes } from './helpers/hygiene-capture.js';
import { describeInflux, useInfluxd } from './helpers/influxd.js';
import { tempDir } from './helpers/temp.js';

const SPEAKER = '68:db:f5:12:34:56';
const MINUTES = 5;
const ROUTER = macBytes('02:00:00:00:00:01');
const eth = (src: Buffer, dst: Buffer, ip: Buffer) => Buffer.concat([dst, src, Buffer.from([8, 0]), ip]);

/** Minute-aligned, ten minutes ago (every point within the raw retention), and the speaker's SYN then. */
function speakerStart(): { t0: number; me: Buffer; packets: SyntheticPacket[] } {
  const t0 = Math.floor(Date.now() / 60_000) * 60 - 600;
  const me = macBytes(SPEAKER);
  return { t0, me, packets: [{ seconds: t0, fraction: 0, data: eth(me, ROUTER, ipv4Packet('192.168.1.20', '52.94.240.10', 6, tcpSegment(40000, 443, 1, TCP_SYN, Buffer.alloc(0)))) }] };
}

/** Writes `packets`, replays them into a new database and returns the speaker's `device` rows and their minutes from t0. */
async function speakerPoints(server: ReturnType<typeof useInfluxd>, capture: string, db: string, t0: number, packets: SyntheticPacket[]) {
  writeFileSync(capture, classicPcap(packets));
  const r = await runCli(['replay', capture, '--format', 'json', '-o', '/dev/null', '--influx-url', server.url, '--influx-db', db, '--influx-device-interval', '60']);
  expect(r.code, r.stderr).toBe(0);
  const rows = await server.rows(db, `SELECT "last_seen_ms" FROM "device" WHERE "device" = '${SPEAKER}'`);
  return { rows, minutes: [...new Set(rows.map((row) => Math.floor(Number(row.time) / 60_000) - t0 / 60))].sort((a, b) => a - b) };
}

describeInflux('device points of a device on one long-lived connection (real influxd)', () => {
  const server = useInfluxd();

  it('come every device interval while its packets do, with the time of its traffic', async () => {
    const dir = tempDir('earshot-device-points-');
    const capture = join(dir, 'long-lived.pcap');
    const { t0, me, packets } = speakerStart();
    for (let s = 10; s < MINUTES * 60; s += 10) {
      packets.push({ seconds: t0 + s, fraction: 0, data: eth(me, ROUTER, ipv4Packet('192.168.1.20', '52.94.240.10', 6, tcpSegment(40000, 443, 1 + s, TCP_PSH | TCP_ACK, Buffer.alloc(200)))) });
      packets.push({ seconds: t0 + s, fraction: 500_000, data: eth(ROUTER, me, ipv4Packet('52.94.240.10', '192.168.1.20', 6, tcpSegment(443, 40000, 1 + s, TCP_PSH | TCP_ACK, Buffer.alloc(100)))) });
    }
    const { rows, minutes } = await speakerPoints(server, capture, `devpoints${process.pid}`, t0, packets);
    // a point at each minute's end (stamped with the next minute's start) while its packets come: minutes
    // 1 to 4 (before: minute 1 only, the one its connection started in), each saying when it was last seen
    expect(minutes).toEqual([1, 2, 3, 4]);
    const lastSeen = rows.map((row) => Number(row.last_seen_ms)).sort((a, b) => a - b);
    // its latest packet's time, to the millisecond (the reply at t0 + 290.5 s): not the collector's clock when
    // the traffic was taken, which a paced replay or a live capture moves with wall time
    expect(lastSeen.at(-1)).toBe((t0 + MINUTES * 60 - 10) * 1000 + 500);
  }, 60_000);

  it('still come under a flood of forged MACs with traffic in the same minutes (first come, first kept, was 4,096 a minute)', async () => {
    const dir = tempDir('earshot-device-points-flood-');
    const capture = join(dir, 'flooded.pcap');
    const { t0, me, packets } = speakerStart();
    const FORGED = 5000;
    for (let minute = 0; minute < MINUTES; minute++) {
      // at the start of each minute, 5,000 hosts that exist for one datagram each (a new MAC and address)
      for (let i = 0; i < FORGED; i++) {
        const n = minute * FORGED + i;
        const mac = macBytes(`02:aa:00:${((n >> 16) & 0xff).toString(16).padStart(2, '0')}:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`);
        const ip = `10.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${n & 0xff}`;
        packets.push({ seconds: t0 + minute * 60 + 1, fraction: i * 100, data: eth(mac, ROUTER, ipv4Packet(ip, '52.94.240.99', 17, udpDatagram(1234, 9999, Buffer.alloc(20)))) });
      }
      // the speaker, later in the minute, on its connection
      for (const s of [30, 45]) {
        packets.push({ seconds: t0 + minute * 60 + s, fraction: 0, data: eth(me, ROUTER, ipv4Packet('192.168.1.20', '52.94.240.10', 6, tcpSegment(40000, 443, 1 + minute * 60 + s, TCP_PSH | TCP_ACK, Buffer.alloc(200)))) });
      }
    }
    const { minutes } = await speakerPoints(server, capture, `devflood${process.pid}`, t0, packets);
    // a point at the end of each minute its packets came in (the last one's at the end of the capture)
    expect(minutes).toEqual([1, 2, 3, 4]);
  }, 60_000);
});
