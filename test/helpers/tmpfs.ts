/**
 * A real small file system for disk-full tests: a tmpfs mounted by the test (root is needed, as here
 * and in CI), filled to the last byte by a filler file and freed again.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** True when this process may mount file systems (root). */
export function canMount(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export class Tmpfs {
  private constructor(readonly dir: string) {}

  /** Mounts a tmpfs of `sizeKB` on a new temporary directory. */
  static mount(sizeKB: number): Tmpfs {
    const dir = mkdtempSync(join(tmpdir(), 'earshot-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKB}k,mode=0755`, 'tmpfs', dir]);
    return new Tmpfs(dir);
  }

  private get filler(): string {
    return join(this.dir, '.filler');
  }

  /** Writes a filler file until the file system is full (ENOSPC); returns the bytes it took. */
  fill(): number {
    const fd = openSync(this.filler, 'a');
    const block = Buffer.alloc(4096, 0x61);
    let written = 0;
    try {
      for (;;) {
        try {
          written += writeSync(fd, block);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
      // the last partial block
      for (;;) {
        try {
          const n = writeSync(fd, block, 0, 1);
          if (n === 0) break;
          written += n;
        } catch {
          break;
        }
      }
    } finally {
      closeSync(fd);
    }
    return written;
  }

  /** Removes the filler: the space comes back. */
  free(): void {
    rmSync(this.filler, { force: true });
  }

  unmount(): void {
    try {
      execFileSync('umount', ['-l', this.dir]);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
