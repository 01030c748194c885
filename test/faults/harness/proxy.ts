/**
 * A TCP proxy in front of a backing service, so one stack can lose its broker,
 * database or cache while every other test on the machine keeps the real
 * service: the fast fault subset (CI) uses it instead of restarting services.
 *
 *  - `down()`   drops every connection and refuses new ones at once (a
 *                service that stopped: clients see resets / refused connects);
 *  - `hang()`   keeps connections open but forwards nothing, and accepts new
 *                ones that never answer (a black hole: the hardest case for
 *                timeouts);
 *  - `up()`     forwards again.
 */
import net from 'node:net'

export type ProxyMode = 'up' | 'down' | 'hang'

export class FaultProxy {
  private server: net.Server | undefined
  private readonly pairs = new Set<[net.Socket, net.Socket]>()
  private readonly held = new Set<net.Socket>()
  mode: ProxyMode = 'up'
  port = 0

  constructor(private readonly target: { host: string, port: number }) {}

  /** Listens on a free port on 127.0.0.1; resolves with it. */
  async listen(): Promise<number> {
    const server = net.createServer(socket => this.accept(socket))
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    this.port = (server.address() as net.AddressInfo).port
    return this.port
  }

  /** The service URL with its host and port replaced by the proxy's. */
  url(serviceUrl: string): string {
    const url = new URL(serviceUrl)
    url.hostname = '127.0.0.1'
    url.port = String(this.port)
    return url.toString().replace(/\/$/, serviceUrl.endsWith('/') ? '/' : '')
  }

  private accept(client: net.Socket): void {
    client.on('error', () => {})
    if (this.mode === 'down') {
      client.resetAndDestroy()
      return
    }
    if (this.mode === 'hang') {
      this.held.add(client)
      client.on('close', () => this.held.delete(client))
      return
    }
    const upstream = net.connect(this.target)
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
    const pair: [net.Socket, net.Socket] = [client, upstream]
    this.pairs.add(pair)
    const forget = () => {
      this.pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', forget)
    upstream.on('close', forget)
    client.pipe(upstream)
    upstream.pipe(client)
  }

  /** Resets every connection and refuses new ones. */
  down(): void {
    this.mode = 'down'
    for (const [client, upstream] of this.pairs) {
      client.resetAndDestroy()
      upstream.destroy()
    }
    this.pairs.clear()
    for (const socket of this.held) socket.resetAndDestroy()
    this.held.clear()
  }

  /** Stops forwarding in both directions on open connections; new connections hang. */
  hang(): void {
    this.mode = 'hang'
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream)
      upstream.unpipe(client)
      client.pause()
      upstream.pause()
      // Kept open, silent: the peer must notice by its own timeouts/heartbeats.
      this.held.add(client)
      upstream.destroy()
    }
    this.pairs.clear()
  }

  /** Forwards again. Connections held by `hang()` are cut: a real network partition ending looks the same to TCP peers whose state diverged. */
  up(): void {
    this.mode = 'up'
    for (const socket of this.held) socket.resetAndDestroy()
    this.held.clear()
  }

  async close(): Promise<void> {
    this.down()
    await new Promise<void>(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
  }
}
