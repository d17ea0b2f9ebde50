// Shared helpers for drivers.
import fs from 'node:fs';
import path from 'node:path';

export class BadRecipientError extends Error {}
export class NotConnectedError extends Error {}

/**
 * Normalise a recipient into a WhatsApp JID, or return null.
 * Accepts a phone number in international format (8-15 digits; "+", spaces, dashes, dots
 * and parentheses are ignored) or an explicit user/group JID.
 */
export function toJid(to) {
  if (typeof to === 'number' && Number.isSafeInteger(to)) to = String(to);
  if (typeof to !== 'string') return null;
  const s = to.trim();
  if (/^\d{8,15}@s\.whatsapp\.net$/.test(s)) return s;
  if (/^[\d-]{8,40}@g\.us$/.test(s)) return s;
  const digits = s.replace(/[\s+().-]/g, '');
  if (!/^\d{8,15}$/.test(digits)) return null;
  if (!/^\+?[\d\s().-]+$/.test(s)) return null;
  return `${digits}@s.whatsapp.net`;
}

/** Strip the device part of a jid: "5511...:12@s.whatsapp.net" -> "5511...@s.whatsapp.net". */
export function bareJid(jid) {
  if (!jid) return jid;
  return jid.replace(/:\d+@/, '@');
}

/** Does a credentials document (JSON text: Baileys' creds or the sandbox's) belong to a paired device? */
export function isPaired(text) {
  if (typeof text !== 'string') return false;
  try {
    const c = JSON.parse(text);
    return Boolean(c && c.me && c.me.id);
  } catch {
    return false;
  }
}

export function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** Write a file atomically (tmp + rename) so a crash never leaves half a credentials file. */
export function writeJsonAtomic(file, data) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(data), { mode: 0o600 });
  fs.renameSync(tmp, file);
}
