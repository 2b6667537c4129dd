/**
 * DNS over TCP when the server's stream does not arrive in order. No real capture has such a stream,
 * so these captures are made from a real one: the DNS-over-TCP response for atlas-ui.ripe.net (616
 * bytes over IPv6, an A record and its signature) in the Zeek capture dns-edns-ecs_ipv6-frag_zeek.pcap,
 * cut into three segments and sent in order, with retransmissions
 * and overlaps, out of order, and with a segment missing. tshark reads each file as the oracle (with
 * tcp.reassemble_out_of_order for the out-of-order one, which tshark 4.0 leaves off by default);
 * earshot's report must hold the same answers, once each.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { classicPcap } from './helpers/capture-files.js';
import { ethernetFrame, ipv6Packet, tcpSegment } from './helpers/decode-test-support.js';
import { replayReport } from './helpers/replay.js';
import { describeShared, haveShared, realCapture } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { tsharkDnsAnswers } from './helpers/tshark.js';

const TCP_SYN = 0x02;
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;
const SERVER_ISN = 7_000_000;
const CLIENT_ISN = 3_000_000;

/** The real response: its addresses, ports and payload. */
function realResponse() {
  const out = execFileSync('tshark', ['-r', realCapture('dns-edns-ecs_ipv6-frag_zeek.pcap'), '-Y', 'tcp.srcport == 53 && dns.qry.name == "atlas-ui.ripe.net"',
    '-T', 'fields', '-E', 'separator=\t', '-e', 'ipv6.src', '-e', 'ipv6.dst', '-e', 'tcp.dstport', '-e', 'tcp.payload'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [server, client, clientPort, hex] = out.trim().split('\n')[0].split('\t');
  return { server, client, clientPort: Number(clientPort), payload: Buffer.from(hex.replace(/:/g, ''), 'hex') };
}

type Piece = [from: number, to: number];

/**
 * A capture of one DNS-over-TCP connection: the handshake, then the server's payload bytes `pieces`
 * (offsets into the response), one segment each, in the order given.
 */
function connection(response: ReturnType<typeof realResponse>, pieces: Piece[]): Buffer {
  const { server, client, clientPort, payload } = response;
  const fromClient = (seq: number, flags: number) => ipv6Packet(client, server, 6, tcpSegment(clientPort, 53, seq, flags, Buffer.alloc(0)));
  const fromServer = (seq: number, flags: number, data: Buffer) => ipv6Packet(server, client, 6, tcpSegment(53, clientPort, seq, flags, data));
  const packets = [
    fromClient(CLIENT_ISN, TCP_SYN),
    fromServer(SERVER_ISN, TCP_SYN | TCP_ACK, Buffer.alloc(0)),
    fromClient(CLIENT_ISN + 1, TCP_ACK),
    ...pieces.map(([from, to]) => fromServer(SERVER_ISN + 1 + from, TCP_ACK | TCP_PSH, payload.subarray(from, to))),
  ];
  return classicPcap(packets.map((ip, i) => ({ seconds: 1_700_000_000, fraction: i * 1000, data: ethernetFrame(0x86dd, ip) })));
}

const answers = (report: Report) => report.dns.map((a) => `${a.name} ${a.type} ${a.data} ${a.ttl}`).sort();

describeShared('DNS over TCP: the server stream in sequence order, against tshark', () => {
  const dir = haveShared() ? tempDir('earshot-dns-tcp-') : '';
  const response = haveShared() ? realResponse() : null;
  const cases: Array<{ name: string; pieces: (end: number) => Piece[]; tsharkOptions?: string[]; lost?: number }> = [
    // the A record lies at bytes 37-52 of the stream: the first cut goes through its type, the second
    // through its address
    { name: 'in order', pieces: (end) => [[0, 40], [40, 50], [50, end]] },
    {
      name: 'with retransmissions and overlapping segments',
      pieces: (end) => [[0, 40], [40, 50], [0, 40], [30, 45], [50, end], [50, end], [0, end]],
    },
    {
      name: 'out of order',
      pieces: (end) => [[0, 40], [50, end], [40, 50]],
      tsharkOptions: ['-o', 'tcp.reassemble_out_of_order:TRUE'],
    },
    { name: 'with the middle segment missing', pieces: (end) => [[0, 40], [50, end]] },
  ];

  it('has the response to cut', () => {
    expect(response?.payload.length).toBe(616);
  });

  for (const c of cases) {
    it(`${c.name}: the answers tshark reads, once each`, async () => {
      const file = join(dir, `${c.name.replace(/\W+/g, '-')}.pcap`);
      const pieces = c.pieces(response!.payload.length);
      writeFileSync(file, connection(response!, pieces));
      const expected = tsharkDnsAnswers(file, c.tsharkOptions);
      const report = await replayReport(file);
      expect(answers(report)).toEqual(expected);
      if (c.name === 'with the middle segment missing') {
        expect(expected).toEqual([]);
      } else {
        // the whole response was there: every answer of it, as in the plain in-order stream
        const inOrder = join(dir, 'in-order.pcap');
        expect(expected).toEqual(tsharkDnsAnswers(inOrder));
        expect(expected).toEqual(['atlas-ui.ripe.net A 193.0.6.158 21600']);
      }
      expect(report.stats.dnsMessages).toBe(c.name === 'with the middle segment missing' ? 0 : 1);
    });
  }

  it('gives a stream up, counted, when more segments wait behind a gap than it keeps', async () => {
    // the first piece never comes; 20 small ones after it wait until the bound is passed
    const pieces: Piece[] = Array.from({ length: 20 }, (_, i) => [100 + i * 20, 120 + i * 20] as Piece);
    const file = join(dir, 'gap.pcap');
    writeFileSync(file, connection(response!, pieces));
    const report = await replayReport(file);
    expect(tsharkDnsAnswers(file)).toEqual([]);
    expect(report.dns).toEqual([]);
    expect(report.stats.dnsStreamsLost).toBe(1);
  });
});
