// Each HTTP exchange with Key Vault published on core's request channel, with the id Key Vault
// gives it (`x-ms-request-id`, in Azure's diagnostic logs) and the client's own
// (`x-ms-client-request-id`). Paths are reported as templates: a secret's name is a key, but
// versions and query strings are not repeated.
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import { traceRequest } from '@secret-provider/core/adapter';

type PipelinePolicy = NonNullable<SecretClientOptions['additionalPolicies']>[number]['policy'];

/** `/secrets/{name}/{version}` and the like, and what the request is for. */
export function requestShape(method: string, pathname: string): { target: string; operation: string } {
  const [collection = '', name, third] = pathname.split('/').slice(1);
  const parts = [`/${collection}`];
  if (name !== undefined && name !== '') parts.push('{name}');
  if (third === 'versions') parts.push('versions');
  else if (third !== undefined && third !== '') parts.push(third === 'recover' ? 'recover' : '{version}');
  const target = parts.join('/');
  const listing = name === undefined || name === '' || third === 'versions';
  const operation =
    method === 'GET'
      ? listing
        ? 'list'
        : 'read'
      : method === 'PUT'
        ? 'write'
        : method === 'DELETE'
          ? 'delete'
          : method === 'PATCH'
            ? 'update'
            : method.toLowerCase();
  return { target, operation };
}

/** The policy that publishes each try of each request (`perRetry`). */
export function requestTelemetryPolicy(provider: string): PipelinePolicy {
  return {
    name: 'secretProviderRequestTelemetry',
    sendRequest(request, next) {
      const { target, operation } = requestShape(request.method, new URL(request.url).pathname);
      return traceRequest({ provider, operation, method: request.method, target }, async (record) => {
        record.clientRequestId = request.requestId;
        try {
          const response = await next(request);
          record.status = response.status;
          record.correlationId = response.headers.get('x-ms-request-id') ?? undefined;
          return response;
        } catch (error) {
          const failed = error as {
            statusCode?: unknown;
            response?: { headers?: { get?(name: string): unknown } };
          };
          if (typeof failed.statusCode === 'number') record.status = failed.statusCode;
          const id = failed.response?.headers?.get?.('x-ms-request-id');
          if (typeof id === 'string') record.correlationId = id;
          throw error;
        }
      });
    },
  };
}
