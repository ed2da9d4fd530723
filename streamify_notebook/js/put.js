// One part's PUT to a presigned URL. The browser streams the slice from the file itself.

const active = new Set();

// Resolves (never rejects) with {status, etag, text, retryAfter}: status 0 when the
// browser hides why the request failed (a dropped connection, a CORS refusal), -1 when
// it was aborted.
export function put(signed, body, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", signed.url);
    for (const [name, value] of Object.entries(signed.headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    const answer = (status) => ({
      status,
      etag: status > 0 ? xhr.getResponseHeader("ETag") : null,
      text: status > 0 ? xhr.responseText : "",
      retryAfter: status > 0 ? xhr.getResponseHeader("Retry-After") : null,
    });
    xhr.onload = () => resolve(answer(xhr.status));
    xhr.onerror = () => resolve(answer(0));
    xhr.onabort = () => resolve(answer(-1));
    active.add(xhr);
    xhr.onloadend = () => active.delete(xhr);
    xhr.send(body);
  });
}

// Stop every PUT in flight (cancel).
export function abortAll() {
  for (const xhr of active) xhr.abort();
}

// The S3 error code of an XML error answer ("" when there is none).
export function s3Code(text) {
  const match = /<Code>([^<]+)<\/Code>/.exec(text || "");
  return match ? match[1] : "";
}
