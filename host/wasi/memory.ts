/**
 * The guest's linear memory as seen by one context. Every import calls `refresh()` first: growth
 * (`memory.grow` in the guest, or `sbrk` in libc) detaches the old ArrayBuffer, so views must be
 * rebuilt whenever `memory.buffer` is a different object. Views are rebuilt only then, so a call
 * costs one getter and a comparison, not an allocation.
 *
 * Pointers and lengths arrive as signed i32; callers turn them into u32 with `>>> 0` and check
 * `ptr + len <= size` in doubles (no wrap-around) before touching memory, so an out-of-bounds
 * pointer is errno `fault`, never a RangeError from a typed array.
 */

const EMPTY = new ArrayBuffer(0);

export class GuestMemory {
  memory: WebAssembly.Memory | undefined = undefined;
  buffer: ArrayBufferLike = EMPTY;
  u8: Uint8Array = new Uint8Array(EMPTY);
  view: DataView = new DataView(EMPTY);
  /** Shared memories can't be handed to TextDecoder; such reads copy first. */
  shared = false;

  bind(memory: WebAssembly.Memory): void {
    this.memory = memory;
    this.refresh();
  }

  /** Re-read `memory.buffer`. Until a memory is bound, memory is empty: every pointer faults. */
  refresh(): void {
    const memory = this.memory;
    if (memory === undefined) return;
    const buffer = memory.buffer;
    if (buffer === this.buffer) return;
    this.buffer = buffer;
    this.u8 = new Uint8Array(buffer);
    this.view = new DataView(buffer);
    this.shared = typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer;
  }

  /** True when [ptr, ptr + len) lies inside memory. `ptr` and `len` are u32 values. */
  ok(ptr: number, len: number): boolean {
    return ptr + len <= this.u8.length;
  }

  /** Bytes [ptr, ptr + len) as a view (or a copy for shared memory), for decoding. */
  bytesForDecode(ptr: number, len: number): Uint8Array {
    const v = this.u8.subarray(ptr, ptr + len);
    return this.shared ? v.slice() : v;
  }
}
