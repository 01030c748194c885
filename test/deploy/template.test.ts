/**
 * `npm run deploy:template`: the SAM template `arc deploy` would deploy, built
 * offline in a copy of the project, and checked for the shape kvarc needs on AWS.
 */
import inventory from '@architect/inventory'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { consumersOf } from '../../runtime/rmq/pragma.mjs'
import { copyProject, type ProjectCopy } from './project-copy.js'

interface Resource {
  Type: string
  DependsOn?: string | string[]
  Properties: Record<string, any>
  ArcMetadata?: { pragma?: string, name?: string, arcStaticAssetProxy?: boolean }
}
interface Template {
  Parameters: Record<string, { Type: string, Default?: string }>
  Resources: Record<string, Resource>
  Outputs: Record<string, unknown>
}

const SERVICE_URLS = ['DATABASE_URL', 'REDIS_URL', 'AMQP_URL']
const SECRET_ARN = 'KVARC_SERVICE_URLS_SECRET_ARN'
/** The HTTP contract of design.md, as API Gateway routes, and the catch-all (404/405 JSON, the static files). */
const ROUTES = ['GET /api', 'GET /api/all', 'GET /api/writes', 'POST /api/batch', 'PUT /api', 'DELETE /api', 'ANY /{proxy+}']
const CATCHALL = 'AnyCatchallHTTPLambda'

let project: ProjectCopy
let staging: Template
let production: Template
let arc: unknown

const functions = (t: Template) => Object.entries(t.Resources).filter(([, r]) => r.Type === 'AWS::Serverless::Function')
const kvarcFunctions = (t: Template) => functions(t).filter(([, r]) => !r.ArcMetadata?.arcStaticAssetProxy)
/** The functions that reach PostgreSQL, Redis or RabbitMQ: all but the catch-all, which only reads the static bucket. */
const serviceFunctions = (t: Template) => kvarcFunctions(t).filter(([name]) => name !== CATCHALL)
const eventsOf = (r: Resource) => Object.values(r.Properties.Events ?? {}) as { Type: string, Properties: Record<string, any> }[]
const httpRoute = (r: Resource) => eventsOf(r).filter(e => e.Type === 'HttpApi').map(e => `${e.Properties.Method} ${e.Properties.Path}`)

/** Every name a Ref, GetAtt or Fn::Sub in `node` points at. */
function referencedNames(node: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) node.forEach(n => referencedNames(n, out))
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'Ref' && typeof value === 'string') out.add(value)
      else if (key === 'Fn::GetAtt') out.add(Array.isArray(value) ? String(value[0]) : String(value).split('.')[0]!)
      else if (key === 'Fn::Sub') {
        const [text, locals] = Array.isArray(value) ? [value[0] as string, value[1] as Record<string, unknown>] : [value as string, {}]
        for (const [, name] of text.matchAll(/\$\{([^}!]+)\}/g)) {
          const base = name!.split('.')[0]!
          if (!(base in locals)) out.add(base)
        }
        referencedNames(locals, out)
      } else referencedNames(value, out)
    }
  }
  return out
}

beforeAll(async () => {
  // Prepare
  project = copyProject('template')
  // Act
  await project.node('scripts/deploy-template.mjs')
  await project.node('scripts/deploy-template.mjs', ['--production', '--out', 'sam.production.json'])
  staging = JSON.parse(readFileSync(join(project.dir, 'sam.json'), 'utf8'))
  production = JSON.parse(readFileSync(join(project.dir, 'sam.production.json'), 'utf8'))
  arc = (await inventory({ cwd: project.dir })).inv._project.arc
}, 400_000)

afterAll(() => project?.remove())

