/**
 * A capture whose names are hostile, as any device on the LAN can send them: an mDNS announcement whose
 * instance name, TXT friendly name and model, and host name hold terminal escape sequences, a bidi
 * override, a line break and chat mentions, and a unicast DNS answer whose name holds ESC [ 2 J. The
 * packets are built byte by byte here (not by earshot), so what the names hold is known independently.
 */
import { classicPcap } from './capture-files.js';
import { dnsResponse, ipv4Packet, udpDatagram } from './decode-test-support.js';

/** The device that announces itself, and the LAN's resolver. */
export const HOSTILE_MAC = '02:00:00:00:00:02';
export const HOSTILE_IP = '192.168.1.50';
const RESOLVER_IP = '192.168.1.1';

/** ESC [ 2 J clears the screen, ESC [ H homes the cursor, OSC 0 sets the window title. */
export const HOSTILE_INSTANCE = 'Kitchen\x1b[2J\x1b[H\x1b]0;pwned\x07 @everyone https://evil/x';
export const HOSTILE_FRIENDLY = 'Echo\u202eevil\r\nearshot: fake log line\x1b[31m';
export const HOSTILE_MODEL = 'Model\x9b2J\x00';
export const HOSTILE_HOST = 'host\x1b[5m';
export const HOSTILE_DNS_NAME = 'evil\x1b[2J.example.com';

/** Every hostile string, with the control characters each holds. */
export const HOSTILE_NAMES = [HOSTILE_INSTANCE, HOSTILE_FRIENDLY, HOSTILE_MODEL, HOSTILE_HOST, HOSTILE_DNS_NAME];

function name(text: string): Buffer {
  return Buffer.concat([...text.split('.').map((label) => {
    const bytes = Buffer.from(label, 'utf8');
    return Buffer.concat([Buffer.from([bytes.length]), bytes]);
  }), Buffer.from([0])]);
}

function record(owner: string, type: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(0x8001, 2); // class IN with the cache-flush bit, as responders send it
  fixed.writeUInt32BE(120, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([name(owner), fixed, data]);
}

function txt(entries: string[]): Buffer {
  return Buffer.concat(entries.map((e) => {
    const bytes = Buffer.from(e, 'utf8');
    return Buffer.concat([Buffer.from([bytes.length]), bytes]);
  }));
}

/** The mDNS response: PTR to the instance, its TXT (fn, md), and an A record for the host. */
export function hostileMdns(): Buffer {
  const service = '_googlecast._tcp.local';
  const instance = `${HOSTILE_INSTANCE}.${service}`;
  const answers = [
    record(service, 12, name(instance)),
    record(instance, 16, txt([`fn=${HOSTILE_FRIENDLY}`, `md=${HOSTILE_MODEL}`])),
    record(`${HOSTILE_HOST}.local`, 1, Buffer.from(HOSTILE_IP.split('.').map(Number))),
  ];
  const header = Buffer.from([0, 0, 0x84, 0, 0, 0, 0, answers.length, 0, 0, 0, 0]);
  return Buffer.concat([header, ...answers]);
}

function ethernet(src: string, dst: string, payload: Buffer): Buffer {
  const mac = (m: string) => Buffer.from(m.split(':').map((h) => parseInt(h, 16)));
  return Buffer.concat([mac(dst), mac(src), Buffer.from([0x08, 0x00]), payload]);
}

/** A classic pcap (Ethernet) of the mDNS announcement and a DNS answer to the same device. */
export function hostileNamesPcap(): Buffer {
  const t = 1_714_533_124;
  const mdns = ethernet(HOSTILE_MAC, '01:00:5e:00:00:fb', ipv4Packet(HOSTILE_IP, '224.0.0.251', 17, udpDatagram(5353, 5353, hostileMdns())));
  const dns = ethernet('02:00:00:00:00:01', HOSTILE_MAC, ipv4Packet(RESOLVER_IP, HOSTILE_IP, 17, udpDatagram(53, 40000, dnsResponse(HOSTILE_DNS_NAME, ['203.0.113.7']))));
  return classicPcap([{ seconds: t, fraction: 0, data: mdns }, { seconds: t + 1, fraction: 0, data: dns }]);
}
