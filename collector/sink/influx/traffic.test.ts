import { describe, expect, it } from 'vitest';
import { takeDelta } from '../../flow/deltas.js';
import { createFlow, type Flow } from '../../flow/flow.js';
import { Device } from '../../identify/device.js';
import { DEVICE_MIN_BYTES, FREE_DEVICE_TAGS, SERVER_NAME_MIN_BYTES, TrafficAggregator } from './traffic.js';

// hand-made flows and devices: the expected lines are written out here, not taken from the aggregator
const MAC = 0xaabbcc000001;
const MAC_TEXT = 'aa:bb:cc:00:00:01';
let nextId = 1;

function flow(options: { service?: string | null; vendor?: string | null; serverName?: string | null; deviceIsClient?: boolean } = {}): Flow {
  const f = createFlow(nextId++, 6, 4, 0, 0, [0, 0, 0, 0xc0a80002], 50000, [0, 0, 0, 0x34000001], 443);
  f.deviceMac = MAC;
  f.service = options.service ?? null;
  f.vendor = options.vendor ?? null;
  f.serverName = options.serverName ?? null;
  f.deviceIsClient = options.deviceIsClient ?? true;
  return f;
}

function grow(f: Flow, up: [packets: number, bytes: number], down: [packets: number, bytes: number] = [0, 0]): void {
  f.packetsUp += up[0];
  f.bytesUp += up[1];
  f.packetsDown += down[0];
  f.bytesDown += down[1];
}

/** What the pipeline pushes for the flow now (flow/deltas.ts), into the aggregator; false when nothing grew. */
function take(traffic: TrafficAggregator, f: Flow): boolean {
  const d = takeDelta(f);
  if (d !== null) traffic.take(d);
  return d !== null;
}

function drain(traffic: TrafficAggregator, timeMs: number, device?: Device): string[] {
  const lines: string[] = [];
  traffic.drain(timeMs, () => device, (line) => lines.push(line));
  return lines.sort();
}

