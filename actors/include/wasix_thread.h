/*
 * wasix_thread.h: threads for a wasm32 guest under the wasi-threads ABI, built against a libc
 * without thread support (the stock wasi-libc). Include it in exactly one .c file: it defines
 * and exports wasi_thread_start.
 *
 * Build with shared, imported memory:
 *   -matomics -mbulk-memory -Wl,--shared-memory -Wl,--import-memory -Wl,--max-memory=<bytes>
 *   -Wl,--no-check-features
 * (--no-check-features lets wasm-ld put the non-atomic libc objects into a shared-memory module.)
 * wasm-ld then makes every data segment passive and adds a start function,
 * __wasm_init_memory, that copies them in and zeroes .bss once, guarded by an atomic flag in
 * memory: a thread's new instance finds the flag set and leaves live data alone.
 *
 * ABI:
 *   import wasi.thread-spawn (start_arg i32) -> i32   a new thread id (> 0), or < 0 on error
 *   export wasi_thread_start (tid i32, start_arg i32)
 * The host runs the new thread in a new instance of the module on the same memory and calls
 * wasi_thread_start(tid, start_arg); the thread ends when that returns. start_arg is a
 * struct wasix_thread *. A new instance's __stack_pointer starts at the main thread's initial
 * value, so wasi_thread_start first moves it to t->stack_top (inline `global.set
 * __stack_pointer`, before anything uses the stack), then calls t->fn(t, tid), then stores 0
 * into t->running: from then on the thread no longer touches its stack or *t, so the spawner may
 * reuse both. wasi_thread_start itself has no stack frame (it is checked on the built module:
 * its first instructions load t->stack_top and set the global).
 *
 * Spawned threads must not call into libc state that is not thread-safe: no malloc or stdio.
 * write(2) and read(2) on an fd are fine (a stack iovec and one import call), as are the string
 * functions; errno is a single global shared by all threads. There is no TLS.
 */
#ifndef WEFT_WASIX_THREAD_H
#define WEFT_WASIX_THREAD_H

#include <stdint.h>

#include "wasix.h"

__attribute__((import_module("wasi"), import_name("thread-spawn")))
int32_t wasi_thread_spawn(int32_t start_arg);

struct wasix_thread {
  uintptr_t stack_top; /* offset 0: the thread's initial __stack_pointer, 16-byte aligned */
  void (*fn)(struct wasix_thread *t, int32_t tid);
  void *arg;
  uint32_t running; /* set to 1 by the spawner; the thread stores 0 when it is done */
};

/* Starts t->fn(t, tid) on a new thread with its stack ending at t->stack_top. */
static inline int32_t wasix_thread_spawn(struct wasix_thread *t) {
  __atomic_store_n(&t->running, 1, __ATOMIC_SEQ_CST);
  int32_t tid = wasi_thread_spawn((int32_t)(uintptr_t)t);
  if (tid <= 0) __atomic_store_n(&t->running, 0, __ATOMIC_SEQ_CST);
  return tid;
}

__attribute__((noinline)) static void wasix_thread_run(struct wasix_thread *t, int32_t tid) {
  t->fn(t, tid);
}

__attribute__((export_name("wasi_thread_start"))) void wasi_thread_start(int32_t tid,
                                                                        struct wasix_thread *t) {
  __asm__ volatile("local.get %0\n\tglobal.set __stack_pointer" : : "r"(t->stack_top) : "memory");
  wasix_thread_run(t, tid);
  __atomic_store_n(&t->running, 0, __ATOMIC_RELEASE);
}

/* Blocks while *addr == expected (futex_wait with no timeout); wakeups may be spurious. */
static inline void wasix_futex_wait_forever(uint32_t *addr, uint32_t expected) {
  static const wasix_option_timestamp none = {0, 0};
  uint8_t woken;
  wasix_futex_wait(addr, expected, &none, &woken);
}

/* Wakes every thread waiting on addr. */
static inline void wasix_futex_wake_everyone(uint32_t *addr) {
  uint8_t woken;
  wasix_futex_wake_all(addr, &woken);
}

#endif /* WEFT_WASIX_THREAD_H */
