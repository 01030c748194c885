/**
 * `deploy.start` hook: turns the template @architect/package made into one that
 * runs kvarc on AWS.
 *
 * - each `@rabbitmq` consumer gets an Amazon MQ for RabbitMQ event source
 *   (SAM `Type: MQ`) with the queue, batch size and batching window of app.arc;
 * - every kvarc function gets the ARN of the Secrets Manager secret that holds
 *   DATABASE_URL / REDIS_URL / AMQP_URL (KVARC_SERVICE_URLS_SECRET_ARN; the
 *   function reads the URLs at cold start, src/shared/secrets.ts) and a
 *   VpcConfig (PostgreSQL, Redis and the broker live in a VPC), except the one
 *   that serves `/` (app.arc's `any /*`, or Arc's static asset proxy): it reads
 *   the static bucket and needs no service, so it stays outside the VPC and
 *   reaches S3;
 * - the shared Arc role gets what MQ event sources and VPC functions need, and
 *   may read that one secret.
 *
 * The URLs carry passwords, so they never enter the template nor the functions'
 * environment: a `{{resolve:secretsmanager:…}}` there would be resolved by
 * CloudFormation into the function configuration, shown in plain text to
 * anyone allowed lambda:GetFunctionConfiguration (with Lambda's default key),
 * and a rotated password would reach the functions only with the next stack
 * update that changed the reference.
 *
 * `arc deploy` passes no parameter overrides, so every parameter has a default
 * that resolves by itself: SSM parameter names under /<app>/<stage>/. Override
 * any of them with `aws cloudformation deploy --parameter-overrides` when
 * deploying sam.json by hand.
 */
import { consumersOf } from '../../runtime/rmq/pragma.mjs'

/** Lambda runtimes AWS has deprecated or is deprecating; bumped to SUPPORTED_NODE_RUNTIME. */
const DEPRECATED_NODE_RUNTIME = /^nodejs(\d+)\.x$/
const MIN_SUPPORTED_NODE_MAJOR = 22
export const SUPPORTED_NODE_RUNTIME = 'nodejs22.x'

export const POLICY_RESOURCE = 'KvarcVpcAndBrokerPolicy'

/** The template parameters this hook adds, by role. */
export const PARAMETERS = {
  serviceUrlsSecretArn: 'KvarcServiceUrlsSecretArn',
  brokerArn: 'KvarcBrokerArn',
  brokerSecretArn: 'KvarcBrokerSecretArn',
  subnetIds: 'KvarcSubnetIds',
  securityGroupIds: 'KvarcSecurityGroupIds',
}

/** Keys of the service-URLs secret's JSON; none of them is ever a function's environment variable. */
export const SERVICE_URL_VARIABLES = ['DATABASE_URL', 'REDIS_URL', 'AMQP_URL']

/** The function environment variable that names the secret (src/shared/config.ts). */
export const SECRET_ARN_VARIABLE = 'KVARC_SERVICE_URLS_SECRET_ARN'

/** @param {string} app @param {string} stage */
export function parametersFor(app, stage) {
  const ssm = name => `/${app}/${stage}/${name}`
  return {
    [PARAMETERS.serviceUrlsSecretArn]: {
      // An ARN, not a name: the role's permission names exactly this secret.
      Type: 'AWS::SSM::Parameter::Value<String>',
      Description: 'SSM parameter holding the ARN of the Secrets Manager secret whose JSON holds DATABASE_URL, REDIS_URL and AMQP_URL (amqps://, the broker endpoint); the functions read it at cold start',
      Default: ssm('service-urls-secret-arn'),
    },
    [PARAMETERS.brokerArn]: {
      Type: 'AWS::SSM::Parameter::Value<String>',
      Description: 'SSM parameter holding the Amazon MQ for RabbitMQ broker ARN',
      Default: ssm('broker-arn'),
    },
    [PARAMETERS.brokerSecretArn]: {
      Type: 'AWS::SSM::Parameter::Value<String>',
      Description: 'SSM parameter holding the ARN of the Secrets Manager secret with the broker user ({"username","password"}) the event sources log in with',
      Default: ssm('broker-secret-arn'),
    },
    [PARAMETERS.subnetIds]: {
      Type: 'AWS::SSM::Parameter::Value<List<AWS::EC2::Subnet::Id>>',
      Description: 'SSM parameter (StringList) holding the private subnet ids the functions run in',
      Default: ssm('subnet-ids'),
    },
    [PARAMETERS.securityGroupIds]: {
      Type: 'AWS::SSM::Parameter::Value<List<AWS::EC2::SecurityGroup::Id>>',
      Description: 'SSM parameter (StringList) holding the security group ids that may reach PostgreSQL, Redis and the broker',
      Default: ssm('security-group-ids'),
    },
  }
}

/**
 * Lambda reads whole seconds only; app.arc's window is in seconds with a
 * fraction (0.02 s, the platform's latency). The nearest whole second keeps a
 * sub-second window at 0, i.e. "invoke as soon as messages are there", rather
 * than stretching it to a full second.
 */
export function batchingWindowSeconds(windowMs) {
  return Math.min(300, Math.round(windowMs / 1000))
}

/** @param {{ queue: string, batch: number, windowMs: number }} consumer */
export function mqEventFor(consumer) {
  return {
    Type: 'MQ',
    Properties: {
      Broker: { Ref: PARAMETERS.brokerArn },
      Queues: [consumer.queue],
      SourceAccessConfigurations: [{ Type: 'BASIC_AUTH', URI: { Ref: PARAMETERS.brokerSecretArn } }],
      BatchSize: consumer.batch,
      MaximumBatchingWindowInSeconds: batchingWindowSeconds(consumer.windowMs),
    },
  }
}