describe('TrafficAggregator', () => {
  it('counts a LAN flow for the device that answered it too: the whole flow the interval it first answers, then its growth', () => {
    const traffic = new TrafficAggregator({ topServerNames: 5 });
    const PEER = 0xaabbcc000002;
    // 192.168.0.2 streams to 192.168.0.3 (UDP), which answers only in the second interval
    const f = createFlow(nextId++, 17, 4, 0, 0, [0, 0, 0, 0xc0a80002], 55444, [0, 0, 0, 0xc0a80003], 55444);
    f.deviceMac = MAC;
    f.bothLocal = true;
    f.peerMac = PEER;
    grow(f, [10, 5000]);
    take(traffic, f);
    expect(drain(traffic, 10_000)).toEqual([
      'traffic,device=aa:bb:cc:00:00:01 bytes_up=5000i,bytes_down=0i,packets_up=10i,packets_down=0i 10000',
    ]);
    // its first frame from its own MAC (the flow table sets peerSent): the 10 datagrams it had received count now
    grow(f, [2, 1000], [1, 80]);
    f.peerSent = true;
    take(traffic, f);
    expect(drain(traffic, 20_000)).toEqual([
      'traffic,device=aa:bb:cc:00:00:01 bytes_up=1000i,bytes_down=80i,packets_up=2i,packets_down=1i 20000',
      'traffic,device=aa:bb:cc:00:00:02 bytes_up=80i,bytes_down=6000i,packets_up=1i,packets_down=12i 20000',
    ]);
    grow(f, [1, 500], [1, 90]);
    take(traffic, f);
    expect(drain(traffic, 30_000)).toEqual([
      'traffic,device=aa:bb:cc:00:00:01 bytes_up=500i,bytes_down=90i,packets_up=1i,packets_down=1i 30000',
      'traffic,device=aa:bb:cc:00:00:02 bytes_up=90i,bytes_down=500i,packets_up=1i,packets_down=1i 30000',
    ]);
    // each byte once in the totals the run checks against the report's flows
    expect(traffic.totals).toEqual({ bytes: 6670, packets: 15 });
  });

  it('sums each flow\'s growth per series and interval, up being what the device sent', () => {
    const traffic = new TrafficAggregator({ topServerNames: 5 });
    const a = flow({ service: 'voice', vendor: 'amazon', serverName: 'avs-alexa-eu.amazon.com' });
    const b = flow({ service: 'voice', vendor: 'amazon', serverName: 'avs-alexa-eu.amazon.com', deviceIsClient: false });
    grow(a, [3, 300], [2, 2000]);
    grow(b, [1, 100], [4, 40]);
    expect(take(traffic, a)).toBe(true);
    expect(take(traffic, b)).toBe(true);
    expect(take(traffic, a)).toBe(false); // nothing new
    expect(drain(traffic, 10_000)).toEqual([
      // b's device is its server: b's client bytes are what the device received
      'traffic,device=aa:bb:cc:00:00:01,server_name=avs-alexa-eu.amazon.com,service=voice bytes_up=340i,bytes_down=2100i,packets_up=7i,packets_down=3i 10000',
    ]);
    grow(a, [1, 60]);
    take(traffic, a);
    expect(drain(traffic, 20_000)).toEqual([
      'traffic,device=aa:bb:cc:00:00:01,server_name=avs-alexa-eu.amazon.com,service=voice bytes_up=60i,bytes_down=0i,packets_up=1i,packets_down=0i 20000',
    ]);
    expect(traffic.pending).toBe(false);
    expect(traffic.totals).toEqual({ bytes: 2500, packets: 11 });
  });

  it('a server name outside the catalogue is "other" until its bytes admit it; the take that admits it has its own tag', () => {
    const traffic = new TrafficAggregator({ topServerNames: 1 });
    const busy = flow({ serverName: 'cdn.example.net' });
    const quiet = flow({ serverName: 'quiet.example.org' });
    grow(busy, [1, SERVER_NAME_MIN_BYTES - 1]);
    grow(quiet, [1, 10]);
    take(traffic, busy);
    take(traffic, quiet);
    expect(drain(traffic, 0)).toEqual([
      `traffic,device=${MAC_TEXT},server_name=other bytes_up=${SERVER_NAME_MIN_BYTES + 9}i,bytes_down=0i,packets_up=2i,packets_down=0i 0`,
    ]);
    // the busy name crosses the line in this take: admitted, and tagged with its name from this take on
    grow(busy, [1, 1]);
    take(traffic, busy);
    grow(busy, [1, 5]);
    grow(quiet, [1, 7]);
    take(traffic, busy);
    take(traffic, quiet);
    expect(drain(traffic, 10_000)).toEqual([
      `traffic,device=${MAC_TEXT},server_name=cdn.example.net bytes_up=6i,bytes_down=0i,packets_up=2i,packets_down=0i 10000`,
      `traffic,device=${MAC_TEXT},server_name=other bytes_up=7i,bytes_down=0i,packets_up=1i,packets_down=0i 10000`,
    ]);
  });

  it('tags follow the device: a name, vendor or assistant verdict learned later shows in the next points', () => {
    const traffic = new TrafficAggregator({ topServerNames: 5 });
    const device = new Device(MAC, MAC_TEXT);
    const f = flow({ service: 'telemetry', vendor: 'amazon' });
    grow(f, [1, 10]);
    take(traffic, f);
    expect(drain(traffic, 0, device)).toEqual([
      `traffic,assistant=false,device=${MAC_TEXT},service=telemetry bytes_up=10i,bytes_down=0i,packets_up=1i,packets_down=0i 0`,
    ]);
    device.name = 'Kitchen Echo';
    device.vendor = 'amazon';
    device.assistant = true;
    grow(f, [1, 20]);
    take(traffic, f);
    expect(drain(traffic, 10_000, device)).toEqual([
      `traffic,assistant=true,device=${MAC_TEXT},device_name=Kitchen\\ Echo,service=telemetry,vendor=amazon bytes_up=20i,bytes_down=0i,packets_up=1i,packets_down=0i 10000`,
    ]);
  });

  it('series idle for a long time are forgotten, and a flow that wakes up later is still counted once', () => {
    const traffic = new TrafficAggregator({ topServerNames: 5 });
    const sleeper = flow({ service: 'media', vendor: 'amazon' });
    grow(sleeper, [1, 100]);
    take(traffic, sleeper);
    drain(traffic, 0);
    // 200 intervals of other traffic: the sleeper's series and cell are dropped on the way
    const busy = flow({ service: 'voice', vendor: 'amazon' });
    for (let i = 1; i <= 200; i++) {
      grow(busy, [1, 1]);
      take(traffic, busy);
      drain(traffic, i * 10_000);
    }
    expect(traffic.kept).toEqual({ series: 1, cells: 1 });
    grow(sleeper, [2, 50]);
    take(traffic, sleeper);
    expect(drain(traffic, 2_010_000)).toEqual([
      `traffic,device=${MAC_TEXT},service=media bytes_up=50i,bytes_down=0i,packets_up=2i,packets_down=0i 2010000`,
    ]);
    expect(traffic.totals).toEqual({ bytes: 350, packets: 203 });
  });

  it('a flow whose service or name changes moves to the matching series', () => {
    const traffic = new TrafficAggregator({ topServerNames: 5 });
    const f = flow();
    grow(f, [1, 10]);
    take(traffic, f);
    f.service = 'voice';
    f.vendor = 'amazon';
    f.serverName = 'avs-alexa-na.amazon.com';
    grow(f, [1, 20]);
    take(traffic, f);
    expect(drain(traffic, 0)).toEqual([
      `traffic,device=${MAC_TEXT} bytes_up=10i,bytes_down=0i,packets_up=1i,packets_down=0i 0`,
      `traffic,device=${MAC_TEXT},server_name=avs-alexa-na.amazon.com,service=voice bytes_up=20i,bytes_down=0i,packets_up=1i,packets_down=0i 0`,
    ]);
  });

  it('bounds the device tag under a flood of MACs: the first ones and assistants get their own, the rest is "other", the sums hold', () => {
    const echoMac = 0x68dbf5901964;
    const echo = new Device(echoMac, '68:db:f5:90:19:64');
    echo.assistant = true;
    const traffic = new TrafficAggregator({ topServerNames: 10, device: (mac) => (mac === echoMac ? echo : undefined) });
    let sent = 0;
    for (let i = 0; i < 5000; i++) {
      const f = flow();
      f.deviceMac = 0x020000000000 + i;
      grow(f, [1, 300]);
      sent += 300;
      take(traffic, f);
    }
    const voice = flow({ service: 'voice', vendor: 'amazon', serverName: 'avs-alexa-4-na.amazon.com' });
    voice.deviceMac = echoMac;
    grow(voice, [10, 9000]);
    take(traffic, voice);
    // one busy device past the free ones: its own tag once it moved DEVICE_MIN_BYTES
    const busy = flow();
    busy.deviceMac = 0x02ffff000001;
    grow(busy, [100, DEVICE_MIN_BYTES]);
    take(traffic, busy);
    const lines: string[] = [];
    traffic.drain(0, () => undefined, (line) => lines.push(line));
    const devices = new Set(lines.map((l) => /device=([^, ]+)/.exec(l)![1]));
    expect(devices.size).toBe(FREE_DEVICE_TAGS + 3);
    expect(devices.has('other')).toBe(true);
    expect(devices.has('68:db:f5:90:19:64')).toBe(true);
    expect(devices.has('02:ff:ff:00:00:01')).toBe(true);
    const other = lines.find((l) => l.startsWith('traffic,device=other '))!;
    expect(other).toBe(`traffic,device=other bytes_up=${sent - FREE_DEVICE_TAGS * 300}i,bytes_down=0i,packets_up=${5000 - FREE_DEVICE_TAGS}i,packets_down=0i 0`);
  });
});
