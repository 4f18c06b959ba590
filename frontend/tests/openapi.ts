// Helpers to check things against openapi/openapi.yaml (OpenAPI 3.1, JSON Schema 2020-12).
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import Ajv2020 from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'

const here = path.dirname(fileURLToPath(import.meta.url))
export const SPEC_PATH = path.resolve(here, '../../openapi/openapi.yaml')
export const specExists = fs.existsSync(SPEC_PATH)

type Json = Record<string, unknown>
export interface Spec {
  paths: Record<string, Record<string, Json>>
  components: Json
}

export function loadSpec(): Spec {
  return parse(fs.readFileSync(SPEC_PATH, 'utf8')) as Spec
}

const ptr = (parts: string[]) => '#/' + parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')

function resolve(spec: Spec, ref: string): Json {
  let cur: unknown = spec
  for (const raw of ref.replace(/^#\//, '').split('/')) cur = (cur as Json)[raw.replace(/~1/g, '/').replace(/~0/g, '~')]
  return cur as Json
}

/** The spec's path template matching a concrete path, e.g. /api/v1/agents/gh%2Fx -> /api/v1/agents/{name}. */
export function matchPath(spec: Spec, concrete: string): string | null {
  const segs = concrete.split('?')[0].split('/')
  for (const tpl of Object.keys(spec.paths)) {
    const t = tpl.split('/')
    if (t.length !== segs.length) continue
    if (t.every((x, i) => (x.startsWith('{') && x.endsWith('}') ? segs[i] !== '' : x === segs[i]))) return tpl
  }
  return null
}

export function createValidator(spec: Spec) {
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  addFormats(ajv)
  ajv.addSchema(spec as object, 'openapi.json')
  const cache = new Map<string, ReturnType<typeof ajv.getSchema>>()
  function at(pointer: string) {
    let v = cache.get(pointer)
    if (!v) {
      v = ajv.compile({ $ref: 'openapi.json' + pointer })
      cache.set(pointer, v)
    }
    return v!
  }

  /** Validate a JSON response body; returns error text, or '' when it conforms. */
  function response(method: string, concretePath: string, status: number, body: unknown): string {
    const tpl = matchPath(spec, concretePath)
    if (!tpl) return `no path in the spec for ${concretePath}`
    const op = spec.paths[tpl][method.toLowerCase()] as Json | undefined
    if (!op) return `no ${method} ${tpl} in the spec`
    const responses = op.responses as Json
    let r = responses[String(status)] as Json | undefined
    if (!r) return `status ${status} is not documented for ${method} ${tpl}`
    let where = ['paths', tpl, method.toLowerCase(), 'responses', String(status)]
    if (typeof r.$ref === 'string') {
      where = r.$ref.replace(/^#\//, '').split('/').map((x) => x.replace(/~1/g, '/').replace(/~0/g, '~'))
      r = resolve(spec, r.$ref)
    }
    const content = r.content as Json | undefined
    if (!content?.['application/json']) return body === undefined ? '' : `no JSON body documented for ${status}`
    const v = at(ptr([...where, 'content', 'application/json', 'schema']))
    return v(body) ? '' : `${method} ${concretePath} ${status}: ${ajv.errorsText(v.errors, { dataVar: 'body' })}`
  }

  /** Validate a request body against the operation's requestBody schema. */
  function request(method: string, concretePath: string, body: unknown): string {
    const tpl = matchPath(spec, concretePath)
    if (!tpl) return `no path in the spec for ${concretePath}`
    const op = spec.paths[tpl][method.toLowerCase()] as Json | undefined
    if (!op) return `no ${method} ${tpl} in the spec`
    if (!op.requestBody) return body === undefined || (typeof body === 'object' && body && Object.keys(body).length === 0) ? '' : `${method} ${tpl} takes no body`
    const v = at(ptr(['paths', tpl, method.toLowerCase(), 'requestBody', 'content', 'application/json', 'schema']))
    return v(body) ? '' : `${method} ${concretePath} request: ${ajv.errorsText(v.errors, { dataVar: 'body' })}`
  }

  /** Validate a query parameter value. */
  function query(method: string, tplPath: string, name: string, value: string): string {
    const op = spec.paths[tplPath]?.[method.toLowerCase()] as Json | undefined
    const params = (op?.parameters ?? []) as Json[]
    const i = params.findIndex((p) => p.name === name && p.in === 'query')
    if (i < 0) return `no query parameter ${name} on ${method} ${tplPath}`
    const schema = params[i].schema as Json
    const v = at(ptr(['paths', tplPath, method.toLowerCase(), 'parameters', String(i), 'schema']))
    const val = schema.type === 'integer' ? Number(value) : value
    return v(val) ? '' : `${name}=${value}: ${ajv.errorsText(v.errors)}`
  }

  return { response, request, query }
}
