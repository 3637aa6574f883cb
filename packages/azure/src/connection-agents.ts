// The HTTPS agents the SDK's requests go through. Node's agent prints the options of every
// request that opens a connection under NODE_DEBUG=http/https (`createConnection`), headers
// included, so the bearer token of any Key Vault call made while another is in flight reached
// stderr; it names pooled connections after the TLS options, so a client key in `tlsOptions`
// was printed as part of that name; and the SDK's log policy (AZURE_LOG_LEVEL=info, or DEBUG
// naming azure) prints each request's TLS settings, the client key included. These agents hold
// the TLS material in a secure context, and the SDK is not given it.
import type { ClientRequest } from 'node:http';
import { Agent } from 'node:https';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { inspect } from 'node:util';
import type { SecretClientOptions } from '@azure/keyvault-secrets';

type PipelinePolicy = NonNullable<SecretClientOptions['additionalPolicies']>[number]['policy'];
type AgentWithAddRequest = { addRequest(req: ClientRequest, options: Record<string, unknown>): void };

/** Agents by TLS settings and keep-alive; `destroy` closes their pooled connections. */
export class ConnectionAgents {
  #bySettings = new WeakMap<object, Map<boolean, Agent>>();
  readonly #plain = new Map<boolean, Agent>();
  readonly #all = new Set<Agent>();

  /**
   * A policy (to run after the SDK's proxy policy) that sends each HTTPS request without an
   * agent of its own through one of these agents, made with `tls`: the client's TLS options,
   * kept out of the SDK's options so that its log policy has none to print.
   */
  policy(tls: SecureContextOptions | undefined): PipelinePolicy {
    return {
      name: 'secretProviderConnectionAgent',
      sendRequest: (request, next) => {
        if (request.agent === undefined && request.url.startsWith('https:')) {
          request.agent = this.#agent(request.tlsSettings ?? tls, request.disableKeepAlive !== true);
        }
        return next(request);
      },
    };
  }

  destroy(): void {
    for (const agent of this.#all) agent.destroy();
    this.#all.clear();
    this.#plain.clear();
    this.#bySettings = new WeakMap();
  }

  #agent(settings: SecureContextOptions | undefined, keepAlive: boolean): Agent {
    let agents = this.#plain;
    if (settings !== undefined) {
      agents = this.#bySettings.get(settings) ?? new Map();
      this.#bySettings.set(settings, agents);
    }
    let agent = agents.get(keepAlive);
    if (agent === undefined) {
      agent = quietAgent(settings, keepAlive);
      agents.set(keepAlive, agent);
      this.#all.add(agent);
    }
    return agent;
  }
}

function quietAgent(settings: SecureContextOptions | undefined, keepAlive: boolean): Agent {
  const { ca, cert, key, pfx, passphrase } = settings ?? {};
  const material = Object.fromEntries(
    Object.entries({ ca, cert, key, pfx, passphrase }).filter(([, value]) => value !== undefined),
  );
  // The material goes into a secure context made here, not into the agent's options, which
  // Node prints as the pooled connection's name.
  const agent = new Agent({
    keepAlive,
    ...(Object.keys(material).length === 0 ? {} : { secureContext: createSecureContext(material) }),
  });
  // Printed requests and request options hold the agent; inspected deeply (or as JSON), its
  // pooled sockets lead to the headers of earlier requests.
  const label = 'Agent { secret-provider key vault agent }';
  Object.defineProperty(agent, inspect.custom, { value: () => label });
  Object.defineProperty(agent, 'toJSON', { value: () => label });
  const target = agent as unknown as AgentWithAddRequest;
  const original = target.addRequest.bind(agent);
  // The request already holds its headers; the agent needs only where to connect, and Node
  // prints what it is given.
  target.addRequest = (req, options) => {
    const { headers: _headers, ...connection } = options;
    original(req, connection);
  };
  return agent;
}
