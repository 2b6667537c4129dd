/**
 * The check of a spooled batch read back from disk: the spool runs it at start and before each send, and
 * `earshot doctor` on every file, so a torn or flipped batch is set aside instead of sent.
 */
import { lazyBuiltin } from '../../builtins.js';

const zlib = lazyBuiltin<typeof import('node:zlib')>('node:zlib');

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Why a batch's bytes are not the batch its name promises, or null when they are: the gzip stream
 * decodes, the text is UTF-8 without NUL bytes (a torn write leaves zeros), and it holds `points` lines.
 */
export function batchProblem(body: Buffer, gzip: boolean, points: number): string | null {
  let text = body;
  if (gzip) {
    try {
      text = zlib().gunzipSync(body);
    } catch (err) {
      return `gzip does not decode (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
  }
  if (text.length === 0) return 'empty';
  if (text.includes(0)) return 'NUL bytes in the text (a torn write)';
  try {
    utf8.decode(text);
  } catch {
    return 'not UTF-8';
  }
  let lines = 1;
  for (let i = text.indexOf(0x0a); i >= 0; i = text.indexOf(0x0a, i + 1)) lines++;
  if (lines !== points) return `${lines} lines where its name says ${points}`;
  return null;
}
