/**
 * Least-recently-used cache of a request word's cosines with every profile word. Requests repeat
 * the same words (Zipf's law), and these rows are most of the cost of classifying, so a few
 * thousand cached words skip most of the arithmetic. Rows belong to one profile index: the
 * classifier makes a new cache whenever the profiles change.
 */
export class SimilarityCache {
  private readonly rows = new Map<string, Float32Array>();
  private readonly capacity: number;

  /** Holds at most `maxBytes` of rows of `rowLength` floats. */
  constructor(maxBytes: number, rowLength: number) {
    this.capacity = rowLength === 0 ? 0 : Math.floor(maxBytes / (4 * rowLength));
  }

  get(word: string): Float32Array | undefined {
    const row = this.rows.get(word);
    if (row) {
      this.rows.delete(word);
      this.rows.set(word, row);
    }
    return row;
  }

  set(word: string, row: Float32Array): void {
    if (this.capacity === 0) return;
    if (this.rows.size >= this.capacity) {
      const oldest = this.rows.keys().next();
      if (!oldest.done) this.rows.delete(oldest.value);
    }
    this.rows.set(word, row);
  }
}
