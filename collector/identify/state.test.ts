import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DnsAnswer } from '../flow/payload.js';
import { DnsCache } from '../tag/dns-cache.js';
import { Inventory } from './inventory.js';
import { loadState, saveState, type LabelMap } from './state.js';

const dir = mkdtempSync(join(tmpdir(), 'earshot-state-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const oui = { lookup: () => ({ organization: 'Amazon Technologies Inc.', vendor: 'amazon' }) };

describe('state file', () => {
  it('keeps DHCP names, DNS names and labels across a restart', () => {
    const inventory = new Inventory(oui, { maxDevices: 10, devices: {} });
    inventory.observeDhcp({ op: 1, messageType: 3, clientMac: '50:f5:da:23:43:df', hostName: 'amazon-0d0fb5957', vendorClass: null, parameterList: [1, 3], requestedIp: null, clientIp: null, domainName: null }, -1, 1000);
    const dns = new DnsCache(100, 60_000);
    dns.onAnswer(new DnsAnswer(0, 'avs-alexa-4-na.amazon.com', 'A', '52.94.1.2', 60, 0x50f5da2343df, 4, [0, 0, 0, 1]), 'm88402432426975');
    const labels: LabelMap = new Map([['50f5da2343df-1000', 'not-intended']]);
    saveState(dir, inventory, dns, labels);
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).schema).toBe('earshot.state/1');

    const inventory2 = new Inventory(oui, { maxDevices: 10, devices: {} });
    const dns2 = new DnsCache(100, 60_000);
    const labels2: LabelMap = new Map();
    expect(loadState(dir, inventory2, dns2, labels2)).toBeNull();
    expect(inventory2.all().find((d) => d.macText === '50:f5:da:23:43:df')?.name).toBe('amazon-0d0fb5957');
    expect(dns2.lookup('m88402432426975', '52.94.1.2', 1000)?.name).toBe('avs-alexa-4-na.amazon.com');
    expect(labels2.get('50f5da2343df-1000')).toBe('not-intended');
  });
});
