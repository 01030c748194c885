# The warm platform: kvarc's own function host, one image for the HTTP hosts and
# the consumer hosts (compose/kvarc-stack.yml picks the entry point).
#   docker build -f containers/platform.Dockerfile -t kvarc-platform .
# Build context: the repository root. Only what the build reads is copied, so no
# .dockerignore is needed and a local build/ or node_modules never leaks in.

# Build stage: every dependency, the sources, `npm run build`.
FROM node:22-slim AS build

WORKDIR /app
RUN chown node:node /app
USER node

# Dependencies first: this layer is reused until package-lock.json changes.
# No install scripts: esbuild finds its platform binary package without its
# postinstall step, and nothing else the build uses needs one.
COPY --chown=node:node package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY --chown=node:node app.arc tsconfig.json ./
COPY --chown=node:node src ./src
COPY --chown=node:node types ./types
COPY --chown=node:node runtime ./runtime
COPY --chown=node:node ops ./ops
COPY --chown=node:node plugins ./plugins
COPY --chown=node:node scripts ./scripts
COPY --chown=node:node public ./public
# The functions' bundles (the same ones sandbox and arc deploy run) and the
# hosts' own: build/ops/http-host-main.mjs, consumer-host-main.mjs, status.mjs,
# purge.mjs, dlq.mjs, every package bundled in (scripts/build-ops.mjs).
RUN npm run build

# Final stage: the bundles and what they read at run time; no node_modules, no
# dev dependencies, no TypeScript. The hosts read app.arc through Inventory
# (bundled), which loads the Architect plugins app.arc names: plain .mjs files
# that import only scripts/build-functions.mjs (esbuild is loaded only when it
# builds, never here) and runtime/rmq/pragma.mjs.
# test/deploy/platform-image.test.ts lays these COPY lines out in a folder
# without node_modules and runs both hosts from it.
FROM node:22-slim

WORKDIR /app
USER node

COPY --from=build --chown=node:node /app/app.arc ./
COPY --from=build --chown=node:node /app/build ./build
COPY --from=build --chown=node:node /app/plugins ./plugins
COPY --from=build --chown=node:node /app/scripts/build-functions.mjs ./scripts/
COPY --from=build --chown=node:node /app/runtime/rmq/pragma.mjs ./runtime/rmq/
COPY --from=build --chown=node:node /app/public ./public

# Stack traces in the logs point at the TypeScript sources through the bundles' source maps.
ENV HOST=0.0.0.0 \
    PORT=8080 \
    NODE_OPTIONS=--enable-source-maps
EXPOSE 8080

# The operators' tools are in the same image, e.g. `docker compose exec consumer node build/ops/dlq.mjs list`
# (also purge.mjs, and status.mjs with KVARC_URL=http://nginx:8080).
CMD ["node", "build/ops/http-host-main.mjs"]
