/**
 * The tree tells the design (docs/architecture.md): the pipeline and its sinks (collector/) import no
 * other top-level folder; the API (api/) and the dashboards read collector/; only the command line (cli/)
 * assembles them all. Read from every import in the sources (static and dynamic), tests left out.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from './helpers/shared.js';

const FOLDERS = ['cli', 'collector', 'api', 'dashboards'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** Every relative module a source imports, as the top-level folder it lies in. */
function importsOf(file: string): Array<{ spec: string; folder: string }> {
  const text = readFileSync(file, 'utf8');
  const out: Array<{ spec: string; folder: string }> = [];
  for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)'(\.{1,2}\/[^']+)'/g)) {
    const target = relative(PROJECT_ROOT, resolve(dirname(file), m[1]));
    out.push({ spec: m[1], folder: target.split('/')[0] });
  }
  return out;
}

const edges = new Map<string, Set<string>>(FOLDERS.map((f) => [f, new Set<string>()]));
const where = new Map<string, string>();
for (const folder of FOLDERS) {
  for (const file of sources(join(PROJECT_ROOT, folder))) {
    for (const { spec, folder: to } of importsOf(file)) {
      if (to === folder) continue;
      edges.get(folder)!.add(to);
      where.set(`${folder}->${to}`, `${relative(PROJECT_ROOT, file)} imports ${spec}`);
    }
  }
}

describe('the layout of the tree', () => {
  it('finds imports across folders (the scan sees them)', () => {
    // cli/ assembles the pipeline and the API: if this finds nothing, the scan is broken
    expect([...edges.get('cli')!].sort()).toEqual(['api', 'collector']);
  });

  it('collector/ imports no other top-level folder', () => {
    expect([...edges.get('collector')!].map((to) => where.get(`collector->${to}`))).toEqual([]);
  });

  it('no import cycle between top-level folders', () => {
    const cycles: string[] = [];
    const visit = (node: string, path: string[]) => {
      for (const next of edges.get(node) ?? []) {
        if (path.includes(next)) cycles.push([...path.slice(path.indexOf(next)), next].map((f, i, a) => (i + 1 < a.length ? where.get(`${f}->${a[i + 1]}`) : f)).join('; '));
        else visit(next, [...path, next]);
      }
    };
    for (const f of FOLDERS) visit(f, [f]);
    expect(cycles).toEqual([]);
  });
});
