/**
 * The lattice floor for `npm run bench`: a responder that answers invocations of one actor name
 * with a fixed hello reply, in JavaScript, with no Wasm, no worker and no HTTP behind it. Through
 * the gateway it measures what the gateway and NATS alone cost per request, the ceiling that no
 * actor can pass.
 *   node bench/floor.ts NATS_URL LATTICE ACTOR
 */
import { connectLattice, type InvokeReply } from '../lattice/index.ts';

const [servers, lattice, actor] = process.argv.slice(2);
if (!servers || !lattice || !actor) {
  process.stderr.write('usage: node bench/floor.ts NATS_URL LATTICE ACTOR\n');
  process.exit(2);
}
const client = await connectLattice({ servers, lattice, name: 'weft-bench-floor' });
const hostId = `floor-${process.pid}`;
const body = new TextEncoder().encode('Hello, bench!\n');
const reply = (): InvokeReply => ({
  head: { status: 200, headers: [['content-type', 'text/plain; charset=utf-8']] },
  body,
  hostId,
  timing: { startUs: 0, runUs: 0 },
});
client.serve(client.subjects.rpc(actor), reply, { queue: actor, ack: hostId });
client.serve(client.subjects.rpcHost(actor, hostId), reply, { ack: hostId });
await client.nc.flush();
process.stdout.write(`floor ready: ${actor}\n`);
process.on('SIGTERM', () => void client.close().then(() => process.exit(0)));
