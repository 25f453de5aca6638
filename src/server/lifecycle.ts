/**
 * The server's own state, apart from the index's: while `draining` (shutdown began), /health/ready answers 503
 * so load balancers stop sending requests, and responses ask keep-alive clients to reconnect elsewhere.
 */
export class Lifecycle {
  draining = false;
  readonly startedAt = Date.now();
}
