/**
 * WASIX numbers and layouts the kernel reads and writes (`wasix_32v1`, wasm32), from the
 * WASIX reference: errnos beyond preview1's table, socket enums, flag bits, struct sizes.
 */
import type { GuestMemory } from '../wasi/memory.ts';
import type { SockAddr } from './net.ts';

/** Errnos a socket call may answer, beyond those `host/wasi/constants.ts` names. */
export const NetErrno = {
  addrinuse: 3,
  addrnotavail: 4,
  afnosupport: 5,
  again: 6,
  already: 7,
  connaborted: 13,
  connrefused: 14,
  connreset: 15,
  hostunreach: 23,
  inprogress: 26,
  isconn: 30,
  noprotoopt: 50,
  notconn: 53,
  notsock: 57,
  protonosupport: 66,
  prototype: 67,
  pipe: 64,
  timedout: 73,
  shutdown: 77,
} as const;

export const AddressFamily = { unspec: 0, inet4: 1, inet6: 2, unix: 3 } as const;
export const SockType = { stream: 1, dgram: 2 } as const;
/** `SOCK_NONBLOCK` / `SOCK_CLOEXEC` as wasix-libc passes them inside the socket type. */
export const SOCK_NONBLOCK = 0x4000;
export const SOCK_CLOEXEC = 0x2000;
export const Proto = { tcp: 6, udp: 17 } as const;

export const SockOption = {
  reuseAddr: 2,
  listening: 10,
  lastError: 11,
  recvBufSize: 15,
  sendBufSize: 16,
  recvTimeout: 19,
  sendTimeout: 20,
  connectTimeout: 21,
  acceptTimeout: 22,
  type: 25,
  proto: 26,
} as const;

export const SockStatus = { opening: 0, opened: 1, closed: 2, failed: 3 } as const;

/** `riflags`: peek, waitall, (data truncated), dont_wait. */
export const RI_PEEK = 1;
export const RI_WAITALL = 2;
export const RI_DONT_WAIT = 8;
/** `siflags`: dont_wait. */
export const SI_DONT_WAIT = 1;
/** `sdflags`. */
export const SHUT_RD = 1;
export const SHUT_WR = 2;
/** `fdflags.nonblock`. */
export const FDFLAG_NONBLOCK = 4;

export const ADDR_PORT_SIZE = 110;
export const ADDR_IP_SIZE = 18;
export const EPOLL_EVENT_SIZE = 32;
export const Epoll = {
  in: 1,
  out: 2,
  rdhup: 4,
  pri: 8,
  err: 16,
  hup: 32,
  et: 64,
  oneshot: 128,
} as const;
export const EpollCtl = { add: 0, mod: 1, del: 2 } as const;

/**
 * Read an `addr_port` (110 bytes: family u8, pad, then port u16 and the address). The port is
 * the numeric value as a little-endian u16, as wasix-libc and the WASIX Rust std write it.
 * Returns undefined for a family that isn't IPv4 or IPv6.
 */
export function readAddrPort(m: GuestMemory, ptr: number): SockAddr | undefined {
  const family = m.view.getUint8(ptr);
  const port = m.view.getUint16(ptr + 2, true);
  if (family === AddressFamily.inet4) {
    return { family, port, addr: m.u8.slice(ptr + 4, ptr + 8) };
  }
  if (family === AddressFamily.inet6) {
    return { family, port, addr: m.u8.slice(ptr + 4, ptr + 20) };
  }
  return undefined;
}

/** Write an `addr_port`, the port little-endian (the same as read; see `readAddrPort`). */
export function writeAddrPort(m: GuestMemory, ptr: number, a: SockAddr): void {
  m.u8.fill(0, ptr, ptr + ADDR_PORT_SIZE);
  m.view.setUint8(ptr, a.family);
  m.view.setUint16(ptr + 2, a.port, true);
  m.u8.set(a.addr, ptr + 4);
}

/** True for 127.0.0.0/8, ::1, and the unspecified addresses (which connect to this host). */
export function isLocal(a: SockAddr): boolean {
  if (a.family === AddressFamily.inet4) return a.addr[0] === 127 || a.addr.every((b) => b === 0);
  return a.addr.subarray(0, 15).every((b) => b === 0) && (a.addr[15] === 1 || a.addr[15] === 0);
}
