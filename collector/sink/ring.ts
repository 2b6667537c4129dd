/**
 * The newest `max` items in arrival order, in bounded memory: once full, each new item replaces the
 * oldest, which is counted as dropped. The report and the API's recent flows keep what they show in it.
 */
export class NewestRing<T> {
  private readonly items: T[] = [];
  private start = 0;
  /** Items pushed out (or refused, with max 0). */
  dropped = 0;

  constructor(private readonly max: number) {}

  push(item: T): void {
    if (this.items.length < this.max) {
      this.items.push(item);
    } else if (this.max > 0) {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.max;
      this.dropped++;
    } else {
      this.dropped++;
    }
  }

  /** The items, oldest first (a new array). */
  toArray(): T[] {
    return this.start === 0 ? this.items.slice() : [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }
}
