/**
 * A WASIX kernel on a small shared memory, driven the way a guest drives it: arguments are
 * pointers into the memory, results come back through it. For the kernel's unit tests.
 */
import { Kernel, type KernelOptions } from '../../host/wasix/kernel.ts';

export function kernelHarness(opts: Partial<KernelOptions> = {}) {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
  const k = new Kernel({
    memory,
    args: ['t'],
    env: {},
    preopens: [],
    stdout: { write: () => undefined },
    stderr: { write: () => undefined },
    listenPorts: new Set([80]),
    pid: 42,
    onListen: () => undefined,
    onDenied: () => undefined,
    spawnThread: () => undefined,
    joinThread: () => Promise.resolve(),
    exit: () => undefined,
    ...opts,
  });
  const view = new DataView(memory.buffer);
  const u8 = new Uint8Array(memory.buffer);
  const call = (name: string, ...args: (number | bigint)[]) => k.call(name, args);
  const u32 = (p: number) => view.getUint32(p, true);
  /** Write an inet4 addr_port at 1000. */
  const addr = (port: number, ip = [0, 0, 0, 0]): number => {
    u8.fill(0, 1000, 1110);
    view.setUint8(1000, 1);
    view.setUint16(1002, port, true);
    u8.set(ip, 1004);
    return 1000;
  };
  return { k, memory, view, u8, call, u32, addr };
}
