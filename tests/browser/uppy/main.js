// The page the browser tests open: the real Uppy client in Companion mode, with the page's
// own origin (the Streamify API service) as the Companion endpoint. Uppy's requests to it
// carry the same-origin session cookie; the part uploads go straight to S3.
//
// The outcome lands in `window.uploadResult` and in #result (its data-status attribute is
// "idle", "uploading", "success" or "error"), where a test or a person can read it.

import AwsS3 from '@uppy/aws-s3'
import Uppy from '@uppy/core'

const MiB = 1024 * 1024
const params = new URLSearchParams(window.location.search)
// Small parts so that a test file of a few tens of MiB goes as several parts.
const partSize = Number(params.get('partMiB') || 8) * MiB

const uppy = new Uppy({ autoProceed: false })
uppy.use(AwsS3, {
  companionEndpoint: window.location.origin,
  shouldUseMultipart: true,
  getChunkSize: () => partSize,
})

const resultBox = document.getElementById('result')
const progressBar = document.getElementById('progress')

function report(result) {
  window.uploadResult = result
  resultBox.dataset.status = result.status
  resultBox.textContent = JSON.stringify(result, null, 2)
}

// The file's size, which the service needs to start a multipart upload in Companion mode.
uppy.on('file-added', (file) => uppy.setFileMeta(file.id, { size: file.size }))
uppy.on('upload-progress', (_file, progress) => {
  if (progress.bytesTotal) {
    progressBar.value = (100 * progress.bytesUploaded) / progress.bytesTotal
  }
})
uppy.on('s3-multipart:part-uploaded', (_file, part) => {
  window.uploadedParts = [...(window.uploadedParts || []), part.PartNumber]
})
uppy.on('upload-success', (file, response) => {
  report({
    status: 'success',
    name: file.name,
    size: file.size,
    key: response.body.key,
    location: response.body.location,
    parts: window.uploadedParts || [],
  })
})
uppy.on('upload-error', (file, error) => {
  report({ status: 'error', name: file.name, message: String(error && error.message) })
})

// Upload one File (or Blob with a name); resolves with what `window.uploadResult` holds.
async function startUpload(file) {
  for (const old of uppy.getFiles()) uppy.removeFile(old.id)
  window.uploadedParts = []
  report({ status: 'uploading', name: file.name, size: file.size })
  try {
    uppy.addFile({ name: file.name, type: file.type || 'application/octet-stream', data: file })
    await uppy.upload()
  } catch (error) {
    report({ status: 'error', name: file.name, message: String(error && error.message) })
  }
  return window.uploadResult
}

window.startUpload = startUpload
window.uppy = uppy
window.uploadResult = { status: 'idle' }

document.getElementById('file').addEventListener('change', (event) => {
  const [file] = event.target.files
  if (file) startUpload(file)
})
