export * from '../redactor.js';
