# kvarc: the single source of truth for routes, static files, plugins and consumers.
# arc sandbox, the warm platform (platform/) and arc deploy all read this file.
@app
kvarc

@http
get /api
get /api/all
get /api/writes
post /api/batch
put /api
delete /api
# Everything else: 405 (wrong method on an API path) or 404 as JSON, and the
# @static files, which it serves in place of Architect's static proxy.
any /*

@static
folder public

@aws
region us-east-1
# Functions are TypeScript, bundled by esbuild (plugins/esbuild-runtime) into build/.
runtime typescript
architecture arm64
memory 512
timeout 15

# Queue consumers. Each is a function under src/consumers/<name>, fed batches of
# the queue's messages in the Lambda aws:rmq event shape: by plugins/rabbitmq-consumers
# under sandbox, by the platform's consumer host, by Amazon MQ in AWS.
#   queue   the RabbitMQ queue it consumes
#   batch   most messages per invocation
#   window 0.02
@rabbitmq
add-key
  queue add_key
  batch 1000
  window 0.02
del-key
  queue del_key
  batch 1000
  window 0.02

# Scheduled functions, under src/scheduled/<name>, invoked with the EventBridge
# "Scheduled Event": by an EventBridge rule in AWS, by the platform's consumer
# hosts (runtime/scheduler.ts). Expressions are EventBridge's: rate(N unit) or cron(6 fields, UTC).
@scheduled
purge-tombstones rate(1 hour)

@plugins
esbuild-runtime
  src plugins/esbuild-runtime/index.mjs
rabbitmq-consumers
  src plugins/rabbitmq-consumers/index.mjs
service-env
  src plugins/service-env/index.mjs
