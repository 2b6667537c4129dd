/**
 * bench/plots.mjs (the evidence figures of docs/detection.md) run into a temporary directory: both SVGs
 * parse as XML in a real browser's DOMParser, the scatter holds one mark per upload burst with the burst's
 * slots and bytes, and each timeline panel one bar per occupied 100-ms slot. The expected bursts and slots
 * are counted here from a tshark call of the test's own per capture (tshark's display filter picks the
 * upload packets; this file groups them), not from the script's output.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeNeeding, describeShared, PROJECT_ROOT, SHARED } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';

const CHROMIUM = '/usr/bin/chromium';
const SCRIPT = join(PROJECT_ROOT, 'bench/plots.mjs');
const CAPTURES = join(SHARED, 'captures');
const execFileP = promisify(execFile);

interface Capture { path: string; mac: string; set: 'cic' | 'vcfp' | 'dubois'; expectedVoice: number; exactVoice: boolean }
interface Burst { file: string; firstUs: number; slots: number; bytes: number }

function capturesToRead(): Capture[] {
  const cicLabels = JSON.parse(readFileSync(join(CAPTURES, 'cic-iot-2022-rebuilt/labels.json'), 'utf8')) as Array<{ dir: string; file: string; device_mac: string; expected_activations: number }>;
  const vcfpLabels = JSON.parse(readFileSync(join(CAPTURES, 'vcfp-haipeng/labels.json'), 'utf8')) as Array<{ file: string; echo_mac: string; commands: number }>;
  return [
    ...cicLabels.map((l) => ({ path: join(CAPTURES, 'cic-iot-2022-rebuilt', l.dir, l.file), mac: l.device_mac, set: 'cic' as const, expectedVoice: l.expected_activations, exactVoice: true })),
    // a vcfp command's upload can be split by a pause just over 1 s into two bursts: at least one each
    ...vcfpLabels.map((l) => ({ path: join(CAPTURES, 'vcfp-haipeng', l.file), mac: l.echo_mac, set: 'vcfp' as const, expectedVoice: l.commands, exactVoice: false })),
    { path: join(CAPTURES, 'real/amazon-echodot3_activation_neu.pcapng'), mac: '68:db:f5:90:19:64', set: 'dubois' as const, expectedVoice: 1, exactVoice: true },
  ];
}

// upload = the speaker's data frames to a public address, chosen by tshark's own filter language
const PUBLIC_DATA = '(tcp.len > 0 || udp) && ((ip && !(ip.dst == 10.0.0.0/8 || ip.dst == 172.16.0.0/12 || ip.dst == 192.168.0.0/16 || ip.dst == 100.64.0.0/10 || ip.dst == 127.0.0.0/8 || ip.dst == 169.254.0.0/16 || ip.dst == 224.0.0.0/3 || ip.dst == 0.0.0.0/8)) || (ipv6 && !(ipv6.dst == fc00::/7 || ipv6.dst == fe80::/10 || ipv6.dst == ff00::/8 || ipv6.dst == ::1)))';

/** The upload packets of one capture: [microseconds since the epoch, frame bytes], in time order. */
async function uploads(capture: Capture): Promise<Array<[number, number]>> {
  const { stdout } = await execFileP('tshark', ['-r', capture.path, '-n', '-Y', `eth.src == ${capture.mac} && ${PUBLIC_DATA}`, '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'frame.len'], { maxBuffer: 1 << 26 });
  const rows = stdout.split('\n').filter(Boolean).map((row): [number, number] => {
    const [time, len] = row.split('\t');
    const [seconds, fraction] = time.split('.');
    return [Number(seconds) * 1e6 + Number(fraction.slice(0, 6).padEnd(6, '0')), Number(len)];
  });
  return rows.sort((a, b) => a[0] - b[0]);
}

/** Bursts of >= 3 kB: runs with no gap over 1 s; slots = distinct 100-ms slots from the first packet. */
function bursts(file: string, packets: Array<[number, number]>): Burst[] {
  const out: Burst[] = [];
  let run: Array<[number, number]> = [];
  const close = () => {
    if (run.length === 0) return;
    const bytes = run.reduce((sum, [, len]) => sum + len, 0);
    const slots = new Set(run.map(([us]) => Math.floor((us - run[0][0]) / 100_000))).size;
    if (bytes >= 3000) out.push({ file, firstUs: run[0][0], slots, bytes });
    run = [];
  };
  for (const packet of packets) {
    if (run.length > 0 && packet[0] - run[run.length - 1][0] > 1_000_000) close();
    run.push(packet);
  }
  close();
  return out;
}

interface Parsed {
  errors: string[];
  root: string;
  marks: Array<{ file: string; startUs: number; slots: number; bytes: number; voice: boolean }>;
  panels: Array<{ file: string; startUs: number; voice: boolean; bars: number }>;
  thresholds: string[];
}

// runs in the page (a string: the project's TypeScript has no DOM types): the browser's XML parser, then
// the marks read through the DOM
const READ_SVG = `(text) => {
  const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
  const attr = (e, name) => e.getAttribute(name) ?? '';
  return {
    errors: [...doc.getElementsByTagName('parsererror')].map((e) => e.textContent ?? ''),
    root: doc.documentElement.localName,
    marks: [...doc.querySelectorAll('path.mark')].map((e) => ({ file: attr(e, 'data-file'), startUs: Number(attr(e, 'data-start-us')), slots: Number(attr(e, 'data-slots')), bytes: Number(attr(e, 'data-bytes')), voice: attr(e, 'data-voice') === 'true' })),
    panels: [...doc.querySelectorAll('g.panel')].map((e) => ({ file: attr(e, 'data-file'), startUs: Number(attr(e, 'data-start-us')), voice: attr(e, 'data-voice') === 'true', bars: e.querySelectorAll('rect.bar').length })),
    thresholds: [...doc.querySelectorAll('g.threshold')].map((e) => attr(e, 'data-key')),
  };
}`;

/** Parses an SVG with the browser's XML parser and reads its marks through the DOM. */
async function parseSvg(browser: Browser, svg: string): Promise<Parsed> {
  const page = await browser.newPage();
  try {
    return await page.evaluate<Parsed>(`(${READ_SVG})(${JSON.stringify(svg)})`);
  } finally {
    await page.close();
  }
}

const key = (file: string, startUs: number, slots: number, bytes: number) => `${basename(file)} ${startUs} ${slots} ${bytes}`;

describeShared('bench/plots.mjs: evidence figures from the labelled captures', () => {
  describeNeeding('figures parsed by chromium', existsSync(CHROMIUM), `${CHROMIUM} is missing (apt-get install chromium, or deploy/setup.sh)`, () => {
    const out = tempDir('earshot-plots-');
    let browser: Browser;
    let captures: Capture[];
    let packetsByFile: Map<string, Array<[number, number]>>;
    let expected: Burst[];
    let stdout: string;
    beforeAll(async () => {
      stdout = execFileSync(process.execPath, [SCRIPT, '--out', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      captures = capturesToRead();
      packetsByFile = new Map();
      // four tshark runs at a time: each spends most of its ~0.4 s starting up
      for (let i = 0; i < captures.length; i += 4) {
        const batch = captures.slice(i, i + 4);
        const read = await Promise.all(batch.map(uploads));
        batch.forEach((capture, j) => packetsByFile.set(basename(capture.path), read[j]));
      }
      expected = captures.flatMap((c) => bursts(basename(c.path), packetsByFile.get(basename(c.path)) ?? []));
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
    }, 240_000);
    afterAll(async () => {
      await browser?.close();
    });

    it('has a parser that does report a broken document (so "no errors" below means something)', async () => {
      const broken = await parseSvg(browser, '<svg xmlns="http://www.w3.org/2000/svg"><g><text>a & b</text></svg>');
      expect(broken.errors.length).toBeGreaterThan(0);
    });

    it('draws one mark per upload burst >= 3 kB, at its slots and bytes', async () => {
      const scatter = await parseSvg(browser, readFileSync(join(out, 'slots-vs-bytes.svg'), 'utf8'));
      expect(scatter.errors).toEqual([]);
      expect(scatter.root).toBe('svg');
      expect(expected.length).toBeGreaterThan(150);
      expect(scatter.marks.map((m) => key(m.file, m.startUs, m.slots, m.bytes)).sort()).toEqual(expected.map((b) => key(b.file, b.firstUs, b.slots, b.bytes)).sort());
      expect(scatter.thresholds).toEqual(['minStreamSlots']);
    });

    it('calls voice what the labels call voice, and nothing in the volume-change captures', async () => {
      const scatter = await parseSvg(browser, readFileSync(join(out, 'slots-vs-bytes.svg'), 'utf8'));
      for (const capture of captures) {
        const voice = scatter.marks.filter((m) => basename(m.file) === basename(capture.path) && m.voice).length;
        if (capture.exactVoice) expect(voice, capture.path).toBe(capture.expectedVoice);
        else expect(voice, capture.path).toBeGreaterThanOrEqual(capture.expectedVoice);
      }
    });

    it('draws one bar per occupied 100-ms slot in the 5 s after each panel\'s burst starts', async () => {
      const timelines = await parseSvg(browser, readFileSync(join(out, 'upload-timelines.svg'), 'utf8'));
      expect(timelines.errors).toEqual([]);
      expect(timelines.panels.map((p) => p.voice)).toEqual([true, true, true, true, false, false, false, false]);
      for (const panel of timelines.panels) {
        // the panel starts at the first packet of a burst found here
        expect(expected.some((b) => b.file === panel.file && b.firstUs === panel.startUs), panel.file).toBe(true);
        const slots = new Set((packetsByFile.get(panel.file) ?? [])
          .filter(([us]) => us >= panel.startUs && us < panel.startUs + 5_000_000)
          .map(([us]) => Math.floor((us - panel.startUs) / 100_000)));
        expect(panel.bars, panel.file).toBe(slots.size);
        expect(panel.bars, panel.file).toBeGreaterThan(0);
      }
    });

    it('prints a summary whose counts add up to the bursts', () => {
      const rows = stdout.split('\n').filter((line) => /^(voice|not voice) /.test(line));
      const total = rows.reduce((sum, line) => sum + Number(line.slice(31, 35)), 0);
      expect(total).toBe(expected.length);
      expect(rows.some((line) => line.includes('Nest Mini (CIC)'))).toBe(true);
    });

    it('gives the same bytes on a second run, and draws the thresholds it is given', async () => {
      const again = tempDir('earshot-plots-again-');
      const thresholds = join(again, 'thresholds.json');
      writeFileSync(thresholds, JSON.stringify({ minStreamSlots: 15, minStreamBytes: 20000, note: 'ignored' }));
      execFileSync(process.execPath, [SCRIPT, '--out', again], { stdio: 'ignore' });
      for (const name of ['upload-timelines.svg', 'slots-vs-bytes.svg']) expect(readFileSync(join(again, name), 'utf8'), name).toBe(readFileSync(join(out, name), 'utf8'));
      execFileSync(process.execPath, [SCRIPT, thresholds, '--out', again], { stdio: 'ignore' });
      const scatter = await parseSvg(browser, readFileSync(join(again, 'slots-vs-bytes.svg'), 'utf8'));
      expect(scatter.thresholds).toEqual(['minStreamBytes', 'minStreamSlots']);
    });

    it('answers bad thresholds with one line and exit 2', () => {
      const dir = tempDir('earshot-plots-bad-');
      const bad = join(dir, 'thresholds.json');
      writeFileSync(bad, '{ minStreamSlots: 12 ');
      const result = spawnSync(process.execPath, [SCRIPT, bad, '--out', dir], { encoding: 'utf8' });
      expect(result.status).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(bad);
    });
  });
});