describe('deploy template: HTTP functions', () => {
  it('has one Lambda per route of the contract, behind the HTTP API', () => {
    const routes = kvarcFunctions(staging).flatMap(([, r]) => httpRoute(r))
    expect(routes.sort()).toEqual([...ROUTES].sort())
    expect(staging.Resources.HTTP?.Type).toBe('AWS::Serverless::HttpApi')
    for (const [, r] of kvarcFunctions(staging)) {
      for (const e of eventsOf(r).filter(e => e.Type === 'HttpApi')) expect(e.Properties.ApiId).toEqual({ Ref: 'HTTP' })
    }
  })

  it('builds every kvarc function from its esbuild bundle', () => {
    const all = kvarcFunctions(staging)
    // Seven routes, two consumers, one scheduled function.
    expect(all).toHaveLength(10)
    for (const [name, r] of all) {
      const codeUri = r.Properties.CodeUri as string
      expect(codeUri.startsWith(join(project.dir, 'build') + '/'), name).toBe(true)
      expect(existsSync(join(codeUri, 'index.mjs')), `${name}: ${codeUri}/index.mjs`).toBe(true)
      expect(readFileSync(join(codeUri, 'index.mjs'), 'utf8')).toMatch(/\bhandler\b/)
      expect(r.Properties.Handler).toBe('index.handler')
      expect(r.Properties.Architectures).toEqual(['arm64'])
    }
  })

  it('serves `/` and every unmatched request with the catch-all, not Arc\'s static asset proxy', () => {
    // app.arc's `any /*` replaces ASAP: it reads the static bucket with @architect/asap itself.
    expect(functions(staging).filter(([, r]) => r.ArcMetadata?.arcStaticAssetProxy)).toEqual([])
    const catchall = staging.Resources[CATCHALL]!
    expect(httpRoute(catchall)).toEqual(['ANY /{proxy+}'])
    expect(catchall.Properties.CodeUri).toBe(join(project.dir, 'build', 'http', 'any-catchall'))
    expect(catchall.Properties.Environment.Variables.ARC_STATIC_BUCKET).toEqual({ Ref: 'StaticBucket' })
    expect(staging.Resources.StaticBucket?.Type).toBe('AWS::S3::Bucket')
    // Arc's role may read the bucket; outside the VPC the function reaches S3 without a NAT gateway or endpoint.
    const statements = (staging.Resources.Role!.Properties.Policies as { PolicyDocument: { Statement: { Action: string | string[], Resource: unknown }[] } }[])
      .flatMap(p => p.PolicyDocument.Statement)
    const read = statements.find(s => [s.Action].flat().includes('s3:GetObject'))
    expect(JSON.stringify(read?.Resource)).toContain('StaticBucket')
    expect(catchall.Properties.VpcConfig).toBeUndefined()
    const variables = catchall.Properties.Environment.Variables as Record<string, unknown>
    for (const variable of [...SERVICE_URLS, SECRET_ARN]) expect(variables[variable], variable).toBeUndefined()
  })

  it('uses no Lambda runtime AWS has deprecated', () => {
    const runtimes = functions(staging).map(([, r]) => r.Properties.Runtime as string)
    expect(runtimes).toHaveLength(10)
    for (const runtime of runtimes) {
      const major = Number(/^nodejs(\d+)\.x$/.exec(runtime)?.[1])
      expect(major, runtime).toBeGreaterThanOrEqual(22)
    }
  })
})

describe('deploy template: consumers', () => {
  it('feeds each @rabbitmq consumer from an Amazon MQ event source with the queue, batch and window of app.arc', () => {
    const declared = consumersOf(arc)
    // The literal values guard against the pragma parser and the plugin agreeing on something wrong.
    expect(declared.map(c => [c.name, c.queue, c.batch, c.windowMs])).toEqual([['add-key', 'add_key', 1000, 20], ['del-key', 'del_key', 1000, 20]])

    const withMq = functions(staging).filter(([, r]) => eventsOf(r).some(e => e.Type === 'MQ'))
    expect(withMq.map(([name]) => name).sort()).toEqual(['AddKeyCustomLambda', 'DelKeyCustomLambda'])
    for (const consumer of declared) {
      const [, r] = withMq.find(([, r]) => r.ArcMetadata?.name === consumer.name)!
      const [mq, ...others] = eventsOf(r)
      expect(others).toEqual([])
      expect(mq).toEqual({
        Type: 'MQ',
        Properties: {
          Broker: { Ref: 'KvarcBrokerArn' },
          Queues: [consumer.queue],
          SourceAccessConfigurations: [{ Type: 'BASIC_AUTH', URI: { Ref: 'KvarcBrokerSecretArn' } }],
          BatchSize: 1000,
          // 20 ms in app.arc; Lambda takes whole seconds.
          MaximumBatchingWindowInSeconds: 0,
        },
      })
      expect(r.Properties.CodeUri).toBe(join(project.dir, 'build', 'src', 'consumers', consumer.name))
    }
  })

  it('lets the shared role describe the broker, read its secret and manage VPC network interfaces', () => {
    const policy = staging.Resources.KvarcVpcAndBrokerPolicy!
    expect(policy.Type).toBe('AWS::IAM::Policy')
    expect(policy.Properties.Roles).toEqual([{ Ref: 'Role' }])
    const statements = policy.Properties.PolicyDocument.Statement as { Action: string[], Resource: unknown }[]
    const resourceOf = (action: string) => statements.find(s => s.Action.includes(action))?.Resource
    expect(resourceOf('mq:DescribeBroker')).toEqual({ Ref: 'KvarcBrokerArn' })
    expect(statements.filter(s => s.Action.includes('secretsmanager:GetSecretValue')).map(s => s.Resource)).toContainEqual({ Ref: 'KvarcBrokerSecretArn' })
    for (const action of ['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSecurityGroups', 'ec2:DescribeSubnets', 'ec2:DescribeVpcs']) {
      expect(resourceOf(action), action).toBe('*')
    }
  })
})

