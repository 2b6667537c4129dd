/**
 * A function's results remembered for the inputs that repeat (device MACs, names, services, tag values:
 * a home's few dozen), filled up to `maxEntries` and then left as it is. The inputs come from the
 * traffic, and a LAN that makes them up must not grow it; the frequent ones come early, the rest are
 * computed each time. `admit` leaves inputs out that seldom repeat (long text).
 */
export function fillOnceMemo<K, V>(compute: (key: K) => V, maxEntries: number, admit?: (key: K) => boolean): (key: K) => V {
  const kept = new Map<K, V>();
  return (key) => {
    let value = kept.get(key);
    if (value === undefined) {
      value = compute(key);
      if (kept.size < maxEntries && (admit === undefined || admit(key))) kept.set(key, value);
    }
    return value;
  };
}
