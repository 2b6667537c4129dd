/**
 * The Home Assistant blueprint (deploy/homeassistant/): its YAML parses with Home Assistant's !input
 * tag, every !input it uses is declared (and every declared one used), and its templates, rendered by
 * Jinja2 itself (Python's, the engine Home Assistant runs; `to_json` added as Home Assistant defines
 * it), turn a sample Alexa Media Player state into a payload that earshot's own MQTT wake parser
 * accepts. Then the rendered payload goes through a real mosquitto into `earshot collect` on a real
 * capture, stamped seconds after the upload as Amazon stamps it, and confirms that upload.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseWakePayload } from '../collector/sink/mqtt/wake-payload.js';
import type { ReportActivation } from '../collector/sink/report.js';
import { startCollect, type CollectRun } from './helpers/collect.js';
import { describeMosquitto, Mosquitto } from './helpers/mosquitto.js';
import { describeNeeding, PROJECT_ROOT, VCFP_CAPTURES, haveShared } from './helpers/shared.js';
import { until, untilValue } from './helpers/wait.js';

const BLUEPRINT = join(PROJECT_ROOT, 'deploy/homeassistant/earshot-alexa-last-called.yaml');

/** `!input name` as the YAML parser gives it back. */
class InputRef {
  constructor(readonly name: string) {}
}

interface Blueprint {
  blueprint: { domain: string; input: Record<string, { default?: unknown; selector: Record<string, unknown> }> };
  triggers: Array<Record<string, unknown>>;
  variables: Record<string, unknown>;
  conditions: Array<{ condition: string; value_template: string }>;
  actions: Array<{ action: string; data: Record<string, unknown> }>;
}

function loadBlueprint(): Blueprint {
  return parse(readFileSync(BLUEPRINT, 'utf8'), { customTags: [{ tag: '!input', resolve: (name: string) => new InputRef(name) }] }) as Blueprint;
}

function inputRefs(value: unknown, found: string[] = []): string[] {
  if (value instanceof InputRef) found.push(value.name);
  else if (Array.isArray(value)) for (const v of value) inputRefs(v, found);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) inputRefs(v, found);
  return found;
}

// Jinja2 in a sandbox, as Home Assistant renders templates; to_json is Home Assistant's filter (JSON text)
const RENDER = `
import json, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment
job = json.load(sys.stdin)
env = ImmutableSandboxedEnvironment()
env.filters['to_json'] = lambda value: json.dumps(value)
print(json.dumps([env.from_string(t).render(**job['context']) for t in job['templates']]))
`;
const python = spawnSync('python3', ['-c', 'import jinja2'], { stdio: 'ignore' });
const haveJinja = python.status === 0;

