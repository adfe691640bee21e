/**
 * An undo log for "a refused step changes nothing": record what a step may change before it
 * changes it, then either keep the changes (`commit`) or put everything back (`rollback`).
 *
 * ```ts
 * const tx = new Transaction();
 * for (const p of params) tx.saveArray(p.data);  // a copy now; written back on rollback
 * tx.saveEntries(state);                          // state's entries (shallow); keys added later are deleted
 * tx.saveEntry(states, param);                    // a Map key (or object key): restored, or deleted if absent
 * tx.onRollback(() => (plans = []));              // any other undo action
 * try { step(); tx.commit(); } catch (e) { tx.rollback(); throw e; }
 * // or: Transaction.run((tx) => { ...save...; step(); });
 * ```
 *
 * Guarantees:
 * - `rollback()` runs the undo actions newest first, so when one thing is saved twice the
 *   oldest snapshot wins. A typed array gets its saved bytes back bit for bit (NaN payloads and
 *   -0 included: a same-type `set` copies bytes), into the same array object.
 * - Snapshots are taken when `save*` is called: save before the first write.
 * - `saveEntry`/`saveEntries` are shallow: they restore which value an entry holds, not what is
 *   inside that value. Something changed in place (a typed array written into, a list pushed
 *   to) needs its own `saveArray`. The key order of an object or Map is not restored.
 * - Both `commit()` and `rollback()` empty the log; the transaction can then be used again.
 *   Calling either on an empty log does nothing.
 */
export class Transaction {
  private readonly undo: Array<() => void> = [];

  /** Undo actions recorded since the last commit or rollback (0: nothing to undo). */
  get size(): number {
    return this.undo.length;
  }

  /**
   * Copies `a` now; `rollback()` writes the copy back into `a` itself (bit for bit for a typed
   * array; a plain array gets its length and elements back, holes included). Returns `a`.
   */
  saveArray<A extends TypedArray | unknown[]>(a: A): A {
    if (Array.isArray(a)) {
      const copy = a.slice();
      this.undo.push(() => {
        a.length = copy.length;
        for (let i = 0; i < copy.length; i++) {
          if (i in copy) a[i] = copy[i];
          else delete a[i];
        }
      });
    } else {
      const t = a as TypedArray;
      const copy = t.slice();
      this.undo.push(() => (t.set as (src: TypedArray) => void)(copy));
    }
    return a;
  }

  /**
   * Remembers the value held at `key` of an object or a Map (or that there is none);
   * `rollback()` puts that value back, or deletes the key when it had none.
   */
  saveEntry<K, V>(map: Map<K, V>, key: K): void;
  saveEntry<O extends object>(obj: O, key: keyof O): void;
  saveEntry(target: object, key: unknown): void {
    if (target instanceof Map) {
      const had = target.has(key);
      const value: unknown = target.get(key);
      this.undo.push(() => (had ? target.set(key, value) : target.delete(key)));
      return;
    }
    const obj = target as Record<PropertyKey, unknown>;
    const k = key as PropertyKey;
    const had = Object.prototype.hasOwnProperty.call(obj, k);
    const value = obj[k];
    this.undo.push(() => {
      if (had) obj[k] = value;
      else delete obj[k];
    });
  }

  /**
   * Remembers every own enumerable entry of `obj` (shallow); `rollback()` deletes the keys added
   * since and puts the saved values back.
   */
  saveEntries(obj: object): void {
    const o = obj as Record<string, unknown>;
    const saved = Object.entries(o);
    const keys = new Set(Object.keys(o));
    this.undo.push(() => {
      for (const k of Object.keys(o)) if (!keys.has(k)) delete o[k];
      for (const [k, v] of saved) o[k] = v;
    });
  }

  /** Registers an undo action of any kind; run by `rollback()` in reverse order of registration. */
  onRollback(fn: () => void): void {
    this.undo.push(fn);
  }

  /** Undoes everything recorded, newest first, and empties the log. */
  rollback(): void {
    const undo = this.undo;
    for (let i = undo.length - 1; i >= 0; i--) undo[i]();
    undo.length = 0;
  }

  /** Keeps the changes: drops the snapshots. */
  commit(): void {
    // Setting an array's length is a runtime call: skipped when there is nothing to drop (a
    // step commits twice, usually with nothing recorded).
    if (this.undo.length !== 0) this.undo.length = 0;
  }

  /**
   * Runs `body` with a fresh transaction: commits when it returns, rolls back and rethrows when
   * it throws. `body` may itself `rollback()` (to return with nothing changed) or `commit()`.
   */
  static run<R>(body: (tx: Transaction) => R): R {
    const tx = new Transaction();
    let result: R;
    try {
      result = body(tx);
    } catch (e) {
      tx.rollback();
      throw e;
    }
    tx.commit();
    return result;
  }
}

/** The typed arrays `saveArray` restores. */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;
