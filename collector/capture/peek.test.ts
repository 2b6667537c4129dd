/** firstPacketTimeMs against tshark's first frame time: pcap, pcapng, gzip-compressed; null for what is not a capture. */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect, it } from 'vitest';
import { describeShared, realCapture } from '../../test/helpers/shared.js';
import { tempDir } from '../../test/helpers/temp.js';
import { firstPacketTimeMs } from './peek.js';

const tsharkFirstMs = (file: string) =>
  Number(execFileSync('tshark', ['-r', file, '-c', '1', '-T', 'fields', '-e', 'frame.time_epoch'], { encoding: 'utf8' }).trim()) * 1000;

describeShared('the first packet\'s time of a capture file', () => {
  it('equals tshark\'s, for pcap, pcapng and a gzip-compressed pcap', async () => {
    const pcap = realCapture('amazon-echo_alexa-time-query-0_xray.pcap');
    const pcapng = realCapture('amazon-echodot3_activation_neu.pcapng');
    const gz = join(tempDir('earshot-peek-'), 'x.pcap.gz');
    writeFileSync(gz, gzipSync(readFileSync(pcap)));
    for (const [file, oracle] of [[pcap, pcap], [pcapng, pcapng], [gz, pcap]]) {
      expect(await firstPacketTimeMs(file)).toBeCloseTo(tsharkFirstMs(oracle), 2);
    }
  });

  it('is null for a file that is not a capture or has no packet', async () => {
    const dir = tempDir('earshot-peek-');
    writeFileSync(join(dir, 'text'), 'not a capture at all, just some text\n'.repeat(10));
    expect(await firstPacketTimeMs(join(dir, 'text'))).toBeNull();
    // a pcap header (little-endian, µs, Ethernet) and nothing after it
    const header = Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex');
    writeFileSync(join(dir, 'empty.pcap'), header);
    expect(await firstPacketTimeMs(join(dir, 'empty.pcap'))).toBeNull();
  });
});