describe('deploy template: scheduled functions', () => {
  it('runs purge-tombstones hourly from an EventBridge rule that may invoke it', () => {
    const lambda = staging.Resources.PurgeTombstonesScheduledLambda!
    expect(lambda.Type).toBe('AWS::Serverless::Function')
    expect(lambda.Properties.CodeUri).toBe(join(project.dir, 'build', 'scheduled', 'purge-tombstones'))
    expect(lambda.Properties.Handler).toBe('index.handler')
    const rules = Object.entries(staging.Resources).filter(([, r]) => r.Type === 'AWS::Events::Rule')
    // The literal schedule guards against Inventory and @architect/package agreeing on something wrong.
    expect(rules).toEqual([['PurgeTombstonesScheduledEvent', {
      Type: 'AWS::Events::Rule',
      Properties: {
        ScheduleExpression: 'rate(1 hour)',
        Targets: [{ Arn: { 'Fn::GetAtt': ['PurgeTombstonesScheduledLambda', 'Arn'] }, Id: 'PurgeTombstonesScheduledLambda' }],
      },
    }]])
    expect(staging.Resources.PurgeTombstonesScheduledPermission).toEqual({
      Type: 'AWS::Lambda::Permission',
      Properties: {
        Action: 'lambda:InvokeFunction',
        FunctionName: { Ref: 'PurgeTombstonesScheduledLambda' },
        Principal: 'events.amazonaws.com',
        SourceArn: { 'Fn::GetAtt': ['PurgeTombstonesScheduledEvent', 'Arn'] },
      },
    })
    // It reaches PostgreSQL: the service URLs and the VPC, as every function that uses the services (checked below).
    expect(serviceFunctions(staging).map(([name]) => name)).toContain('PurgeTombstonesScheduledLambda')
  })
})

/** Every statement of every IAM policy in the template (Arc's role's inline policies and kvarc's own), with where it sits. */
function policyStatements(t: Template): { where: string, Effect: string, Action: string | string[], Resource: unknown }[] {
  return Object.entries(t.Resources).flatMap(([name, r]) => {
    const documents = r.Type === 'AWS::IAM::Policy' ? [r.Properties.PolicyDocument]
      : r.Type === 'AWS::IAM::Role' ? ((r.Properties.Policies ?? []) as { PolicyDocument: unknown }[]).map(p => p.PolicyDocument)
        : []
    return documents.flatMap(d => [(d as { Statement: unknown }).Statement].flat().map(s => ({ where: name, ...(s as { Effect: string, Action: string | string[], Resource: unknown }) })))
  })
}

