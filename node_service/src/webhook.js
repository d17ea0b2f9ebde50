// Signed webhooks node -> flask. One FIFO queue per tenant keeps events of a
// tenant in order (a retried event blocks the ones behind it); tenants do not
// block each other. Retries only on 5xx, timeouts and connection errors: a 4xx
// means the receiver rejected the event and retrying would not change that.
import crypto from 'node:crypto';

// Everything the receiver acts on is signed: the id (it de-duplicates on it), the event name and the
// body. The id (a UUID) has no "." and the event name no "{", so nothing can be moved between the
// id, the event and the JSON body without breaking the signature.
export function sign(secret, timestamp, id, event, rawBody) {
  return 'sha256=' + crypto.createHmac('sha256', secret).update(`${timestamp}.${id}.${event}.${rawBody}`).digest('hex');
}

export class WebhookDispatcher {
  constructor(config, log) {
    this.url = config.webhookUrl;
    this.secret = config.webhookSecret;
    this.timeoutMs = config.webhookTimeoutMs;
    this.maxAttempts = config.webhookMaxAttempts;
    this.baseMs = config.webhookRetryBaseMs;
    this.maxMs = config.webhookRetryMaxMs;
    this.queueMax = config.webhookQueueMax;
    this.log = log.child({ component: 'webhook' });
    this.queues = new Map(); // tenantId -> { items: [], running: bool }
    this.stopped = false;
    this.stats = { delivered: 0, failed: 0, dropped: 0 };
  }

  emit(tenantId, event, data) {
    if (!this.url) {
      this.log.debug({ tenant: tenantId, event }, 'no WEBHOOK_URL: event dropped');
      return null;
    }
    const id = crypto.randomUUID();
    // The body is serialised once so every retry carries exactly the same bytes.
    const body = JSON.stringify({ event, tenant_id: tenantId, data });
    let q = this.queues.get(tenantId);
    if (!q) {
      q = { items: [], running: false };
      this.queues.set(tenantId, q);
    }
    if (q.items.length >= this.queueMax) {
      const old = q.items.shift();
      this.stats.dropped++;
      this.log.warn({ tenant: tenantId, event: old.event, webhook_id: old.id }, 'webhook queue full: oldest event dropped');
    }
    q.items.push({ id, event, body });
    if (!q.running) this.drain(tenantId, q);
    return id;
  }

  async drain(tenantId, q) {
    q.running = true;
    try {
      while (q.items.length && !this.stopped) {
        const item = q.items[0];
        await this.deliver(tenantId, item);
        q.items.shift();
      }
    } finally {
      q.running = false;
      if (!q.items.length) this.queues.delete(tenantId);
    }
  }

  async deliver(tenantId, item) {
    const log = this.log.child({ tenant: tenantId, event: item.event, webhook_id: item.id });
    for (let attempt = 1; attempt <= this.maxAttempts && !this.stopped; attempt++) {
      // A fresh timestamp per attempt: the receiver rejects timestamps older than 300 s.
      const ts = Math.floor(Date.now() / 1000);
      let retry = false;
      try {
        const res = await fetch(this.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-webhook-id': item.id,
            'x-webhook-event': item.event,
            'x-webhook-timestamp': String(ts),
            'x-webhook-signature': sign(this.secret, ts, item.id, item.event, item.body),
            'user-agent': 'node_service-webhook/1',
          },
          body: item.body,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        await res.arrayBuffer().catch(() => {});
        if (res.status < 300) {
          this.stats.delivered++;
          log.debug({ status: res.status, attempt }, 'webhook delivered');
          return;
        }
        if (res.status >= 500) {
          retry = true;
          log.warn({ status: res.status, attempt }, 'webhook failed with server error');
        } else {
          this.stats.failed++;
          log.warn({ status: res.status, attempt }, 'webhook rejected by receiver; not retried');
          return;
        }
      } catch (err) {
        retry = true;
        log.warn({ err: err.name === 'TimeoutError' ? 'timeout' : (err.cause?.code || err.message), attempt }, 'webhook delivery error');
      }
      if (retry && attempt < this.maxAttempts) {
        const d = Math.min(this.maxMs, this.baseMs * 2 ** (attempt - 1));
        await sleep(Math.round(d * (0.8 + Math.random() * 0.4)));
      }
    }
    this.stats.failed++;
    log.error({ attempts: this.maxAttempts }, 'webhook given up');
  }

  pending() {
    let n = 0;
    for (const q of this.queues.values()) n += q.items.length;
    return n;
  }

  stop() {
    this.stopped = true;
  }
}

function sleep(ms) {
  return new Promise((r) => {
    const t = setTimeout(r, ms);
    t.unref?.();
  });
}
