export {
  type ConsulAclConfig,
  ConsulDouble,
  type ConsulDoubleOptions,
  type ConsulEntry,
  type ConsulFault,
  type ConsulKeyRule,
  type ConsulRequestLogEntry,
  parseGoDuration,
} from './consul-double.js';
