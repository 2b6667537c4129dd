/**
 * Generates the configuration reference (docs/configuration.md) and the example config file
 * (deploy/earshot.example.yaml) from the schema, so they cannot drift from it.
 */
import { stringify } from 'yaml';
import { configKeys, ConfigSchema } from './config.js';

function defaultText(v: unknown): string {
  if (v === null) return 'unset';
  if (Array.isArray(v) && v.length === 0) return '[]';
  return `\`${JSON.stringify(v)}\``;
}

/** The Markdown configuration reference. */
export function configReference(): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- generated from collector/config.ts by `npm run docs:config`; do not edit -->',
    '',
    'earshot reads one YAML file (`--config FILE` or `EARSHOT_CONFIG`). Every key can also be set by an',
    'environment variable and by a command-line flag; flags win over the environment, which wins over the',
    'file. Unknown keys are rejected with a message naming them; an `EARSHOT_` variable that is no setting',
    'is named in a warning with the closest setting (and otherwise ignored). Lists are comma-separated in',
    'flags and environment variables. `EARSHOT_INFLUX_SPOOL_MAX_M_B` and `EARSHOT_API_BODY_LIMIT_K_B`, the',
    'names of two variables before, are still read.',
    '',
    '| key | flag | environment | default | description |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const k of configKeys()) {
    const choices = k.choices ? ` One of: ${k.choices.map((c) => `\`${c}\``).join(', ')}.` : '';
    lines.push(`| \`${k.path.join('.')}\` | \`--${k.flag}\` | \`${k.env}\` | ${defaultText(k.default)} | ${k.description}${choices} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** The example YAML file: every key at its default, with its description as a comment. */
export function exampleConfig(): string {
  const lines = [
    '# earshot configuration (generated from collector/config.ts by `npm run docs:config`).',
    '# Every key is shown with its default; delete what you do not change.',
    '',
  ];
  const walk = (schema: { properties: Record<string, unknown> }, indent: string) => {
    for (const [name, child] of Object.entries(schema.properties)) {
      const c = child as { type?: string; properties?: Record<string, unknown>; description?: string; default?: unknown };
      if (c.type === 'object' && c.properties) {
        lines.push(`${indent}${name}:`);
        walk(c as { properties: Record<string, unknown> }, `${indent}  `);
        continue;
      }
      if (c.description) lines.push(`${indent}# ${c.description}`);
      const value = stringify(c.default ?? null, { flow: true }).trim();
      lines.push(`${indent}${name}: ${value}`);
    }
  };
  walk(ConfigSchema, '');
  return `${lines.join('\n')}\n`;
}
