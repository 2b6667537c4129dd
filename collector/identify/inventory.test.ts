import { describe, expect, it } from 'vitest';
import type { DhcpInfo } from '../decode/dhcp.js';
import { ANNOUNCE_BURST, ANNOUNCE_PER_SECOND, Inventory } from './inventory.js';

const amazon = { lookup: () => ({ organization: 'Amazon Technologies Inc.', vendor: 'amazon' }) };

function dhcp(hostName: string): DhcpInfo {
  return { op: 1, messageType: 3, clientMac: null, hostName, vendorClass: null, parameterList: [1, 3], requestedIp: null, clientIp: null, domainName: null };
}

describe('inventory', () => {
  it('drops the least recently seen device, and a sighting moves a device to the back', () => {
    const inventory = new Inventory(amazon, { maxDevices: 3, devices: {} });
    inventory.get(1, 1000);
    inventory.get(2, 2000);
    inventory.get(3, 3000);
    inventory.get(1, 4000); // 1 seen again: 2 is now the oldest
    inventory.get(4, 5000);
    expect(inventory.all().map((d) => d.mac).sort()).toEqual([1, 3, 4]);
    expect(inventory.stats).toEqual({ devices: 3, evicted: 1 });
  });

  it('a flood of forged MACs evicts no assistant and no configured device, and stays at its bound', () => {
    const inventory = new Inventory(amazon, { maxDevices: 64, devices: { '02:00:00:00:00:07': { name: 'Hall' } } });
    const echo = inventory.get(0x68dbf5901964, 0);
    echo.voiceServers.add('52.94.233.109:443');
    echo.dirty = true;
    inventory.get(0x020000000007, 0);
    for (let i = 0; i < 100_000; i++) inventory.observeDhcp(dhcp(`amazon-${i.toString(16).padStart(9, '0')}`), 0x68dbf5000000 + 0x100000 + i, 1 + i);
    expect(inventory.all()).toHaveLength(64);
    expect(inventory.find(0x68dbf5901964)?.assistant).toBe(true);
    expect(inventory.describe(0x020000000007)?.name).toBe('Hall');
    expect(inventory.stats.evicted).toBe(100_000 + 2 - 64);
    expect(inventory.all().filter((d) => d.assistant).map((d) => d.macText)).toEqual(['68:db:f5:90:19:64']);
  });

  it('a flood of forged assistants drops neither the assistant seen uploading audio nor a configured one, nor after a restart', () => {
    const flood = (inventory: Inventory, from: number) => {
      for (let i = 0; i < 1000; i++) {
        const mac = 0x68dbf5000000 + 0x100000 + i;
        inventory.observeDhcp(dhcp(`amazon-${i.toString(16).padStart(9, '0')}`), mac, from + i);
        // traffic to Amazon's voice service as well: each one is an assistant by the inventory's rules
        const forged = inventory.get(mac, from + i);
        forged.voiceServers.add('52.94.233.109:443');
        forged.dirty = true;
        inventory.all();
      }
    };
    const make = () => {
      const inventory = new Inventory(amazon, { maxDevices: 64, devices: { '68:db:f5:00:00:07': { name: 'Hall', assistant: true } } });
      const echo = inventory.get(0x68dbf5901964, 0);
      inventory.observeDhcp(dhcp('amazon-5f1e2d3c4'), 0x68dbf5901964, 0);
      echo.voiceServers.add('52.94.233.109:443');
      echo.dirty = true;
      inventory.get(0x68dbf5000007, 0);
      return inventory;
    };
    // without an upload, the Echo is the least recently seen assistant: the flood pushes it out
    const before = make();
    flood(before, 1);
    expect(before.find(0x68dbf5901964)).toBeUndefined();
    expect(before.describe(0x68dbf5000007)?.name).toBe('Hall');

    const inventory = make();
    inventory.markUploaded(0x68dbf5901964);
    flood(inventory, 1);
    expect(inventory.all()).toHaveLength(64);
    expect(inventory.find(0x68dbf5901964)?.assistant).toBe(true);
    expect(inventory.describe(0x68dbf5000007)?.name).toBe('Hall');
    // what it knew survives a restart (the state file), and so does its protection
    const saved = inventory.save();
    expect(saved.filter((d) => d.uploadedAudio === true).map((d) => d.mac)).toEqual(['68:db:f5:90:19:64']);
    const restarted = new Inventory(amazon, { maxDevices: 64, devices: {} });
    restarted.load(saved.filter((d) => d.mac === '68:db:f5:90:19:64'));
    flood(restarted, 10_000);
    expect(restarted.find(0x68dbf5901964)?.assistant).toBe(true);
    expect(restarted.find(0x68dbf5901964)?.dhcpHostName).toBe('amazon-5f1e2d3c4');
  });

  it('reads announcements from unknown MACs within a budget, from known devices always', () => {
    const inventory = new Inventory(amazon, { maxDevices: 4096, devices: {} });
    let admitted = 0;
    for (let i = 0; i < 10_000; i++) if (inventory.admitAnnouncement(0x68dbf5000000 + i, 1000)) admitted++;
    expect(admitted).toBe(ANNOUNCE_BURST);
    inventory.get(0x68dbf5ffffff, 1000);
    expect(inventory.admitAnnouncement(0x68dbf5ffffff, 1000)).toBe(true);
    // ten seconds of packet time later: ten seconds' worth
    admitted = 0;
    for (let i = 0; i < 10_000; i++) if (inventory.admitAnnouncement(0x68dbf5100000 + i, 11_000)) admitted++;
    expect(admitted).toBe(10 * ANNOUNCE_PER_SECOND);
  });
});
