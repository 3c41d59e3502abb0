import express, { Router } from 'express';
import { dirname } from 'node:path';
import type { Config } from '../../config';
import { openApiDocument } from '../openapi';

const SWAGGER_UI = dirname(require.resolve('swagger-ui-dist/package.json'));

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>APEX Portraits API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>`;

/** /openapi.json and an interactive page at /docs (Swagger UI served from the package, no CDN). */
export function docsRouter(config: Config): Router {
  const router = Router();
  const document = openApiDocument(config);
  router.get('/openapi.json', (_req, res) => void res.json(document));
  router.get('/docs', (_req, res) => void res.type('html').send(PAGE));
  router.get('/docs/init.js', (_req, res) =>
    void res.type('js').send("window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });"),
  );
  router.use('/docs/assets', express.static(SWAGGER_UI, { index: false }));
  return router;
}