/**
 * Permissions of the shared Arc role. Arc functions name an explicit Role, so
 * SAM adds no policies for MQ events or VpcConfig by itself. Secrets: the
 * broker user's (for the event sources) and the service URLs' (for the
 * functions), each named by its ARN, no other.
 */
export function policyResource() {
  return {
    Type: 'AWS::IAM::Policy',
    DependsOn: 'Role',
    Properties: {
      PolicyName: 'KvarcVpcAndBrokerPolicy',
      Roles: [{ Ref: 'Role' }],
      PolicyDocument: {
        Statement: [
          // The event source mapping reads the broker's endpoints and network placement.
          { Effect: 'Allow', Action: ['mq:DescribeBroker'], Resource: { Ref: PARAMETERS.brokerArn } },
          // ...and logs in with the broker user kept in this secret.
          { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: { Ref: PARAMETERS.brokerSecretArn } },
          // The functions read the service URLs from this one secret at cold start (src/shared/secrets.ts).
          { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: { Ref: PARAMETERS.serviceUrlsSecretArn } },
          // ENIs in the broker's and functions' subnets; these EC2 actions take no resource-level ARNs.
          {
            Effect: 'Allow',
            Action: [
              'ec2:CreateNetworkInterface',
              'ec2:DeleteNetworkInterface',
              'ec2:DescribeNetworkInterfaces',
              'ec2:DescribeSecurityGroups',
              'ec2:DescribeSubnets',
              'ec2:DescribeVpcs',
              'ec2:AssignPrivateIpAddresses',
              'ec2:UnassignPrivateIpAddresses',
            ],
            Resource: '*',
          },
        ],
      },
    },
  }
}

function isFunction(resource) {
  return resource?.Type === 'AWS::Serverless::Function'
}

/**
 * Functions that talk to PostgreSQL, Redis or RabbitMQ: all but the one serving
 * `/` (Inventory's root handler), which only reads the static bucket. In a VPC
 * without a NAT gateway or an S3 endpoint it could not reach the bucket at all.
 */
function needsServices(resource, rootHandler) {
  if (!isFunction(resource) || resource.ArcMetadata?.arcStaticAssetProxy) return false
  return !(resource.ArcMetadata?.pragma === 'http' && resource.ArcMetadata?.name === rootHandler)
}

/**
 * Arc's static asset proxy (ASAP) is created with Inventory's default runtime,
 * nodejs20.x, which AWS has deprecated; it runs unchanged on the current one.
 */
export function upgradeDeprecatedRuntimes(cloudformation) {
  for (const resource of Object.values(cloudformation.Resources ?? {})) {
    if (!isFunction(resource)) continue
    const match = DEPRECATED_NODE_RUNTIME.exec(resource.Properties?.Runtime ?? '')
    if (match && Number(match[1]) < MIN_SUPPORTED_NODE_MAJOR) resource.Properties.Runtime = SUPPORTED_NODE_RUNTIME
  }
  return cloudformation
}

function dependOn(resource, name) {
  const current = resource.DependsOn === undefined ? [] : [resource.DependsOn].flat()
  if (!current.includes(name)) resource.DependsOn = [...current, name]
}

/**
 * @param {{ arc: object, cloudformation: object, inventory: { inv: { app: string } }, stage: string }} params
 * @returns {object} the same template, changed in place
 */
export function addRabbitMqDeployment({ arc, cloudformation, inventory, stage }) {
  const resources = cloudformation.Resources
  cloudformation.Parameters = { ...cloudformation.Parameters, ...parametersFor(inventory.inv.app, stage) }
  resources[POLICY_RESOURCE] = policyResource()
  const rootHandler = inventory.inv._project?.rootHandler

  for (const resource of Object.values(resources)) {
    if (!needsServices(resource, rootHandler)) continue
    const properties = resource.Properties
    properties.Environment ??= { Variables: {} }
    properties.Environment.Variables ??= {}
    properties.Environment.Variables[SECRET_ARN_VARIABLE] = { Ref: PARAMETERS.serviceUrlsSecretArn }
    // With the ARN set the functions ignore these (src/shared/config.ts); a copy from `arc env` would only put passwords in plain text.
    for (const name of SERVICE_URL_VARIABLES) delete properties.Environment.Variables[name]
    properties.VpcConfig = {
      SubnetIds: { Ref: PARAMETERS.subnetIds },
      SecurityGroupIds: { Ref: PARAMETERS.securityGroupIds },
    }
    // A VPC function cannot be created, nor an MQ event source mapping, before the role may manage ENIs and read the broker.
    dependOn(resource, POLICY_RESOURCE)
  }

  for (const consumer of consumersOf(arc)) {
    const entry = Object.entries(resources).find(([, r]) => isFunction(r) && r.ArcMetadata?.pragma === 'custom' && r.ArcMetadata?.name === consumer.name)
    if (!entry) throw new Error(`rabbitmq-consumers: no Lambda for @rabbitmq consumer "${consumer.name}" in the template`)
    const [, resource] = entry
    resource.Properties.Events ??= {}
    resource.Properties.Events.RabbitMQ = mqEventFor(consumer)
  }

  return upgradeDeprecatedRuntimes(cloudformation)
}

export async function start(params) {
  return addRabbitMqDeployment(params)
}