describe('deploy template: configuration', () => {
  it('gives every function that uses the services the secret\'s ARN and the VPC, from parameters', () => {
    expect(serviceFunctions(staging)).toHaveLength(9)
    for (const [name, r] of serviceFunctions(staging)) {
      const variables = r.Properties.Environment.Variables as Record<string, unknown>
      expect(variables[SECRET_ARN], name).toEqual({ Ref: 'KvarcServiceUrlsSecretArn' })
      for (const variable of SERVICE_URLS) expect(variables[variable], `${name} ${variable}`).toBeUndefined()
      expect(r.Properties.VpcConfig).toEqual({ SubnetIds: { Ref: 'KvarcSubnetIds' }, SecurityGroupIds: { Ref: 'KvarcSecurityGroupIds' } })
      expect([r.DependsOn].flat()).toContain('KvarcVpcAndBrokerPolicy')
    }
  })

  it('resolves no secret into any function\'s configuration: no dynamic reference and no service URL in any Environment', () => {
    // CloudFormation resolves a {{resolve:...}} in Environment into the function configuration, in plain text.
    for (const template of [staging, production]) {
      for (const [name, r] of functions(template)) {
        const environment = JSON.stringify(r.Properties.Environment ?? {})
        expect(environment, name).not.toMatch(/\{\{resolve:/)
        expect(environment, name).not.toMatch(/DATABASE_URL|REDIS_URL|AMQP_URL/)
      }
    }
    // Nor anywhere else in the template: the URLs are read by the functions, never by CloudFormation.
    expect(JSON.stringify(staging)).not.toMatch(/\{\{resolve:secretsmanager/)
  })

  it('lets the role read the service-URLs secret, named by its ARN, and no other secret but the broker user\'s', () => {
    const reads = policyStatements(staging).filter(s => [s.Action].flat().some(a => /^secretsmanager:(GetSecretValue|\*)$|^secretsmanager:Get\*$|^\*$/.test(a)))
    expect(reads.every(s => s.Effect === 'Allow')).toBe(true)
    expect(reads.map(s => [s.where, s.Action, s.Resource])).toEqual([
      ['KvarcVpcAndBrokerPolicy', ['secretsmanager:GetSecretValue'], { Ref: 'KvarcBrokerSecretArn' }],
      ['KvarcVpcAndBrokerPolicy', ['secretsmanager:GetSecretValue'], { Ref: 'KvarcServiceUrlsSecretArn' }],
    ])
    // The policy is attached to the role every kvarc function runs as.
    expect(staging.Resources.KvarcVpcAndBrokerPolicy!.Properties.Roles).toEqual([{ Ref: 'Role' }])
    for (const [name, r] of serviceFunctions(staging)) {
      expect(r.Properties.Role, name).toEqual({ 'Fn::Sub': ['arn:aws:iam::${AWS::AccountId}:role/${roleName}', { roleName: { Ref: 'Role' } }] })
    }
  })

  it('gives every parameter a default that resolves without overrides, per stage', () => {
    // arc deploy passes no parameter overrides: a parameter without a default would fail the stack.
    expect(Object.keys(staging.Parameters).sort()).toEqual(['KvarcBrokerArn', 'KvarcBrokerSecretArn', 'KvarcSecurityGroupIds', 'KvarcServiceUrlsSecretArn', 'KvarcSubnetIds'])
    expect(staging.Parameters.KvarcSubnetIds).toMatchObject({ Type: 'AWS::SSM::Parameter::Value<List<AWS::EC2::Subnet::Id>>', Default: '/kvarc/staging/subnet-ids' })
    expect(staging.Parameters.KvarcBrokerArn!.Default).toBe('/kvarc/staging/broker-arn')
    expect(production.Parameters.KvarcBrokerArn!.Default).toBe('/kvarc/production/broker-arn')
    expect(production.Parameters.KvarcServiceUrlsSecretArn).toMatchObject({ Type: 'AWS::SSM::Parameter::Value<String>', Default: '/kvarc/production/service-urls-secret-arn' })
    expect(staging.Parameters.KvarcServiceUrlsSecretArn!.Default).toBe('/kvarc/staging/service-urls-secret-arn')
    expect(production.Resources.PutApiHTTPLambda!.Properties.Environment.Variables.ARC_ENV).toBe('production')
  })

  it("bakes none of the deployer's local service URLs into the template", () => {
    // The service-env plugin passes the shell's URLs to sandbox only; a deploy must never carry them.
    const text = JSON.stringify(staging.Resources)
    expect(text).not.toMatch(/127\.0\.0\.1|localhost|postgres:\/\/|redis:\/\/|amqps?:\/\//)
  })

  it('references only parameters, resources and pseudo parameters that exist', () => {
    const known = new Set([...Object.keys(staging.Parameters), ...Object.keys(staging.Resources), 'AWS::StackName', 'AWS::Region', 'AWS::AccountId', 'AWS::Partition', 'AWS::URLSuffix'])
    const dangling = [...referencedNames({ Resources: staging.Resources, Outputs: staging.Outputs })].filter(name => !known.has(name))
    expect(dangling).toEqual([])
  })
})
