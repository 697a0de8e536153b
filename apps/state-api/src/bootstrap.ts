import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import { NestFactory } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import { AppModule, type AppRuntime } from './app.module';
import type { ApiKeyRing } from './auth/api-keys';
import { API_KEY_RING, bearerPrincipal } from './auth/auth.guard';
import { installFastReads } from './http/fast-reads';
import { Problem } from './http/problem';
import { sendProblem, toProblem } from './http/problem.filter';
import { Metrics } from './metrics/metrics';
import { GetEntityHandler } from './queries/entity.queries';

/**
 * Builds the HTTP application (without listening), the same way for main.ts and the e2e tests.
 * `docsUi: false` serves /docs/json without the Swagger UI page: the UI's assets
 * are loaded through a dynamic import() that Jest's module sandbox cannot do.
 */
export const createApp = async (runtime: AppRuntime, options: { logger?: boolean; docsUi?: boolean } = {}): Promise<NestFastifyApplication> => {
  const adapter = new FastifyAdapter({
    bodyLimit: runtime.config.BODY_LIMIT_BYTES,
    trustProxy: true,
    // Room for the longest id a route takes (a stream name is up to 108 characters). Under
    // routerOptions: Fastify 5 deprecates the top-level option (FSTDEP022, printed at every start).
    routerOptions: { maxParamLength: 256 },
    // Errors of the router itself (a malformed %-escape, a path parameter over the limit): problem+json too.
    frameworkErrors: (error: Error, _request: FastifyRequest, reply: FastifyReply) => {
      const status = (error as { statusCode?: number }).statusCode ?? 400;
      sendProblem(reply, toProblem(error) ?? new Problem(status, 'bad-request', 'Bad request', error.message));
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(runtime), adapter, {
    bufferLogs: true,
    abortOnError: false,
    logger: options.logger === false ? false : undefined,
  });
  if (options.logger !== false) app.useLogger(app.get(Logger));
  const fastify = app.getHttpAdapter().getInstance();

  // Per-key rate limit: a fixed window per API key (a hash of it), or per client address without
  // one. Counted in this process: N instances allow N times the limit, and no Redis sits on the
  // write path. Health and metrics are exempt (probes and scrapes must always get through).
  if (runtime.config.RATE_LIMIT_MAX > 0) {
    await app.register(rateLimit, {
      max: runtime.config.RATE_LIMIT_MAX,
      timeWindow: runtime.config.RATE_LIMIT_WINDOW_MS,
      cache: 100_000,
      keyGenerator: (request) => {
        const auth = request.headers.authorization;
        if (typeof auth !== 'string' || auth === '') return `ip:${request.ip}`;
        // A known key by its key id (the ring remembers accepted keys: no hashing per request);
        // anything else by a hash of the header, as before (it gets its 401 after this).
        const principal = bearerPrincipal(runtime.keys, auth);
        return principal ? `key:${principal.keyId}` : `key:${createHash('sha256').update(auth).digest('base64url').slice(0, 22)}`;
      },
      allowList: (request) => request.url.startsWith('/health/') || request.url === '/metrics',
      errorResponseBuilder: (_request, context) =>
        new Problem(429, 'rate-limited', 'Too many requests', `more than ${context.max} requests within ${context.after} for this API key; retry after the window`, {
          limit: context.max,
          windowMs: runtime.config.RATE_LIMIT_WINDOW_MS,
        }),
    });
  }


  const metrics = app.get(Metrics);
  fastify.addHook('onResponse', (request, reply, done) => {
    metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('lorestore')
      .setDescription('Event-sourced game state: commands, queries, replay. Errors are application/problem+json.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, document, {
    jsonDocumentUrl: 'docs/json',
    yamlDocumentUrl: 'docs/yaml',
    swaggerUiEnabled: options.docsUi ?? true,
  });
  // Before init: that is when Nest registers its routes, and the hook wraps one of them.
  installFastReads(fastify, () => ({ keys: app.get<ApiKeyRing>(API_KEY_RING), entities: app.get(GetEntityHandler) }));
  await app.init();
  return app;
};
