/**
 * A LAN flow counts for both its devices. The Northeastern Echo Dot 3 capture has four Echos talking to
 * one another (TCP 55443, UDP 55444); the Echo at .113 only ever answered a connection of .112's, and its
 * card said "0 B up, 0 B down in total". Expected values come from tshark: each device's TCP and UDP frame
 * bytes with its MAC as the source (up) and as the destination (down); a flow's `peer` sent frames of that
 * conversation from its MAC.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, useChromium } from './helpers/browser.js';
import { startCollect, type CollectRun } from './helpers/collect.js';
import { answeredLanFlows, tsharkLanAnswered } from './helpers/influx-sums.js';
import { replayReport } from './helpers/replay.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { flowKey, tshark } from './helpers/tshark.js';
import { untilValue } from './helpers/wait.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
/** The Echo that only answered (tshark: its frames all go to 192.168.12.112 from TCP port 55443). */
const ANSWERED_ONLY = '68:db:f5:b9:5d:01';

interface Frame { src: string; dst: string; key: string; len: number }

/** TCP and UDP frames as earshot counts them (a damaged TCP header is skipped), with their conversation. */
function frames(): Frame[] {
  const out = tshark(['-r', CAPTURE, '-Y', '(tcp && tcp.hdr_len >= 20) || udp', '-T', 'fields', '-E', 'separator=\t',
    '-e', 'eth.src', '-e', 'eth.dst', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', 'udp.srcport', '-e', 'udp.dstport', '-e', 'frame.len']);
  return out.split('\n').filter(Boolean).map((line) => {
    const [src, dst, ipSrc, ipDst, tcpSrc, tcpDst, udpSrc, udpDst, len] = line.split('\t');
    const key = tcpSrc ? flowKey('tcp', ipSrc, Number(tcpSrc), ipDst, Number(tcpDst)) : flowKey('udp', ipSrc, Number(udpSrc), ipDst, Number(udpDst));
    return { src, dst, key, len: Number(len) };
  });
}

describe('a LAN flow counts for both its devices', () => {
  const all = frames();
  const sent = (mac: string) => all.filter((f) => f.src === mac).reduce((n, f) => n + f.len, 0);
  const received = (mac: string) => all.filter((f) => f.dst === mac).reduce((n, f) => n + f.len, 0);

  it('each device\'s bytes are what tshark shows its MAC sending and receiving, the Echo that only answered too', async () => {
    const report = await replayReport(CAPTURE);
    expect(report.devices).toHaveLength(4);
    for (const d of report.devices) expect({ mac: d.mac, up: d.bytesUp, down: d.bytesDown }).toEqual({ mac: d.mac, up: sent(d.mac), down: received(d.mac) });
    expect(sent(ANSWERED_ONLY)).toBeGreaterThan(0);
    // every flow with a peer: tshark shows that MAC sending frames of the conversation
    const answered = report.flows.filter((f) => f.peer !== null);
    expect(answered.length).toBeGreaterThanOrEqual(4);
    for (const f of answered) {
      const key = flowKey(f.proto, f.client, f.clientPort, f.server, f.serverPort);
      expect(all.some((x) => x.key === key && x.src === f.peer), key).toBe(true);
      expect(f.peer).not.toBe(f.device);
    }
    // and a flow to the internet has none
    expect(report.flows.filter((f) => !/^192\.168\./.test(f.server)).every((f) => f.peer === null)).toBe(true);
    // what the flows with a peer add to the devices' sums: tshark's LAN conversations in which both sides sent
    expect(answeredLanFlows(report)).toEqual(tsharkLanAnswered(CAPTURE));
  });

  describe.skipIf(!existsSync(CHROMIUM))('the status page (chromium)', () => {
    const browser = useChromium();
    let run: CollectRun;
    beforeAll(async () => {
      run = await startCollect(CAPTURE, []);
    }, 60_000);
    afterAll(async () => {
      await run?.stop();
    });

    it('the Echo that only answered shows what it sent and received, and lists the flow it answered', async () => {
      // small enough for the page to print in bytes
      expect(sent(ANSWERED_ONLY)).toBeLessThan(1000);
      expect(received(ANSWERED_ONLY)).toBeLessThan(1000);
      const flows = await untilValue('its flows', async () => {
        const body = (await (await fetch(`${run.base}/api/v1/flows?device=${ANSWERED_ONLY}`)).json()) as { flows: Array<{ device: string; peer: string | null; open: boolean }> };
        return body.flows.length > 0 && body.flows.every((f) => !f.open) ? body.flows : null;
      });
      expect(flows.map((f) => f.peer)).toEqual([ANSWERED_ONLY]);
      const page = await browser().newPage({ viewport: { width: 1100, height: 1000 } });
      await page.goto(run.base + '/');
      const meta = page.locator(`.assistant[data-mac="${ANSWERED_ONLY}"] .meta`, { hasText: 'in total' });
      await meta.waitFor({ timeout: 20_000 });
      await page.locator(`.assistant[data-mac="${ANSWERED_ONLY}"] .meta`, { hasText: `${sent(ANSWERED_ONLY)} B up, ${received(ANSWERED_ONLY)} B down in total` }).waitFor({ timeout: 20_000 });
      await page.close();
    }, 60_000);
  });
});
