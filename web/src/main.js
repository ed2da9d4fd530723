// The upload page the Streamify API service serves at / (and /ui/): sign in with an API
// key, then an Uppy Dashboard sending files in parts straight to storage through the
// service's Companion routes, with Golden Retriever so a reload or a closed tab resumes
// from the parts storage already holds; files over the caller's size limit are refused
// before anything is sent. Below it: the caller's unfinished uploads (with what storage
// holds of each, and an abort button) and its most recently completed objects.

import AwsS3 from '@uppy/aws-s3'
import Uppy from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import GoldenRetriever from '@uppy/golden-retriever'
import '@uppy/core/css/style.min.css'
import '@uppy/dashboard/css/style.min.css'
import './page.css'

import { formatBytes, renderCompleted, renderOpenUploads } from './lists.js'
import { PartPlans, planFiles } from './plans.js'
import {
  ServiceError, isNetworkError, limitsOf, openUploads, planOf, plainWords, signIn, signInOnce,
  signOut, watchCompanionAnswers,
} from './service.js'

const plans = new PartPlans()
const byId = (id) => document.getElementById(id)

let uppy = null
let lastRefusal = null // the service's last refusal of a Companion call (see service.js)
// How many times the network came back: a list call begun before then that failed for
// want of a network may say so only after (its failure and the "online" event race), and
// is old news by then.
let networkReturns = 0

function showProblem(text) {
  const box = byId('problem')
  box.textContent = text
  box.hidden = !text
}

function showSignIn(reason) {
  document.body.dataset.state = 'signed-out'
  byId('sign-in').hidden = false
  byId('sign-out').hidden = true
  if (reason) showProblem(reason)
  byId('api-key').focus()
}

async function refresh() {
  const returnsBefore = networkReturns
  try {
    await Promise.all([renderOpenUploads(byId('open-uploads'), byId('open-empty'), onAbort),
      renderCompleted(byId('done-objects'), byId('done-empty'))])
  } catch (error) {
    if (isNetworkError(error) && networkReturns !== returnsBefore) return
    failed(error)
  }
}

// A list's abort button: storage frees the parts; a file of this page on it goes too.
function onAbort(upload) {
  for (const file of uppy ? uppy.getFiles() : []) {
    // Uppy holds the service's id for it: S3's own, then "~" and the declared size.
    const held = file.s3Multipart && file.s3Multipart.uploadId
    if (held && (held === upload.upload_id || held.startsWith(`${upload.upload_id}~`))) {
      uppy.removeFile(file.id)
    }
  }
}

function failed(error, fileName) {
  if (error instanceof ServiceError && error.status === 401) {
    showSignIn(plainWords(error))
    return
  }
  showProblem(plainWords(error, fileName))
}

function startUppy() {
  const phone = window.matchMedia('(pointer: coarse)').matches
  uppy = new Uppy({ id: 'streamify', autoProceed: false })
    .use(Dashboard, {
      inline: true,
      target: '#uploader',
      width: '100%',
      height: phone ? 380 : 420,
      theme: 'auto',
      proudlyDisplayPoweredByUppy: false,
      showRemoveButtonAfterComplete: true,
      showNativePhotoCameraButton: phone,
      showNativeVideoCameraButton: phone,
      nativeCameraFacingMode: 'environment',
      doneButtonHandler: null,
    })
    .use(AwsS3, {
      companionEndpoint: window.location.origin,
      shouldUseMultipart: (file) => plans.inParts(file.size),
      getChunkSize: ({ size }) => plans.partSize(size),
      limit: 3,
    })
    // Blobs of up to 10 MiB are kept in IndexedDB; larger files come back as "ghosts"
    // that the person chooses again, and then only the missing parts are sent.
    .use(GoldenRetriever, { expires: 7 * 24 * 3600 * 1000 })
  // The service refuses a file over the caller's limit when the upload starts, and signs
  // each part with its size in the plan, from the size declared here.
  uppy.on('file-added', (file) => uppy.setFileMeta(file.id, { size: file.size }))
  uppy.addPreProcessor(planUploads)
  // An upload restored after a reload goes on without the step above: its files carry
  // their plans (Golden Retriever saved them).
  uppy.on('restored', () => planUploads(uppy.getFiles().map((file) => file.id)).catch(() => {}))

  uppy.on('upload-error', (file, error) => {
    const recent = lastRefusal && Date.now() - lastRefusal.at < 10_000
    failed(recent ? lastRefusal.error : error, file && file.name)
    lastRefusal = null
    refresh()
  })
  uppy.on('upload-success', () => refresh())
  // A file over the caller's limit is refused as it is added, before a byte is sent.
  uppy.on('restriction-failed', (file, error) => {
    const limit = uppy.opts.restrictions.maxFileSize
    if (file && limit && file.size > limit) {
      showProblem(`“${file.name}” (${formatBytes(file.size)}) is larger than this service ` +
        `accepts for you (${formatBytes(limit)} at most). It was not added, and nothing ` +
        'of it was sent.')
    } else {
      showProblem(error.message)
    }
  })
  uppy.on('upload', () => showProblem(''))
  // The list says how much storage holds: draw it again as parts arrive.
  uppy.on('s3-multipart:part-uploaded', () => refresh())
  uppy.on('is-offline', () => showProblem(plainWords(new TypeError('offline'))))
  // Back online: what the network cut off goes on by itself, from the parts stored.
  uppy.on('back-online', () => {
    networkReturns += 1
    showProblem('')
    if (uppy.getFiles().some((file) => file.error)) uppy.retryAll()
  })
  window.streamifyPage.uppy = uppy
}

