/** Compiled fixture modules (`test/fixtures/actors/dist/<name>.wasm`), each compiled once. */
import { readFileSync } from 'node:fs';

const modules = new Map<string, WebAssembly.Module>();

export function loadFixture(name: string): WebAssembly.Module {
  let m = modules.get(name);
  if (m === undefined) {
    const url = new URL(`../fixtures/actors/dist/${name}.wasm`, import.meta.url);
    m = new WebAssembly.Module(readFileSync(url));
    modules.set(name, m);
  }
  return m;
}

export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
