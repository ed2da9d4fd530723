// Uppy's Companion as its standalone server (`companion` binary), but listening on one
// address: the binary calls `app.listen(port)`, which binds every interface.
//
//   COMPANION_HOST=127.0.0.1 COMPANION_PORT=3020 COMPANION_AWS_...=... node serve.mjs
//
// Everything else is configured exactly as for the binary (COMPANION_* variables, read
// by @uppy/companion's standalone helper).
import * as companion from '@uppy/companion'
import standalone from '@uppy/companion/standalone'

const host = process.env.COMPANION_HOST || '127.0.0.1'
const port = Number(process.env.COMPANION_PORT || 3020)
const { app } = standalone()
const server = app.listen(port, host, () => {
  const { port: bound } = server.address()
  console.log(`Companion listening on http://${host}:${bound}`)
})
companion.socket(server)
// Exit normally on SIGTERM (the benchmark stops it so), so that Node.js writes what it
// was asked to on exit (a --cpu-prof profile, say).
process.on('SIGTERM', () => process.exit(0))
