/**
 * A name from a packet must not cost other devices their data (found by an audit): a DHCP host name with
 * a line break or a NUL byte, spooled while InfluxDB was away, made the spool's check of the batch read
 * back from disk count more lines than points (or see a torn write), and the whole batch, every device's
 * points, was set aside and never written. Real influxd; the capture is made here from DHCP requests
 * (test/helpers/flood.ts), the names are the test's own.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { classicHeader, classicPcap } from './helpers/capture-files.js';
import { runCli } from './helpers/cli.js';
import { dhcpRequest, ipv4Bytes, udpFrame } from './helpers/flood.js';
import { describeInflux, freePort, useInfluxd } from './helpers/influxd.js';
import { tempDir } from './helpers/temp.js';

const NAMES: Record<number, string> = {
  0x02000000000a: 'evil\nline',
  0x02000000000b: 'nul\u0000byte',
  0x02000000000c: 'esc\u001b[2J',
  0x02000000000d: 'normal',
};

describeInflux('names from packets and the InfluxDB spool (real influxd)', () => {
  const server = useInfluxd();

  it('a host name with a line break or a NUL byte leaves the spooled batches sound: every device\'s points arrive, names shown escaped', async () => {
    const dir = tempDir('earshot-hostile-names-');
    const capture = join(dir, 'names.pcap');
    const start = Math.floor(Date.now() / 1000) - 600;
    writeFileSync(capture, classicPcap(Object.entries(NAMES).map(([mac, name], i) => ({
      seconds: start + i,
      fraction: 0,
      data: udpFrame(Number(mac), 0xffffffffffff, ipv4Bytes('0.0.0.0'), ipv4Bytes('255.255.255.255'), 68, 67, dhcpRequest(Number(mac), name, null)),
    }))));
    const empty = join(dir, 'empty.pcap');
    writeFileSync(empty, classicHeader());
    const dataDir = join(dir, 'data');
    const db = `names${process.pid}`;
    // InfluxDB away: every point goes to the spool on disk
    const away = await runCli(['replay', capture, '--format', 'json', '-o', '/dev/null', '--data-dir', dataDir, '--influx-url', `http://127.0.0.1:${await freePort()}`, '--influx-db', db, '--influx-wait', '1']);
    expect(away.code, away.stderr).toBe(3);
    const spool = join(dataDir, 'spool', 'influx');
    expect(readdirSync(spool).filter((f) => /^\d+-\d+\.lp(\.gz)?$/.test(f)).length).toBeGreaterThan(0);
    // InfluxDB back: the next start sends the spool
    const back = await runCli(['replay', empty, '--format', 'json', '-o', '/dev/null', '--data-dir', dataDir, '--influx-url', server.url, '--influx-db', db]);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stderr).not.toMatch(/damaged|torn|quarantine/);
    expect(readdirSync(spool).filter((f) => f !== 'quarantine')).toEqual([]);
    expect(existsSync(join(spool, 'quarantine')) ? readdirSync(join(spool, 'quarantine')) : []).toEqual([]);
    const rows = await server.rows(db, 'SELECT last("name") AS "name" FROM "device" GROUP BY "device"');
    const byMac = Object.fromEntries(rows.map((r) => [r.device, r.name]));
    expect(byMac).toEqual({
      '02:00:00:00:00:0a': 'evil\\x0aline',
      '02:00:00:00:00:0b': 'nul\\x00byte',
      '02:00:00:00:00:0c': 'esc\\x1b[2J',
      '02:00:00:00:00:0d': 'normal',
    });
  }, 60_000);
});
