// One process per session folder: a `.lock` file created with O_EXCL holding
// our pid. A lock whose pid is no longer alive (crash, kill -9, container
// restart) is stale and may be taken over.
import fs from 'node:fs';
import path from 'node:path';

export const LOCK_NAME = '.lock';

export class LockedError extends Error {
  constructor(pid, file) {
    super(`session folder is locked by another process (pid ${pid})`);
    this.pid = pid;
    this.file = file;
  }
}

function pidAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM'; // exists but belongs to another user
  }
}

function readPid(file) {
  try {
    const txt = fs.readFileSync(file, 'utf8');
    const pid = Number.parseInt(JSON.parse(txt).pid, 10);
    return Number.isInteger(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** Acquire the lock of `folder` for this process. Throws LockedError when a live process holds it. */
export function acquireLock(folder) {
  const file = path.join(folder, LOCK_NAME);
  const payload = JSON.stringify({ pid: process.pid, since: new Date().toISOString() });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600);
      try { fs.writeSync(fd, payload); } finally { fs.closeSync(fd); }
      return file;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    const pid = readPid(file);
    if (pid === process.pid) return file; // already ours (same pid cannot be another live process)
    if (pid !== null && pidAlive(pid)) throw new LockedError(pid, file);
    if (pid === null) {
      // Unreadable: maybe being written right now by another process; only take over if it is old.
      try {
        const age = Date.now() - fs.statSync(file).mtimeMs;
        if (age < 2000) throw new LockedError('unknown', file);
      } catch (e) {
        if (e instanceof LockedError) throw e;
      }
    }
    // Stale: remove and retry the exclusive create (a racing process may win; then we loop and see it alive).
    try { fs.unlinkSync(file); } catch { /* someone else removed it */ }
  }
  throw new LockedError('unknown', file);
}

/** Release the lock only if it is still ours. */
export function releaseLock(folder) {
  const file = path.join(folder, LOCK_NAME);
  if (readPid(file) === process.pid) {
    try { fs.unlinkSync(file); } catch { /* already gone */ }
  }
}
