/** Renders a report as readable tables for a terminal (`--format text`). */
import type { PrivacyDevice } from '../collector/privacy/index.js';
import type { Report } from '../collector/sink/report.js';
import type { ReportFinding } from '../collector/sink/report-schema.js';
import { printable } from '../collector/text.js';
import { isLocalActivation, voiceWentText } from '../collector/local/record.js';

function table(headers: string[], rows: Array<Array<string | number>>, right: ReadonlySet<number>): string {
  // names in cells come from packets: escaped before the widths are measured
  const cells = rows.map((r) => r.map((c) => printable(String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(headers), fmt(widths.map((w) => '-'.repeat(w))), ...cells.map(fmt)].join('\n');
}

/** `n` and the noun, singular for one ("1 endpoint", "2 endpoints"). */
function counted(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Human-readable byte count. */
export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Most activations the text report lists (the most recent): a terminal's worth; JSON has them all. */
const MAX_TEXT_ACTIVATIONS = 200;

/** The text form of a report; shows the `maxFlows` largest flows. */
export function renderTextReport(r: Report, maxFlows = 40, privacy: readonly PrivacyDevice[] = []): string {
  const c = r.capture;
  const out: string[] = [];
  if (r.site) out.push(`Site: ${r.site}`);
  out.push(`Capture: ${counted(c.packets, 'packet')}, ${humanBytes(c.bytes)}, ${c.first ?? '-'} .. ${c.last ?? '-'}` +
    `${c.decodeErrors ? `, ${c.decodeErrors} undecodable` : ''}${c.truncated ? ', TRUNCATED' : ''}${c.interrupted ? ', INTERRUPTED (stopped before the end of its input)' : ''}`);
  out.push('', `Devices (${r.devices.length})`);
  out.push(table(['MAC', 'IPs', 'vendor', 'assistant', 'name', 'up', 'down'],
    r.devices.map((d) => [d.mac, d.ips.join(' '), d.vendor ?? '', d.assistant ? 'yes' : '', d.name ?? '', humanBytes(d.bytesUp), humanBytes(d.bytesDown)]),
    new Set([5, 6])));
  const flows = [...r.flows].sort((a, b) => b.bytesUp + b.bytesDown - (a.bytesUp + a.bytesDown)).slice(0, maxFlows);
  out.push('', `Flows (${r.flows.length}${r.flows.length > maxFlows ? `, the ${maxFlows} largest` : ''})`);
  out.push(table(['proto', 'client', 'server', 'name', 'service', 'pkts up/down', 'up', 'down'],
    flows.map((f) => [f.proto, `${f.client}:${f.clientPort}`, `${f.server}:${f.serverPort}`, f.serverName ?? f.sni ?? '', f.service ?? '',
      `${f.packetsUp}/${f.packetsDown}`, humanBytes(f.bytesUp), humanBytes(f.bytesDown)]),
    new Set([5, 6, 7])));
  const names = new Map<string, Set<string>>();
  for (const a of r.dns) {
    const set = names.get(a.name) ?? new Set<string>();
    set.add(`${a.type} ${a.data}`);
    names.set(a.name, set);
  }
  out.push('', `DNS answers (${r.dns.length}, ${counted(names.size, 'name')})`);
  for (const [name, set] of [...names].slice(0, 60)) out.push(printable(`  ${name} -> ${[...set].join(', ')}`));
  // the audio uploads, the report's point: the most recent, with their verdict and why
  const cloud = r.activations.filter((a) => !isLocalActivation(a));
  const shownActivations = cloud.slice(-MAX_TEXT_ACTIVATIONS);
  out.push('', `Activations (${r.activations.length}${shownActivations.length < cloud.length ? `, the last ${shownActivations.length}; --format json lists all` : ''})`);
  if (shownActivations.length > 0) {
    const deviceNames = new Map(r.devices.map((d) => [d.mac, d.name]));
    out.push(table(['device', 'name', 'start', 'duration', 'server', 'up', 'down', 'verdict', 'reasons'],
      shownActivations.map((a) => [a.device, deviceNames.get(a.device) ?? '', a.start, `${((Date.parse(a.end) - Date.parse(a.start)) / 1000).toFixed(1)} s`,
        a.serverName ?? a.server ?? '', humanBytes(a.bytesUp), humanBytes(a.bytesDown), a.verdict, a.reasons.join(', ')]),
      new Set([3, 5, 6])));
  }
  // local assistants: a satellite streaming to the local server, and where the voice went next
  const local = r.activations.filter(isLocalActivation);
  if (local.length > 0) {
    out.push('', `Local assistants' activations (${local.length}): a satellite streaming to the local server, and where the voice went (docs/privacy.md)`);
    out.push(table(['satellite', 'start', 'end', 'server', 'up', 'down', 'the voice'],
      local.map((a) => [a.device, a.start, a.end, `${a.serverName ?? ''} ${a.server ?? ''}`.trim(), humanBytes(a.bytesUp), humanBytes(a.bytesDown), voiceWentText(a)]),
      new Set([4, 5])));
  }
  // a call is two-way media (a call, Drop In, video), not an activation: one line each
  out.push('', `Calls (${r.calls.length})`);
  if (r.calls.length > 0) {
    out.push(table(['device', 'start', 'end', 'duration', 'pkts up/down', 'up', 'down', 'peers'],
      r.calls.map((c) => [c.device, c.start, c.end, `${c.durationS.toFixed(1)} s`, `${c.packetsUp}/${c.packetsDown}`, humanBytes(c.bytesUp), humanBytes(c.bytesDown),
        `${c.peers.join(' ')}${c.peersTruncated ? ' ...' : ''}`]),
      new Set([3, 4, 5, 6])));
  }
  // network hygiene: one block per finding, the most severe first (docs/privacy.md); the same finding
  // about several devices (each assistant on one segment gets the same advice) is one block naming them
  const findings = r.findings ?? [];
  out.push('', `Network hygiene findings (${findings.length})`);
  for (const group of sameFindings(findings)) {
    const f = group[0];
    const who = (x: ReportFinding) => `${x.device ?? 'no device'}${x.deviceName ? ` (${x.deviceName})` : ''}`;
    const devices = group.length === 1
      ? `${who(f)}${f.assistant ? ', assistant' : ''}`
      : `${group.map(who).join(', ')} (${group.every((x) => x.assistant) ? `${group.length} assistants` : `${group.length} devices`})`;
    // a count is each device's own (the segment advice counts the computers beside it): not summed
    const low = Math.min(...group.map((x) => x.count));
    const high = Math.max(...group.map((x) => x.count));
    const seen = group.length === 1 ? `${low}x` : `${low === high ? low : `${low}-${high}`}x each`;
    // ISO times of one format: their text order is their time order
    const first = group.reduce((min, x) => (x.firstSeen < min ? x.firstSeen : min), f.firstSeen);
    const last = group.reduce((max, x) => (x.lastSeen > max ? x.lastSeen : max), f.lastSeen);
    out.push(printable(`  [${f.severity}] ${f.title}: ${devices}, seen ${seen} ${first} .. ${last}`));
    for (const e of f.evidence) out.push(printable(`      ${e}`));
    if (f.evidenceDropped > 0) out.push(`      ... and ${f.evidenceDropped} more`);
    out.push(printable(`      what to do: ${f.advice}`));
  }
  if (privacy.length > 0) out.push('', privacyText(privacy, r));
  return `${out.join('\n')}\n`;
}

/**
 * Findings that differ only in their device (kind, severity, title, subject, evidence and advice the
 * same), in groups, in the order of each group's first finding.
 */
export function sameFindings(findings: readonly ReportFinding[]): ReportFinding[][] {
  const groups = new Map<string, ReportFinding[]>();
  for (const f of findings) {
    const key = JSON.stringify([f.kind, f.severity, f.title, f.subject, f.evidence, f.evidenceDropped, f.advice]);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [f]);
    else group.push(f);
  }
  return [...groups.values()];
}

/** Most endpoints listed per assistant in the text report (the busiest). */
const MAX_TEXT_ENDPOINTS = 25;

/** Per assistant: who it talked to, and what it uploaded per day beside its activations. */
function privacyText(devices: readonly PrivacyDevice[], r: Report): string {
  const out: string[] = [`Who each assistant talks to (${devices.length})`];
  for (const d of devices) {
    // rounded down: 99.96 % is not "100 %" while some bytes go to an unknown organisation
    const share = `${d.namedShare >= 1 ? 100 : Math.floor(d.namedShare * 1000) / 10} % of its bytes to a known organisation`;
    // a device's name and vendor come from packets (DHCP, mDNS): escaped like the tables' cells
    out.push('', printable(`  ${d.name ?? d.mac}${d.name ? ` (${d.mac})` : ''}${d.vendor ? `, ${d.vendor}` : ''}: ${counted(d.endpoints.length, 'endpoint')}, ${counted(d.organisations, 'organisation')}, ${share}` +
      `${d.learning ? `; learning until ${d.learningUntil}` : ''}`));
    const shown = d.endpoints.slice(0, MAX_TEXT_ENDPOINTS);
    out.push(table(['endpoint', 'organisation', 'party', 'service', 'up', 'down', 'conns', 'per day', 'first seen', 'last seen'],
      shown.map((e) => [e.name, e.org ?? '?', e.party ?? '', e.service, humanBytes(e.bytesUp), humanBytes(e.bytesDown), e.flows, e.connectionsPerDay, e.firstSeen, e.lastSeen]),
      new Set([4, 5, 6, 7])));
    if (d.endpoints.length > shown.length) out.push(`  ... and ${d.endpoints.length - shown.length} more`);
    const activations = new Map<string, number>();
    for (const a of r.activations) if (a.device === d.mac) activations.set(a.start.slice(0, 10), (activations.get(a.start.slice(0, 10)) ?? 0) + 1);
    // uploads are what left the home; what the device sent to the home network is its own column
    out.push('', table(['day', 'voice up', 'other up', 'of which', 'home network up', 'activations'],
      d.days.map((x) => [x.day, humanBytes(x.voiceUp), humanBytes(x.otherUp),
        Object.entries(x.up).filter(([service, n]) => service !== 'voice' && n > 0).sort((a, b) => b[1] - a[1]).map(([service, n]) => `${service} ${humanBytes(n)}`).join(', '),
        humanBytes(x.localUp), activations.get(x.day) ?? 0]),
      new Set([1, 2, 4, 5])));
  }
  return out.join('\n');
}
