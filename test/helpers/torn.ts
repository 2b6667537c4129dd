/** What a power cut (or an owner's `touch`) can leave of a file that was being written, and a directory in its place. */
import { mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';

export const TORN: Readonly<Record<string, (path: string) => void>> = {
  truncated: (path) => truncateSync(path, Math.floor(readFileSync(path).length / 2)),
  'zero-filled': (path) => writeFileSync(path, Buffer.alloc(readFileSync(path).length)),
  'NUL-padded': (path) => writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.alloc(4096)])),
  emptied: (path) => writeFileSync(path, ''),
  'a directory': (path) => {
    rmSync(path);
    mkdirSync(path);
  },
};
