import { Module, type DynamicModule } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../state-api/src/config';
import { Metrics } from '../../state-api/src/metrics/metrics';
import { PersistenceModule } from '../../state-api/src/persistence/persistence.module';
import { privacyProviders } from '../../state-api/src/privacy/privacy.providers';
import { projectionProviders } from '../../state-api/src/projections/projections.providers';
import { ProjectorService } from './projector.service';

/** The projector on its own: the event store, the read models and the runner; no HTTP. */
@Module({})
export class ProjectorModule {
  static forRoot(config: AppConfig, databaseUrl: string): DynamicModule {
    return {
      module: ProjectorModule,
      imports: [
        {
          module: class ProjectorConfigModule {},
          global: true,
          providers: [{ provide: APP_CONFIG, useValue: config }, Metrics],
          exports: [APP_CONFIG, Metrics],
        },
        PersistenceModule.forRoot(databaseUrl),
      ],
      providers: [...projectionProviders, ...privacyProviders, ProjectorService],
    };
  }
}
