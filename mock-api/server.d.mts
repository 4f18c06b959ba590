// Types for tests that start the mock in-process.
import type { Server } from 'node:http'

export interface MockOptions {
  dev?: boolean
  distDir?: string
  publicUrl?: string
  issuer?: string
  now?: () => number
}
export interface MockServer {
  server: Server
  reset(): void
  readonly state: { agents: Array<Record<string, unknown>>; sessions: Array<Record<string, unknown>> }
  listen(port?: number, host?: string): Promise<string>
  close(): Promise<void>
}
export function createMockServer(opts?: MockOptions): MockServer
export function parseDuration(text: string): number | null
export const TEMPLATES: Array<Record<string, unknown>>