// Every file's part plan, from the service, kept with the file so that Golden Retriever
// saves it and a reload cuts the file as it was begun. A file whose plan could not be had
// fails like an upload (said in plain words, with Retry).
async function planUploads(fileIDs) {
  const files = uppy.getFilesByIds(fileIDs)
  let planned
  try {
    planned = await planFiles(plans, files, planOf)
  } catch (error) {
    for (const file of files) {
      if (!plans.has(file.size)) uppy.emit('upload-error', file, error)
    }
    throw error
  }
  files.forEach((file, index) => {
    if (uppy.getFile(file.id)) uppy.setFileState(file.id, { streamifyPlan: planned[index] })
  })
}

// What the service allows this principal: the Dashboard refuses larger files itself.
async function applyLimits() {
  const limits = await limitsOf()
  uppy.setOptions({ restrictions: { maxFileSize: limits.max_object_size } })
  byId('limits').textContent = `You may upload files of up to ` +
    `${formatBytes(limits.max_object_size)} each, and have up to ` +
    `${limits.max_open_uploads} unfinished uploads at a time.`
}

async function showApp() {
  document.body.dataset.state = 'signed-in'
  byId('sign-in').hidden = true
  byId('sign-out').hidden = false
  byId('app').hidden = false
  showProblem('')
  if (!uppy) startUppy()
  refresh()
  try {
    await applyLimits()
  } catch (error) {
    failed(error)
  }
}

async function onSignIn(event) {
  event.preventDefault()
  const input = byId('api-key')
  try {
    await signIn(input.value.trim())
    input.value = ''
    await showApp()
  } catch (error) {
    if (error instanceof ServiceError && error.status === 401) {
      showProblem('That API key was not accepted. Check it (it starts with the ' +
        'characters you were given) and try again.')
    } else {
      failed(error)
    }
  }
}

async function onSignOut() {
  try {
    await signOut()
  } catch (error) {
    if (!(error instanceof ServiceError && error.status === 401)) failed(error)
  }
  forgetThisBrowser()
  window.location.reload()
}

// Signing out is what someone does on a shared computer: the next person must not see
// this one's files. The uploads stay in storage, listed under "Unfinished uploads" after
// signing in again, where they can be aborted; the bucket's lifecycle rule ends the rest.
function forgetThisBrowser() {
  if (uppy) uppy.pauseAll()
  for (const key of Object.keys(window.localStorage)) {
    if (key.startsWith('uppyState:')) {
      window.localStorage.removeItem(key)
    }
  }
  // Golden Retriever's database: deleted once this page closes its connection (reload).
  window.indexedDB.deleteDatabase('uppy-blobs')
  window.sessionStorage.setItem('streamify.signedOut', '1')
}

// A one-time link (printed by `streamify serve --local`) carries its code in the
// fragment, which browsers never send to a server or put in a log.
async function useSignInLink() {
  const code = new URLSearchParams(window.location.hash.slice(1)).get('signin')
  if (!code) return
  window.history.replaceState(null, '', window.location.pathname + window.location.search)
  try {
    await signInOnce(code)
  } catch (error) {
    if (error instanceof ServiceError && error.status < 500) {
      showProblem('This sign-in link was used already (it works once). Sign in with ' +
        'your API key instead.')
      return
    }
    failed(error)
  }
}

async function start() {
  window.streamifyPage = { refresh, uppy: null, ready: false }
  watchCompanionAnswers((error) => { lastRefusal = { error, at: Date.now() } })
  byId('sign-in').addEventListener('submit', onSignIn)
  byId('sign-out').addEventListener('click', onSignOut)
  byId('refresh').addEventListener('click', refresh)
  await useSignInLink()
  if (window.sessionStorage.getItem('streamify.signedOut')) {
    window.sessionStorage.removeItem('streamify.signedOut')
    showProblem('You are signed out, and this browser forgot its upload files. Unfinished ' +
      'uploads stay in storage: sign in to see or abort them.')
  }
  try {
    await openUploads()
    await showApp()
  } catch (error) {
    if (error instanceof ServiceError && error.status === 401) showSignIn()
    else failed(error)
  }
  setInterval(() => { if (uppy && !document.hidden) refresh() }, 15_000)
  window.streamifyPage.ready = true
}

start()
