// How the widgets write sizes, times and progress.

export const MiB = 1024 * 1024;

export function formatBytes(n) {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(2)} GiB`;
  return `${(n / MiB).toFixed(1)} MiB`;
}

export function formatSeconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "";
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function progressLine(model) {
  const done = model.get("bytes_done");
  const total = model.get("total_bytes");
  if (!total) return "";
  const parts = [`${formatBytes(done)} of ${formatBytes(total)} (${Math.floor((100 * done) / total)}%)`];
  const rate = model.get("bytes_per_second");
  if (rate > 0) parts.push(`${(rate / MiB).toFixed(1)} MiB/s`);
  const left = formatSeconds(model.get("seconds_left"));
  if (left && done < total) parts.push(`${left} left`);
  return parts.join(" · ");
}
