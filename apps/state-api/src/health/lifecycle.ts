import { Injectable } from '@nestjs/common';

/**
 * Where the process is in its life. `draining` from the SIGTERM on:
 * /health/ready answers 503 so load balancers stop sending, while requests
 * are still served for SHUTDOWN_DRAIN_DELAY_MS; then the server closes.
 */
@Injectable()
export class Lifecycle {
  draining = false;
}
