// The package's client: the one shared with the plain page (src/restock/web/static/client.js).
export * from '../../src/restock/web/static/client.js';
