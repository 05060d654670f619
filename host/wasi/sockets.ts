/**
 * `sock_*`. Contexts hold no sockets (network access comes through providers, not WASI), so every
 * open fd answers `notsock` and anything else `badf`, as POSIX does for a non-socket fd.
 */
import { Errno } from './constants.ts';
import type { WasiState } from './state.ts';

function notSocket(s: WasiState, fd: number): number {
  return s.fd(fd) === undefined ? Errno.badf : Errno.notsock;
}

export function sock_accept(s: WasiState, fd: number, _flags: number, _retFd: number): number {
  return notSocket(s, fd);
}

export function sock_recv(
  s: WasiState,
  fd: number,
  _riData: number,
  _riDataLen: number,
  _riFlags: number,
  _retDataLen: number,
  _retRoFlags: number,
): number {
  return notSocket(s, fd);
}

export function sock_send(
  s: WasiState,
  fd: number,
  _siData: number,
  _siDataLen: number,
  _siFlags: number,
  _retDataLen: number,
): number {
  return notSocket(s, fd);
}

export function sock_shutdown(s: WasiState, fd: number, _how: number): number {
  return notSocket(s, fd);
}
