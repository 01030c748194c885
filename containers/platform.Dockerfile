# The warm platform: kvarc's own function host, one image for the HTTP hosts and
# the consumer hosts (compose/kvarc-stack.yml picks the entry point).
#   docker build -f containers/platform.Dockerfile -t kvarc-platform .
# Build context: the repository root. Only what the hosts read is copied, so no
# .dockerignore is needed and a local build/ or node_modules never leaks in.
FROM node:22-slim

WORKDIR /app
RUN chown node:node /app
USER node

# Dependencies first: this layer is reused until package-lock.json changes.
# Dev dependencies included: the hosts run TypeScript through tsx and read app.arc
# with @architect/inventory. No install scripts: esbuild finds its platform binary
# package without its postinstall step, and nothing else needs one.
COPY --chown=node:node package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY --chown=node:node app.arc tsconfig.json ./
COPY --chown=node:node src ./src
COPY --chown=node:node ops ./ops
# The runtime the hosts are built on (runtime/scheduler.ts runs @scheduled functions in the consumer host).
COPY --chown=node:node runtime ./runtime
COPY --chown=node:node plugins ./plugins
COPY --chown=node:node scripts ./scripts
COPY --chown=node:node public ./public
# The same esbuild bundles sandbox and arc deploy run.
RUN npm run build

ENV HOST=0.0.0.0 \
    PORT=8080
EXPOSE 8080

CMD ["node", "--import", "tsx", "ops/http-host-main.ts"]
