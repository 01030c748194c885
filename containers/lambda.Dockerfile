# One kvarc function as an AWS Lambda container image.
# Rendered per function by scripts/package-containers.mjs into
# build/containers/<function>/Dockerfile; the build context holds exactly that
# function's esbuild bundle (index.mjs) and its source map, nothing else: the
# bundle already contains every dependency, so no npm install and no node_modules.
#
# The AWS base image carries the Lambda Node.js runtime and, for local runs, the
# runtime interface emulator (docker run -p 9000:8080 ... then POST to
# http://localhost:9000/2015-03-31/functions/function/invocations).
FROM public.ecr.aws/lambda/nodejs:22

LABEL org.opencontainers.image.title="kvarc {{function}}" \
      org.opencontainers.image.description="kvarc function {{function}} ({{route}})"

# Stack traces from the minified bundle point at the TypeScript sources.
ENV NODE_OPTIONS=--enable-source-maps

COPY index.mjs index.mjs.map ${LAMBDA_TASK_ROOT}/

# <file>.<export>: index.mjs exports `handler`, as under arc sandbox, the warm platform and arc deploy.
CMD ["index.handler"]
