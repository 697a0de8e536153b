import { Inject, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { Problem } from '../http/problem';
import { ApiKeyRing, type Principal, type Role } from './api-keys';

export const API_KEY_RING = Symbol('API_KEY_RING');
const PUBLIC = 'lorestore:public';
const ROLE = 'lorestore:role';

/** No key needed (health, metrics). */
export const Public = () => SetMetadata(PUBLIC, true);
/** The least role a route needs; `admin` may do everything `game` may. */
export const RequireRole = (role: Role) => SetMetadata(ROLE, role);

export type AuthenticatedRequest = FastifyRequest & { principal?: Principal };

/** The key of an `Authorization: Bearer <key>` header; null for any other header or none. */
export const bearerToken = (header: unknown): string | null => {
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match ? match[1]! : null;
};

/** The principal of a Bearer header whose key the ring knows; null for any other header or none. */
export const bearerPrincipal = (keys: ApiKeyRing, header: unknown): Principal | null => {
  const token = bearerToken(header);
  return token === null ? null : keys.authenticate(token);
};

@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(API_KEY_RING) private readonly keys: ApiKeyRing,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, targets)) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const token = bearerToken(request.headers.authorization);
    if (token === null) {
      throw new Problem(401, 'unauthorized', 'Unauthorized', 'send Authorization: Bearer <api key>', {}, { 'www-authenticate': 'Bearer' });
    }
    const principal = this.keys.authenticate(token);
    if (!principal) throw new Problem(401, 'unauthorized', 'Unauthorized', 'unknown API key', {}, { 'www-authenticate': 'Bearer' });
    const needed = this.reflector.getAllAndOverride<Role>(ROLE, targets) ?? 'game';
    if (needed === 'admin' && principal.role !== 'admin') {
      throw new Problem(403, 'forbidden', 'Forbidden', 'this route needs an API key with role admin');
    }
    request.principal = principal;
    return true;
  }
}
