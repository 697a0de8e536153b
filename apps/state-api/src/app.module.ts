import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { CqrsModule } from '@nestjs/cqrs';
import { TerminusModule } from '@nestjs/terminus';
import { LoggerModule } from 'nestjs-pino';
import { AdminAutoscaleController } from './admin/admin-autoscale.controller';
import { AdminProjectionsController } from './admin/admin-projections.controller';
import { AdminReplayController } from './admin/admin-replay.controller';
import { ApiKeyRing } from './auth/api-keys';
import { API_KEY_RING, ApiKeyGuard } from './auth/auth.guard';
import { AggregateCache } from './commands/aggregate-cache';
import { CommandsController } from './commands/commands.controller';
import { ExecuteCommandHandler } from './commands/execute-command';
import { APP_CONFIG, type AppConfig } from './config';
import { HealthController } from './health/health.controller';
import { Lifecycle } from './health/lifecycle';
import { MemoryController } from './memory/memory.controller';
import { ProblemFilter } from './http/problem.filter';
import { Metrics } from './metrics/metrics';
import { PersistenceModule } from './persistence/persistence.module';
import { PrivacyController } from './privacy/privacy.controller';
import { privacyProviders } from './privacy/privacy.providers';
import { PrivacyService } from './privacy/privacy.service';
import { projectionProviders } from './projections/projections.providers';
import { ProjectionsService } from './projections/projections.service';
import { replayProviders } from './replay/replay.providers';
import { GetEntityHandler, ListEntitiesHandler } from './queries/entity.queries';
import { GetPlayerHandler, GetPlayerHistoryHandler } from './queries/player.queries';
import { QueriesController } from './queries/queries.controller';
import { ReadModels } from './queries/read-models';
import { StateReader } from './queries/state-reader';
import { GetStreamEventsHandler } from './queries/stream.queries';
import { GetNarrativeHandler, GetWorldStateHandler } from './queries/world.queries';

const commandHandlers = [ExecuteCommandHandler];
const queryHandlers = [
  GetEntityHandler,
  ListEntitiesHandler,
  GetWorldStateHandler,
  GetNarrativeHandler,
  GetPlayerHandler,
  GetPlayerHistoryHandler,
  GetStreamEventsHandler,
];

/** What main.ts (or a test) resolved before Nest starts: config, the database to use, the keys. */
export type AppRuntime = { config: AppConfig; databaseUrl: string; keys: ApiKeyRing };

@Module({})
export class AppModule {
  static forRoot(runtime: AppRuntime): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CqrsModule.forRoot(),
        TerminusModule,
        LoggerModule.forRoot({
          pinoHttp: {
            level: runtime.config.LOG_LEVEL,
            autoLogging: runtime.config.LOG_REQUESTS,
            redact: ['req.headers.authorization'],
          },
          // Without request logs, no logger middleware on any route: an excluded route still ran the
          // middleware engine's matching on every request (3–4 % of a GET's CPU in a profile).
          ...(runtime.config.LOG_REQUESTS ? {} : { forRoutes: [] }),
        }),
        {
          module: class ConfigModule {},
          global: true,
          providers: [{ provide: APP_CONFIG, useValue: runtime.config }, Metrics],
          exports: [APP_CONFIG, Metrics],
        },
        PersistenceModule.forRoot(runtime.databaseUrl),
      ],
      controllers: [CommandsController, QueriesController, MemoryController, AdminProjectionsController, AdminReplayController, AdminAutoscaleController, PrivacyController, HealthController],
      providers: [
        { provide: API_KEY_RING, useValue: runtime.keys },
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_FILTER, useClass: ProblemFilter },
        StateReader,
        Lifecycle,
        AggregateCache,
        ...projectionProviders,
        ...privacyProviders,
        PrivacyService,
        ...replayProviders,
        ProjectionsService,
        ReadModels,
        ...commandHandlers,
        ...queryHandlers,
      ],
    };
  }
}
