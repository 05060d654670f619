/** Tests start real nats-servers through the same code as `weft up`. */
export {
  startNatsServer,
  type NatsServerHandle,
  type NatsServerOptions,
} from '../../bin/nats-server.ts';
