/**
 * Assistants on the same network segment as computers and phones: the advice to give smart devices a
 * network of their own (a guest or IoT network, a VLAN), shown when earshot sees both on one segment.
 *
 * A segment is an IPv4 /24 of the local addresses a device used (the size of nearly every home LAN;
 * the MAC alone cannot tell a VLAN apart when the capture sees several). A device counts as a computer
 * or phone, and never when the inventory takes it for an assistant, on its own words or its behaviour:
 * - its DHCP host name, DHCP vendor class, mDNS names or model name one (iPhone, android-dhcp-14,
 *   MSFT 5.0, MacBookPro18,1, DESKTOP-..., ...);
 * - it announces a service only computers and phones announce over mDNS (_companion-link, _apple-mobdev2,
 *   _workstation, _smb, _rdlink, _sftp-ssh);
 * - its MAC's organisation makes computers, phones or their Wi-Fi cards only (Intel, Dell, Lenovo, ...);
 * - it asked for many unrelated domains, as browsing does (the classifier's test, identify/classify.ts).
 */
import type { Device } from '../identify/device.js';

const NAMES_A_COMPUTER = /iphone|ipad|ipod|android|galaxy|pixel|oneplus|redmi|macbook|imac|mac-?mini|mac-?pro|windows|desktop|laptop|\bpc\b|chromebook|thinkpad|surface|^msft\b|ubuntu|fedora/i;
const MODEL_OF_A_COMPUTER = /^(MacBook|iMac|Macmini|MacPro|Mac\d|iPhone|iPad|iPod)/;
const COMPUTER_SERVICES = ['_companion-link.', '_apple-mobdev2.', '_workstation.', '_smb.', '_rdlink.', '_sftp-ssh.'];
/** Organisations (OUI registry) whose addresses are on computers, phones or their Wi-Fi cards. */
const COMPUTER_MAKERS = /^(Intel Corporate|Dell Inc|Lenovo|LCFC|Hewlett Packard$|HP Inc|Microsoft|AzureWave|Liteon|Guangdong Oppo|vivo Mobile|Xiaomi Communications|OnePlus|Motorola Mobility|Realme|Fairphone)/i;
/** The classifier's threshold of "a phone or computer" (identify/classify.ts BROWSING_DOMAINS). */
const BROWSING_DOMAINS = 12;

/** Why `d` is taken for a computer or phone, or null when nothing says so. */
export function computerEvidence(d: Device): string | null {
  if (d.assistant) return null;
  for (const [what, text] of [['DHCP host name', d.dhcpHostName], ['DHCP vendor class', d.dhcpVendorClass], ['mDNS model', d.mdnsModel]] as const) {
    if (text && (NAMES_A_COMPUTER.test(text) || MODEL_OF_A_COMPUTER.test(text))) return `${what} ${text}`;
  }
  for (const n of d.mdnsNames) if (NAMES_A_COMPUTER.test(n)) return `mDNS name ${n}`;
  for (const s of d.mdnsServices) if (COMPUTER_SERVICES.some((c) => s.startsWith(c))) return `announces ${s}`;
  if (d.organization && COMPUTER_MAKERS.test(d.organization)) return `MAC of ${d.organization}`;
  if (d.otherDomains.size >= BROWSING_DOMAINS) return `asked for ${d.otherDomains.size}+ unrelated domains (browsing)`;
  return null;
}

/** The IPv4 /24 segments of a device's private addresses ("192.168.1.0/24"). */
export function segmentsOf(d: Device): string[] {
  const out: string[] = [];
  for (const ip of d.ips) {
    const m = /^(10|172|192|100)\.(\d{1,3})\.(\d{1,3})\.\d{1,3}$/.exec(ip);
    if (m === null) continue;
    const segment = `${m[1]}.${m[2]}.${m[3]}.0/24`;
    if (!out.includes(segment)) out.push(segment);
  }
  return out;
}