function render(templates: string[], context: Record<string, unknown>): string[] {
  const r = spawnSync('python3', ['-c', RENDER], { input: JSON.stringify({ templates, context }), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`jinja2: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

/** A state of an Alexa Media Player media player (the integration's extra_state_attributes). */
function echoState(timestamp: number | null, name = 'Kitchen Echo') {
  return { attributes: { friendly_name: name, last_called: true, last_called_timestamp: timestamp, last_called_summary: 'alexa what time is it', available: true } };
}

/** The three templates of the blueprint rendered for one trigger: condition, topic, payload. */
function renderFor(blueprint: Blueprint, trigger: Record<string, unknown>, inputs: Record<string, unknown> = {}) {
  const value = (name: string) => (name in inputs ? inputs[name] : blueprint.blueprint.input[name].default);
  // the automation's variables, with their !input resolved as Home Assistant does
  const variables = Object.fromEntries(Object.entries(blueprint.variables).map(([key, v]) => [key, v instanceof InputRef ? value(v.name) : v]));
  const [condition, topic, payload] = render([blueprint.conditions[0].value_template, String(blueprint.actions[0].data.topic), String(blueprint.actions[0].data.payload)], { ...variables, trigger });
  return { condition: condition.trim(), topic, payload };
}

const T = Date.parse('2024-05-01T10:00:00.123Z');

describeNeeding('the Home Assistant blueprint', haveJinja, 'python3 with jinja2 (apt-get install python3-jinja2), the template engine Home Assistant runs', () => {
  it('parses, and uses exactly the inputs it declares', () => {
    const blueprint = loadBlueprint();
    expect(blueprint.blueprint.domain).toBe('automation');
    const declared = Object.keys(blueprint.blueprint.input).sort();
    const used = [...new Set(inputRefs({ ...blueprint, blueprint: undefined }))].sort();
    expect(used).toEqual(declared);
    expect(blueprint.triggers).toEqual([{ trigger: 'state', entity_id: new InputRef('echo_players'), attribute: 'last_called_timestamp' }]);
    expect(blueprint.actions.map((a) => a.action)).toEqual(['mqtt.publish']);
    expect(blueprint.blueprint.input.echo_players.selector).toEqual({ entity: { multiple: true, filter: [{ integration: 'alexa_media', domain: 'media_player' }] } });
  });

  it('renders a wake event that earshot\'s MQTT parser takes: Amazon\'s time, the mapped MAC, the source; never the words', () => {
    const blueprint = loadBlueprint();
    const trigger = { entity_id: 'media_player.kitchen_echo', from_state: echoState(T - 60_000), to_state: echoState(T) };
    const { condition, topic, payload } = renderFor(blueprint, trigger, { device_map: { 'media_player.kitchen_echo': 'AA-BB-CC-DD-EE-01' } });
    expect(condition).toBe('True');
    expect(topic).toBe('earshot/wake');
    expect(payload).not.toContain('what time');
    expect(parseWakePayload(Buffer.from(payload))).toEqual({ events: [{ time: T, device: 'aa:bb:cc:dd:ee:01', source: 'alexa-media-player' }], problems: [] });

    // mapped by the Echo's name; not mapped at all: the name goes, for earshot's device names
    const byName = renderFor(blueprint, { ...trigger, to_state: echoState(T, 'Living Room Dot') }, { device_map: { 'Living Room Dot': '0c:47:c9:00:00:02' }, source: 'ha' });
    expect(parseWakePayload(Buffer.from(byName.payload)).events).toEqual([{ time: T, device: '0c:47:c9:00:00:02', source: 'ha' }]);
    const unmapped = renderFor(blueprint, trigger, { device_map: null, wake_topic: 'home/earshot/wake' });
    expect(unmapped.topic).toBe('home/earshot/wake');
    expect(parseWakePayload(Buffer.from(unmapped.payload)).events).toEqual([{ time: T, device: 'Kitchen Echo', source: 'alexa-media-player' }]);
  });

  it('stays quiet when Home Assistant starts, when the time stamp did not change, or has none', () => {
    const blueprint = loadBlueprint();
    const quiet = [
      { entity_id: 'media_player.kitchen_echo', from_state: null, to_state: echoState(T) },
      { entity_id: 'media_player.kitchen_echo', from_state: echoState(T), to_state: echoState(T) },
      { entity_id: 'media_player.kitchen_echo', from_state: echoState(T), to_state: echoState(null) },
      { entity_id: 'media_player.kitchen_echo', from_state: echoState(T), to_state: null },
    ];
    for (const trigger of quiet) expect(render([blueprint.conditions[0].value_template], { trigger })[0].trim()).toBe('False');
  });
});

interface Label { file: string; echo_mac: string; reference_bursts: Array<{ start_epoch_s: number }>; reference_agrees_with_commands: boolean }

describeMosquitto('the blueprint\'s wake event through mosquitto into earshot collect (real capture)', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await Mosquitto.start();
  });
  afterAll(async () => {
    await broker?.close();
  });

  // stamped 3 s after the upload began, as Amazon stamps a request's record (docs/homeassistant.md)
  async function verdictWith(windowAfterS: string | null, prefix: string): Promise<{ match: ReportActivation; others: ReportActivation[] }> {
    const labels = JSON.parse(readFileSync(join(VCFP_CAPTURES, 'labels.json'), 'utf8')) as Label[];
    const label = labels.find((l) => l.reference_agrees_with_commands)!;
    const startMs = label.reference_bursts[1].start_epoch_s * 1000;
    const blueprint = loadBlueprint();
    const trigger = { entity_id: 'media_player.kitchen_echo', from_state: echoState(startMs - 60_000), to_state: echoState(startMs + 3000) };
    const { topic, payload } = renderFor(blueprint, trigger, { device_map: { 'media_player.kitchen_echo': label.echo_mac }, wake_topic: `${prefix}/wake` });
    const flags = ['--mqtt-url', broker.url, '--mqtt-prefix', prefix, '--mqtt-discovery', 'false', ...(windowAfterS === null ? [] : ['--wake-window-after', windowAfterS])];
    const run: CollectRun = await startCollect(join(VCFP_CAPTURES, label.file), flags);
    const client = await mqtt.connectAsync(broker.url, { clientId: `${prefix}-ha` });
    try {
      await until('the end of the capture', () => run.stderr().includes('capture ended; the API keeps serving'), 60_000, 50);
      await until('MQTT connected', () => run.stderr().includes('MQTT: connected'), 20_000, 50);
      // the event arrives after the upload has ended and been decided: a late wake event re-decides it
      await client.publishAsync(topic, payload, { qos: 1 });
      const activations = await untilValue('the verdicts after the wake event', async () => {
        const all = ((await (await fetch(`${run.base}/api/v1/activations`)).json()) as { activations: ReportActivation[] }).activations;
        return all.every((a) => a.verdict !== 'unverified') ? all : null;
      }, 20_000);
      const match = activations.find((a) => Math.abs(Date.parse(a.start) - startMs) <= 2000)!;
      return { match, others: activations.filter((a) => a !== match) };
    } finally {
      await client.endAsync();
      expect(await run.stop()).toBe(0);
    }
  }

  it.runIf(haveJinja && haveShared())('with detect.wakeWindowAfterS 10 it confirms its upload; with the default 2 s it cannot', async () => {
    const wide = await verdictWith('10', 'ha-wide');
    expect([wide.match.verdict, wide.match.reasons.includes('wake-event:alexa-media-player')]).toEqual(['confirmed', true]);
    for (const a of wide.others) expect([a.verdict, a.reasons.includes('no-wake-event')]).toEqual(['suspected', true]);
    const narrow = await verdictWith(null, 'ha-narrow');
    expect([narrow.match.verdict, narrow.match.reasons.includes('no-wake-event')]).toEqual(['suspected', true]);
  }, 120_000);
});
